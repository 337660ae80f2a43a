//! Step 3 of a git webhook: which task a git event builds, and at which
//! commit.
//!
//! [`decide`] takes one parsed [`GitEvent`] and one task's [`SourceTrigger`]
//! and answers [`Decision::Build`], [`Decision::BuildPullRequest`] or
//! [`Decision::Ignore`] with a human reason for the event record.
//!
//! Matching rules:
//! - Repository: the task's context URL and every URL of the payload are
//!   reduced by [`normalize_repo_url`] and compared as keys.
//! - Branch: exact, or a glob ([`branch_matches`]). An empty tracked branch
//!   means `main` (the task default).
//! - Globs (branches and path filters): `*` and `?` do not cross `/`, `**`
//!   does (as a whole path component: `docs/**`, `**/*.md`), `[...]` classes;
//!   case-sensitive. A pattern that is not a valid glob matches only itself.
//! - Path filters: a branch push builds when any changed file matches any
//!   filter. No filters means always. When the payload may omit commits or
//!   files (`commits_complete == false`) or lists no changed file, the push
//!   builds anyway rather than being skipped on incomplete data. Tag pushes
//!   and pull requests are not path-filtered (their payloads carry no
//!   reliable file list).
//! - Tags build only when the task opted in (`tags_enabled`), whatever the
//!   tracked branch; deletions never build; a force push or a push of several
//!   commits builds the new head (`after`).
//! - Pull requests build when the PR trigger is on and the PR targets the
//!   tracked branch; the head commit of the PR is built.
//!
//! Branch names are compared as plain strings: shell syntax in them (`$(..)`,
//! backticks, `;`) has no meaning here, and callers must pass them on as
//! data, never through a shell.

use serde::Serialize;

use crate::domain::pattern::{branch_matches, path_filters_match};
use crate::trigger::git::event::{is_zero_sha, GitEvent, PullRequest, Push, RepoUrls};

/// The branch a task tracks when it names none.
pub const DEFAULT_BRANCH: &str = "main";

/// Reduces a repository URL to a stable comparison key.
///
/// The scheme, any `user[:password]@`, default ports (http 80, https 443,
/// ssh 22, git 9418), a `#fragment`, a `?query`, repeated and trailing
/// slashes and a trailing `.git` are dropped, and the WHOLE key is
/// lower-cased (GitHub, GitLab, Gitea and Bitbucket treat owner and
/// repository names case-insensitively). scp-like `git@host:path` is read as
/// host and path. Local forms become `file/<path>`.
///
/// `https://github.com/Org/Repo.git/`, `git@github.com:Org/Repo.git` and
/// `ssh://git@github.com/Org/Repo` all give `github.com/org/repo`;
/// `git://127.0.0.1:9418/x.git` gives `127.0.0.1/x`; `file:///srv/x.git`
/// gives `file/srv/x`.
pub fn normalize_repo_url(url: &str) -> String {
    let s = url.trim();
    let s = s.split('#').next().unwrap_or(s);
    if s.is_empty() {
        return String::new();
    }
    let (host, path): (String, &str) = if let Some((scheme, rest)) = s.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "file" {
            ("file".to_string(), rest)
        } else {
            let rest = rest.split('?').next().unwrap_or(rest);
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            match split_port(hostport) {
                (host, Some(port)) if port.is_empty() || Some(port) == default_port(&scheme) => {
                    (host.to_string(), path)
                }
                (host, Some(port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
                    (format!("{host}:{port}"), path)
                }
                // `ssh://git@host:Org/Repo`: an scp path written as a URL.
                (host, Some(first_segment)) => {
                    return join_key(host, &format!("{first_segment}/{path}"));
                }
                (host, None) => (host.to_string(), path),
            }
        }
    } else if let Some((host, path)) = scp_like(s) {
        (host.to_string(), path)
    } else {
        ("file".to_string(), s)
    };
    join_key(&host, path)
}

fn join_key(host: &str, path: &str) -> String {
    let path: Vec<&str> = path.split('/').filter(|seg| !seg.is_empty()).collect();
    let mut key = host.to_ascii_lowercase();
    for seg in path {
        key.push('/');
        key.push_str(&seg.to_lowercase());
    }
    match key.strip_suffix(".git") {
        Some(k) if !k.is_empty() && !k.ends_with('/') => k.to_string(),
        _ => key,
    }
}

