//! GitHub payloads (`push`, `pull_request`), which Gitea and Forgejo send in
//! the same shape (`pull_request_sync` too).

use serde_json::Value;

use super::fields::{
    at, bool_at, changed_files, commit_message, first_str, is_zero_sha, missing, required_str,
    split_ref, str_at, u64_at,
};
use super::{GitEvent, PullRequest, Push, RepoUrls};
use crate::error::Result;
use crate::trigger::git::verify::Provider;

/// GitHub lists at most this many commits in a push payload.
pub(super) const GITHUB_MAX_COMMITS: usize = 2048;
/// Pull request actions that start a build, per provider vocabulary:
/// GitHub `synchronize`, Gitea/Forgejo `synchronized`.
const GITHUB_LIKE_PR_ACTIONS: &[&str] = &["opened", "synchronize", "synchronized", "reopened"];

const GITHUB_REPO_URL_FIELDS: &[&str] = &["clone_url", "html_url", "ssh_url", "git_url", "svn_url"];

fn repo_urls(repo: &Value) -> RepoUrls {
    let mut r = RepoUrls {
        full_name: str_at(repo, &["full_name"]).map(str::to_string),
        urls: Vec::new(),
    };
    r.add_fields(Some(repo), GITHUB_REPO_URL_FIELDS);
    r
}

pub(super) fn push(provider: Provider, v: &Value) -> Result<Push> {
    let git_ref = required_str(v, &["ref"], "push")?;
    let after = required_str(v, &["after"], "push")?;
    let repo = at(v, &["repository"]).ok_or_else(|| missing("push", &["repository"]))?;
    let before = str_at(v, &["before"]).unwrap_or_default();
    let (branch, tag) = split_ref(git_ref);
    let commits = v.get("commits");
    let (changed_files, commits_complete) = match provider {
        Provider::GitHub => changed_files(commits, None, Some(GITHUB_MAX_COMMITS)),
        _ => changed_files(commits, u64_at(v, &["total_commits"]), None),
    };
    let head_message = str_at(v, &["head_commit", "message"])
        .or_else(|| commit_message(commits, after))
        .map(str::to_string);
    let pusher = first_str(
        v,
        &[
            &["pusher", "login"],
            &["pusher", "username"],
            &["pusher", "name"],
        ],
    )
    .map(str::to_string);
    Ok(Push {
        repository: repo_urls(repo),
        git_ref: git_ref.to_string(),
        branch,
        tag,
        before: before.to_string(),
        after: after.to_string(),
        deleted: bool_at(v, &["deleted"]) || is_zero_sha(after),
        forced: bool_at(v, &["forced"]),
        changed_files,
        commits_complete,
        head_message,
        pusher,
    })
}

pub(super) fn pull_request(v: &Value) -> Result<GitEvent> {
    const WHAT: &str = "pull_request";
    let action = required_str(v, &["action"], WHAT)?;
    if !GITHUB_LIKE_PR_ACTIONS.contains(&action) {
        return Ok(GitEvent::Ignored {
            kind: "pull_request".into(),
            reason: format!(
                "pull request action '{action}' does not trigger builds (only opened, synchronize, reopened)"
            ),
        });
    }
    let number = u64_at(v, &["number"])
        .or_else(|| u64_at(v, &["pull_request", "number"]))
        .ok_or_else(|| missing(WHAT, &["number"]))?;
    let head_sha = required_str(v, &["pull_request", "head", "sha"], WHAT)?;
    let head_ref = required_str(v, &["pull_request", "head", "ref"], WHAT)?;
    let base_ref = required_str(v, &["pull_request", "base", "ref"], WHAT)?;
    let base_repo = at(v, &["repository"])
        .or_else(|| at(v, &["pull_request", "base", "repo"]))
        .ok_or_else(|| missing(WHAT, &["repository"]))?;
    let head_repo = at(v, &["pull_request", "head", "repo"]);
    let from_fork = match head_repo {
        None => true,
        Some(h) => !same_repository(h, base_repo, v),
    };
    Ok(GitEvent::PullRequest(PullRequest {
        action: action.to_string(),
        number,
        head_sha: head_sha.to_string(),
        head_ref: head_ref.to_string(),
        base_ref: base_ref.to_string(),
        repository: repo_urls(base_repo),
        head_repository: head_repo.map(repo_urls),
        from_fork,
    }))
}

/// Whether a pull request's head repository is its base repository: by id
/// when both have one, else by full name.
fn same_repository(head: &Value, base: &Value, payload: &Value) -> bool {
    let head_id =
        u64_at(head, &["id"]).or_else(|| u64_at(payload, &["pull_request", "head", "repo_id"]));
    let base_id =
        u64_at(base, &["id"]).or_else(|| u64_at(payload, &["pull_request", "base", "repo_id"]));
    if let (Some(h), Some(b)) = (head_id, base_id) {
        return h == b;
    }
    match (str_at(head, &["full_name"]), str_at(base, &["full_name"])) {
        (Some(h), Some(b)) => h.eq_ignore_ascii_case(b),
        _ => false,
    }
}