/// `host:port` split at the port colon (IPv6 literals keep their brackets).
fn split_port(hostport: &str) -> (&str, Option<&str>) {
    let after_bracket = hostport.rfind(']').map_or(0, |i| i + 1);
    match hostport
        .get(after_bracket..)
        .and_then(|tail| tail.rfind(':'))
    {
        Some(i) => {
            let at = after_bracket + i;
            (
                hostport.get(..at).unwrap_or(hostport),
                hostport.get(at + 1..),
            )
        }
        None => (hostport, None),
    }
}

fn default_port(scheme: &str) -> Option<&'static str> {
    match scheme {
        "http" => Some("80"),
        "https" => Some("443"),
        "ssh" | "git+ssh" | "ssh+git" => Some("22"),
        "git" => Some("9418"),
        _ => None,
    }
}

/// `[user@]host:path` (no scheme, and no `/` before the colon).
fn scp_like(s: &str) -> Option<(&str, &str)> {
    let (left, path) = s.split_once(':')?;
    if left.is_empty() || left.contains('/') {
        return None;
    }
    let host = left.rsplit_once('@').map_or(left, |(_, h)| h);
    (!host.is_empty()).then_some((host, path))
}

/// True when any URL of the payload's repository has the same key as `url`.
pub fn repo_matches(repo: &RepoUrls, url: &str) -> bool {
    let want = normalize_repo_url(url);
    !want.is_empty() && repo.urls.iter().any(|u| normalize_repo_url(u) == want)
}

/// The source-trigger settings of one task, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct SourceTrigger<'a> {
    /// The task's context URL without its `#fragment`.
    pub repo_url: &'a str,
    /// Tracked branch: exact or glob (`release/*`); empty means `main`.
    pub branch: &'a str,
    /// Build branch pushes.
    pub commit_enabled: bool,
    /// Build pull requests that target the tracked branch.
    pub pull_request_enabled: bool,
    /// Build tag pushes.
    pub tags_enabled: bool,
    /// Globs over changed files (`--path-filter`); empty = always build.
    pub path_filters: &'a [String],
}

/// What to do for one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Build a branch or tag push at `commit`.
    Build {
        /// The pushed head.
        commit: String,
        /// Branch or tag name.
        branch: String,
        /// `branch` is a tag.
        is_tag: bool,
    },
    /// Build a pull request's head commit.
    BuildPullRequest {
        /// Pull (merge) request number.
        number: u64,
        /// The PR head commit.
        commit: String,
        /// The PR source branch.
        branch: String,
        /// The source is a fork: untrusted code (no secrets, no push).
        from_fork: bool,
    },
    /// Nothing to build, and why.
    Ignore(String),
}

/// Decides what `event` means for the task described by `trigger`.
pub fn decide(event: &GitEvent, trigger: &SourceTrigger) -> Decision {
    match event {
        GitEvent::Ping { .. } => {
            Decision::Ignore("ping: the webhook works, nothing to build".into())
        }
        GitEvent::Ignored { reason, .. } => Decision::Ignore(reason.clone()),
        GitEvent::Push(p) => decide_push(p, trigger),
        GitEvent::PullRequest(pr) => decide_pull_request(pr, trigger),
    }
}

fn tracked<'a>(trigger: &SourceTrigger<'a>) -> &'a str {
    let b = trigger.branch.trim();
    if b.is_empty() {
        DEFAULT_BRANCH
    } else {
        b
    }
}

fn repo_mismatch(repo: &RepoUrls, trigger: &SourceTrigger) -> Option<Decision> {
    if repo_matches(repo, trigger.repo_url) {
        return None;
    }
    let got = repo
        .urls
        .first()
        .map(|u| normalize_repo_url(u))
        .or_else(|| repo.full_name.clone())
        .unwrap_or_else(|| "an unnamed repository".into());
    Some(Decision::Ignore(format!(
        "repository does not match: the event is for {got}, the task tracks {}",
        normalize_repo_url(trigger.repo_url)
    )))
}

fn decide_push(p: &Push, trigger: &SourceTrigger) -> Decision {
    if let Some(d) = repo_mismatch(&p.repository, trigger) {
        return d;
    }
    if let Some(tag) = &p.tag {
        if p.deleted {
            return Decision::Ignore(format!("tag '{tag}' deleted: nothing to build"));
        }
        if !trigger.tags_enabled {
            return Decision::Ignore(format!("tag pushes are not enabled (tag '{tag}')"));
        }
        if p.after.is_empty() || is_zero_sha(&p.after) {
            return Decision::Ignore(format!("tag '{tag}' push has no commit"));
        }
        return Decision::Build {
            commit: p.after.clone(),
            branch: tag.clone(),
            is_tag: true,
        };
    }
    let Some(branch) = &p.branch else {
        return Decision::Ignore(format!("ref '{}' is neither a branch nor a tag", p.git_ref));
    };
    if !trigger.commit_enabled {
        return Decision::Ignore("commit trigger is disabled".into());
    }
    let tracked = tracked(trigger);
    if !branch_matches(tracked, branch) {
        return Decision::Ignore(format!(
            "branch '{branch}' is not tracked (task tracks '{tracked}')"
        ));
    }
    if p.deleted {
        return Decision::Ignore(format!("branch '{branch}' deleted: nothing to build"));
    }
    if p.after.is_empty() || is_zero_sha(&p.after) {
        return Decision::Ignore(format!("push to branch '{branch}' has no commit"));
    }
    if p.commits_complete
        && !p.changed_files.is_empty()
        && !path_filters_match(trigger.path_filters, &p.changed_files)
    {
        return Decision::Ignore(format!(
            "no changed file matches the path filters [{}]",
            trigger.path_filters.join(", ")
        ));
    }
    Decision::Build {
        commit: p.after.clone(),
        branch: branch.clone(),
        is_tag: false,
    }
}

fn decide_pull_request(pr: &PullRequest, trigger: &SourceTrigger) -> Decision {
    if let Some(d) = repo_mismatch(&pr.repository, trigger) {
        return d;
    }
    if !trigger.pull_request_enabled {
        return Decision::Ignore("pull request trigger is disabled".into());
    }
    let tracked = tracked(trigger);
    if !branch_matches(tracked, &pr.base_ref) {
        return Decision::Ignore(format!(
            "pull request #{} targets branch '{}', which is not tracked (task tracks '{tracked}')",
            pr.number, pr.base_ref
        ));
    }
    Decision::BuildPullRequest {
        number: pr.number,
        commit: pr.head_sha.clone(),
        branch: pr.head_ref.clone(),
        from_fork: pr.from_fork,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let cases = [
            ("https://github.com/Org/Repo.git/", "github.com/org/repo"),
            ("https://github.com/Org/Repo", "github.com/org/repo"),
            ("HTTPS://GitHub.com:443/Org/Repo.git", "github.com/org/repo"),
            ("http://github.com:80/org/repo", "github.com/org/repo"),
            (
                "https://user:tok@github.com/org/repo.git",
                "github.com/org/repo",
            ),
            ("git@github.com:Org/Repo.git", "github.com/org/repo"),
            ("ssh://git@github.com/Org/Repo", "github.com/org/repo"),
            (
                "ssh://git@github.com:22/Org/Repo.git",
                "github.com/org/repo",
            ),
            ("ssh://git@github.com:Org/Repo.git", "github.com/org/repo"),
            ("git://github.com/org/repo.git", "github.com/org/repo"),
            ("git://127.0.0.1:9418/x.git", "127.0.0.1/x"),
            ("git://127.0.0.1:9419/x.git", "127.0.0.1:9419/x"),
            ("http://localhost:3000/o/r.git", "localhost:3000/o/r"),
            (
                "ssh://git@gitlab.example.com:2222/g/sub/p.git",
                "gitlab.example.com:2222/g/sub/p",
            ),
            ("https://github.com//org//repo///", "github.com/org/repo"),
            (
                "https://github.com/org/repo.git#main:sub",
                "github.com/org/repo",
            ),
            ("https://github.com/org/repo?x=1", "github.com/org/repo"),
            ("http://[::1]:8080/o/r", "[::1]:8080/o/r"),
            ("http://[::1]:80/o/r", "[::1]/o/r"),
            ("file:///srv/x.git", "file/srv/x"),
            ("/srv/x.git/", "file/srv/x"),
            ("https://github.com/org/.git", "github.com/org/.git"),
            ("", ""),
            ("   ", ""),
            ("://", ""),
            ("@:", "file/@:"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_repo_url(input), want, "{input:?}");
        }
    }
}
