//! Git provider webhook payloads turned into one domain event.
//!
//! Call [`crate::trigger::git::verify::verify`] on the raw body first; then [`parse`] (or
//! [`parse_all`] for Bitbucket, which may report several ref changes in one
//! delivery) reads the event header and the body. Unknown fields are ignored
//! everywhere; event types and pull request actions that never start a build
//! come back as [`GitEvent::Ignored`] with a reason. Errors are
//! [`Error::Invalid`] (answer 400) with a message naming what is wrong.
//!
//! Supported:
//! - GitHub: `ping`, `push`, `pull_request` (JSON or form-encoded `payload=`).
//! - GitLab: `Push Hook`, `Tag Push Hook`, `Merge Request Hook` (and the same
//!   kinds inside a `System Hook`).
//! - Gitea / Forgejo: `push`, `pull_request` (`pull_request_sync`).
//! - Bitbucket Cloud: `repo:push`.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::trigger::git::verify::Provider;
use crate::trigger::request::{header, HeaderLookup};

/// GitHub lists at most this many commits in a push payload.
const GITHUB_MAX_COMMITS: usize = 2048;
/// Longest event type or delivery id kept from a header.
const MAX_HEADER_TOKEN: usize = 200;
/// Pull request actions that start a build, per provider vocabulary:
/// GitHub `synchronize`, Gitea/Forgejo `synchronized`, GitLab `open`/`reopen`/`update`.
const GITHUB_LIKE_PR_ACTIONS: &[&str] = &["opened", "synchronize", "synchronized", "reopened"];
const GITLAB_MR_ACTIONS: &[&str] = &["open", "reopen", "update"];

/// What a delivery is about, as far as builds are concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum GitEvent {
    /// The provider checks the hook works (GitHub `ping`): answer, start nothing.
    Ping {
        /// GitHub's random aphorism, when sent.
        zen: Option<String>,
    },
    /// A branch or tag was pushed (created, updated or deleted).
    Push(Push),
    /// A pull/merge request was opened, reopened or got new commits.
    PullRequest(PullRequest),
    /// An event type or action we do not act on.
    Ignored {
        /// The event type (e.g. `issues`) or `pull_request` for ignored actions.
        kind: String,
        /// Why nothing is done, for the event record.
        reason: String,
    },
}

impl GitEvent {
    /// Short name of the event kind: `ping`, `push`, `pull_request`, or the
    /// ignored event's kind.
    pub fn kind(&self) -> &str {
        match self {
            GitEvent::Ping { .. } => "ping",
            GitEvent::Push(_) => "push",
            GitEvent::PullRequest(_) => "pull_request",
            GitEvent::Ignored { kind, .. } => kind,
        }
    }
}

/// A branch or tag push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Push {
    /// The repository pushed to.
    pub repository: RepoUrls,
    /// Full ref name, e.g. `refs/heads/main` or `refs/tags/v1`.
    pub git_ref: String,
    /// Branch name when the ref is under `refs/heads/`.
    pub branch: Option<String>,
    /// Tag name when the ref is under `refs/tags/`.
    pub tag: Option<String>,
    /// Commit the ref pointed to before (all zeros when created; may be empty
    /// when the provider does not say).
    pub before: String,
    /// Commit the ref points to now: the one to build (all zeros when deleted).
    /// For GitLab this is `checkout_sha` when sent (the commit an annotated tag
    /// points to), else `after`.
    pub after: String,
    /// The ref was deleted.
    pub deleted: bool,
    /// The push was a force push.
    pub forced: bool,
    /// Union of added, modified and removed paths over the listed commits,
    /// sorted and deduplicated.
    pub changed_files: Vec<String>,
    /// False when the payload may not list every commit or every file
    /// (GitHub caps at 2048 commits, GitLab at 20, Gitea at a configured
    /// number, Bitbucket lists no files): path filters cannot be trusted then.
    pub commits_complete: bool,
    /// Message of the head commit, when the payload has it.
    pub head_message: Option<String>,
    /// Who pushed (login or display name), when the payload has it.
    pub pusher: Option<String>,
}

/// A pull (merge) request that should be built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    /// The provider's action as sent (`opened`, `synchronize`, `synchronized`,
    /// `reopened`, GitLab `open`, `reopen`, `update`).
    pub action: String,
    /// Pull request number (GitLab: the merge request `iid`).
    pub number: u64,
    /// Head commit of the pull request: the one to build.
    pub head_sha: String,
    /// Source branch name.
    pub head_ref: String,
    /// Target branch name.
    pub base_ref: String,
    /// The target repository (the one the hook belongs to).
    pub repository: RepoUrls,
    /// The source repository, when known (null on GitHub when the fork was deleted).
    pub head_repository: Option<RepoUrls>,
    /// The source is another repository: untrusted code.
    pub from_fork: bool,
}

/// Every URL a payload gives for a repository, for matching against a task's
/// context URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepoUrls {
    /// `owner/name` (GitLab: `path_with_namespace`), when sent.
    pub full_name: Option<String>,
    /// Clone, web and ssh URLs as sent, deduplicated, in payload order.
    pub urls: Vec<String>,
}

impl RepoUrls {
    fn push_url(&mut self, url: Option<&str>) {
        if let Some(u) = url.map(str::trim).filter(|u| !u.is_empty()) {
            if !self.urls.iter().any(|x| x == u) {
                self.urls.push(u.to_string());
            }
        }
    }

    fn add_fields(&mut self, obj: Option<&Value>, fields: &[&str]) {
        if let Some(obj) = obj {
            for f in fields {
                self.push_url(obj.get(*f).and_then(Value::as_str));
            }
        }
    }
}

/// The event type header of a delivery (`X-GitHub-Event`, `X-Gitlab-Event`,
/// `X-Forgejo-Event` or else `X-Gitea-Event`, `X-Event-Key`), trimmed and
/// capped in length; `None` when absent or empty.
pub fn event_type(provider: Provider, headers: &dyn HeaderLookup) -> Option<String> {
    let value = header(headers, provider.event_header()).or_else(|| match provider {
        Provider::Forgejo => header(headers, "X-Gitea-Event"),
        _ => None,
    })?;
    Some(cap(value))
}

/// The provider's id of this delivery, the same on a redelivery: GitHub
/// `X-GitHub-Delivery`, GitLab `X-Gitlab-Event-UUID`, Gitea
/// `X-Gitea-Delivery`, Forgejo `X-Forgejo-Delivery` (else `X-Gitea-Delivery`),
/// Bitbucket `X-Request-UUID`.
///
/// `None` when absent, empty, longer than 200 characters or containing
/// anything but visible ASCII, so a stored id is always a safe token.
pub fn delivery_id(provider: Provider, headers: &dyn HeaderLookup) -> Option<String> {
    let names: &[&str] = match provider {
        Provider::GitHub => &["X-GitHub-Delivery"],
        Provider::GitLab => &["X-Gitlab-Event-UUID"],
        Provider::Gitea => &["X-Gitea-Delivery"],
        Provider::Forgejo => &["X-Forgejo-Delivery", "X-Gitea-Delivery"],
        Provider::Bitbucket => &["X-Request-UUID"],
    };
    let value = names.iter().find_map(|n| header(headers, n))?;
    (value.len() <= MAX_HEADER_TOKEN && value.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| value.to_string())
}

/// Parses a delivery into one event. For a Bitbucket push that changes
/// several refs this is the first change; use [`parse_all`] to get them all.
pub fn parse(
    provider: Provider,
    headers: &dyn HeaderLookup,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<GitEvent> {
    parse_all(provider, headers, content_type, body)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::invalid("payload describes no event"))
}

/// Parses a delivery into its events: exactly one, except for a Bitbucket
/// `repo:push` that changes several refs (one [`GitEvent::Push`] per change).
/// Never returns an empty list.
///
/// `content_type` is the request's `Content-Type`; a GitHub
/// `application/x-www-form-urlencoded` delivery carries the JSON in its
/// `payload` field (a body starting with `payload=` is read that way too).
pub fn parse_all(
    provider: Provider,
    headers: &dyn HeaderLookup,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<GitEvent>> {
    let event = event_type(provider, headers).ok_or_else(|| {
        Error::invalid(format!(
            "missing {} header: cannot tell the {provider} event type",
            provider.event_header()
        ))
    })?;
    let json = decode_body(content_type, body)?;
    let one = |e: GitEvent| Ok(vec![e]);
    match provider {
        Provider::GitHub => match event.as_str() {
            "ping" => one(GitEvent::Ping {
                zen: str_at(&json, &["zen"]).map(str::to_string),
            }),
            "push" => one(GitEvent::Push(github_like_push(provider, &json)?)),
            "pull_request" => one(github_like_pull_request(&json)?),
            _ => one(ignored_event(&event)),
        },
        Provider::Gitea | Provider::Forgejo => match event.as_str() {
            "push" => one(GitEvent::Push(github_like_push(provider, &json)?)),
            "pull_request" | "pull_request_sync" => one(github_like_pull_request(&json)?),
            _ => one(ignored_event(&event)),
        },
        Provider::GitLab => {
            let kind = match event.as_str() {
                "Push Hook" | "Tag Push Hook" => "push",
                "Merge Request Hook" => "merge_request",
                // System hooks carry the same bodies; tell them by their kind.
                "System Hook" => str_at(&json, &["object_kind"])
                    .or_else(|| str_at(&json, &["event_name"]))
                    .map(|k| match k {
                        "push" | "tag_push" => "push",
                        "merge_request" => "merge_request",
                        _ => "",
                    })
                    .unwrap_or(""),
                _ => "",
            };
            match kind {
                "push" => one(GitEvent::Push(gitlab_push(&json)?)),
                "merge_request" => one(gitlab_merge_request(&event, &json)?),
                _ => one(ignored_event(&event)),
            }
        }
        Provider::Bitbucket => match event.as_str() {
            "repo:push" => bitbucket_push(&json),
            _ => one(ignored_event(&event)),
        },
    }
}

fn cap(s: &str) -> String {
    s.chars().take(MAX_HEADER_TOKEN).collect()
}

fn ignored_event(event: &str) -> GitEvent {
    GitEvent::Ignored {
        kind: event.to_string(),
        reason: format!("event '{event}' does not trigger builds"),
    }
}

// ---------------------------------------------------------------- body

/// Turns the raw body into a JSON object, undoing form encoding.
fn decode_body(content_type: Option<&str>, body: &[u8]) -> Result<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid("payload is empty"));
    }
    let mime = content_type
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    let is_form = match mime.as_deref() {
        Some("application/x-www-form-urlencoded") => true,
        Some(m) if m.contains("json") => false,
        _ => body.starts_with(b"payload="),
    };
    let value: Value = if is_form {
        let json = form_field(body, "payload")?
            .ok_or_else(|| Error::invalid("form-encoded payload has no 'payload' field"))?;
        if json.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::invalid("form-encoded 'payload' field is empty"));
        }
        serde_json::from_slice(&json).map_err(|e| {
            Error::invalid(format!(
                "form-encoded 'payload' field is not valid json: {e}"
            ))
        })?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| Error::invalid(format!("payload is not valid json: {e}")))?
    };
    if !value.is_object() {
        return Err(Error::invalid("payload must be a json object"));
    }
    Ok(value)
}

/// The decoded value of the first `name` field of an
/// `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Result<Option<Vec<u8>>> {
    for pair in body.split(|&b| b == b'&') {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        if url_decode(k)? == name.as_bytes() {
            return url_decode(v).map(Some);
        }
    }
    Ok(None)
}

/// Percent-decoding with `+` as space; a `%` not followed by two hex digits
/// is an error.
fn url_decode(s: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = s.get(i + 1).and_then(|c| (*c as char).to_digit(16));
                let lo = s.get(i + 2).and_then(|c| (*c as char).to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => {
                        return Err(Error::invalid(format!(
                            "form-encoded payload has a bad percent escape at byte {i}"
                        )))
                    }
                }
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

// ------------------------------------------------------------- helpers

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .filter(|v| !v.is_null())
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

/// A non-empty string, or an error naming the missing field.
fn required_str<'a>(v: &'a Value, path: &[&str], what: &str) -> Result<&'a str> {
    str_at(v, path)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing(what, path))
}

fn missing(what: &str, path: &[&str]) -> Error {
    Error::invalid(format!("{what} payload has no '{}'", path.join(".")))
}

fn bool_at(v: &Value, path: &[&str]) -> bool {
    at(v, path).and_then(Value::as_bool).unwrap_or(false)
}

/// A non-negative integer, also accepted as a decimal string.
fn u64_at(v: &Value, path: &[&str]) -> Option<u64> {
    match at(v, path)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// True for the all-zero object id providers send for a missing side of a
/// ref update (40 zeros for SHA-1, 64 for SHA-256 repositories).
pub fn is_zero_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

/// Branch and tag name of a full ref.
fn split_ref(git_ref: &str) -> (Option<String>, Option<String>) {
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    if let Some(b) = git_ref.strip_prefix("refs/heads/") {
        (nonempty(b), None)
    } else if let Some(t) = git_ref.strip_prefix("refs/tags/") {
        (None, nonempty(t))
    } else {
        (None, None)
    }
}

/// Union of the file lists of `commits`, and whether that list can be
/// trusted to be complete.
fn changed_files(
    commits: Option<&Value>,
    total: Option<u64>,
    max_listed: Option<usize>,
) -> (Vec<String>, bool) {
    let Some(commits) = commits.and_then(Value::as_array) else {
        return (Vec::new(), false);
    };
    let mut files = BTreeSet::new();
    let mut complete = true;
    for commit in commits {
        let mut listed = false;
        for key in ["added", "modified", "removed"] {
            if let Some(list) = commit.get(key).and_then(Value::as_array) {
                listed = true;
                files.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
            }
        }
        complete &= listed;
    }
    if total.is_some_and(|t| t > commits.len() as u64) {
        complete = false;
    }
    if max_listed.is_some_and(|m| commits.len() >= m) {
        complete = false;
    }
    (files.into_iter().collect(), complete)
}

/// Message of the commit with id `sha` in `commits`.
fn commit_message<'a>(commits: Option<&'a Value>, sha: &str) -> Option<&'a str> {
    commits?
        .as_array()?
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(sha))
        .and_then(|c| c.get("message"))
        .and_then(Value::as_str)
}

fn first_str<'a>(v: &'a Value, paths: &[&[&str]]) -> Option<&'a str> {
    paths
        .iter()
        .find_map(|p| str_at(v, p).map(str::trim).filter(|s| !s.is_empty()))
}

// ------------------------------------------------------ GitHub / Gitea

const GITHUB_REPO_URL_FIELDS: &[&str] = &["clone_url", "html_url", "ssh_url", "git_url", "svn_url"];

fn github_like_repo(repo: &Value) -> RepoUrls {
    let mut r = RepoUrls {
        full_name: str_at(repo, &["full_name"]).map(str::to_string),
        urls: Vec::new(),
    };
    r.add_fields(Some(repo), GITHUB_REPO_URL_FIELDS);
    r
}

fn github_like_push(provider: Provider, v: &Value) -> Result<Push> {
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
        repository: github_like_repo(repo),
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

fn github_like_pull_request(v: &Value) -> Result<GitEvent> {
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
        repository: github_like_repo(base_repo),
        head_repository: head_repo.map(github_like_repo),
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

// -------------------------------------------------------------- GitLab

const GITLAB_URL_FIELDS: &[&str] = &[
    "git_http_url",
    "git_ssh_url",
    "web_url",
    "http_url",
    "ssh_url",
    "homepage",
    "url",
];

fn gitlab_repo(project: Option<&Value>, extra: Option<&Value>) -> RepoUrls {
    let mut r = RepoUrls {
        full_name: project
            .and_then(|p| str_at(p, &["path_with_namespace"]))
            .or_else(|| extra.and_then(|p| str_at(p, &["path_with_namespace"])))
            .map(str::to_string),
        urls: Vec::new(),
    };
    r.add_fields(project, GITLAB_URL_FIELDS);
    r.add_fields(extra, GITLAB_URL_FIELDS);
    r
}

fn gitlab_push(v: &Value) -> Result<Push> {
    let git_ref = required_str(v, &["ref"], "push")?;
    let after_raw = required_str(v, &["after"], "push")?;
    let project = at(v, &["project"]);
    let repository = at(v, &["repository"]);
    if project.is_none() && repository.is_none() {
        return Err(missing("push", &["project"]));
    }
    let checkout = str_at(v, &["checkout_sha"])
        .map(str::trim)
        .filter(|s| !s.is_empty() && !is_zero_sha(s));
    let deleted = is_zero_sha(after_raw);
    let after = if deleted {
        after_raw
    } else {
        checkout.unwrap_or(after_raw)
    };
    let (branch, tag) = split_ref(git_ref);
    let commits = v.get("commits");
    let (changed_files, commits_complete) =
        changed_files(commits, u64_at(v, &["total_commits_count"]), None);
    let head_message = commit_message(commits, after)
        .or_else(|| commit_message(commits, after_raw))
        .or_else(|| str_at(v, &["message"]))
        .map(str::to_string);
    Ok(Push {
        repository: gitlab_repo(project, repository),
        git_ref: git_ref.to_string(),
        branch,
        tag,
        before: str_at(v, &["before"]).unwrap_or_default().to_string(),
        after: after.to_string(),
        deleted,
        forced: false,
        changed_files,
        commits_complete,
        head_message,
        pusher: first_str(v, &[&["user_username"], &["user_name"]]).map(str::to_string),
    })
}

fn gitlab_merge_request(event: &str, v: &Value) -> Result<GitEvent> {
    const WHAT: &str = "merge request";
    let oa = at(v, &["object_attributes"]).ok_or_else(|| missing(WHAT, &["object_attributes"]))?;
    let Some(action) = str_at(oa, &["action"]) else {
        return Ok(GitEvent::Ignored {
            kind: event.to_string(),
            reason: "merge request hook has no action".into(),
        });
    };
    if !GITLAB_MR_ACTIONS.contains(&action) {
        return Ok(GitEvent::Ignored {
            kind: "pull_request".into(),
            reason: format!(
                "merge request action '{action}' does not trigger builds (only open, reopen, update)"
            ),
        });
    }
    let field = |path: &[&str]| {
        let mut full = vec!["object_attributes"];
        full.extend_from_slice(path);
        required_str(v, &full, WHAT)
    };
    let number =
        u64_at(oa, &["iid"]).ok_or_else(|| missing(WHAT, &["object_attributes", "iid"]))?;
    let head_sha = field(&["last_commit", "id"])?;
    let head_ref = field(&["source_branch"])?;
    let base_ref = field(&["target_branch"])?;
    let project = at(v, &["project"]);
    let target = at(oa, &["target"]);
    let source = at(oa, &["source"]);
    let repository = gitlab_repo(project.or(target), target);
    let head_repository = source.map(|s| gitlab_repo(Some(s), None));
    let from_fork = match (
        u64_at(oa, &["source_project_id"]),
        u64_at(oa, &["target_project_id"]),
    ) {
        (Some(s), Some(t)) => s != t,
        _ => match (&head_repository, &repository.full_name) {
            (Some(h), Some(base)) => h
                .full_name
                .as_deref()
                .map(|n| !n.eq_ignore_ascii_case(base))
                .unwrap_or(true),
            _ => true,
        },
    };
    Ok(GitEvent::PullRequest(PullRequest {
        action: action.to_string(),
        number,
        head_sha: head_sha.to_string(),
        head_ref: head_ref.to_string(),
        base_ref: base_ref.to_string(),
        repository,
        head_repository,
        from_fork,
    }))
}

// ----------------------------------------------------------- Bitbucket

fn bitbucket_repo(repo: &Value) -> RepoUrls {
    let full_name = str_at(repo, &["full_name"]).map(str::to_string);
    let mut r = RepoUrls {
        full_name: full_name.clone(),
        urls: Vec::new(),
    };
    r.push_url(str_at(repo, &["links", "html", "href"]));
    if let Some(clones) = at(repo, &["links", "clone"]).and_then(Value::as_array) {
        for c in clones {
            r.push_url(str_at(c, &["href"]));
        }
    }
    if r.urls.is_empty() {
        if let Some(n) = full_name {
            r.push_url(Some(&format!("https://bitbucket.org/{n}")));
        }
    }
    r
}

fn bitbucket_push(v: &Value) -> Result<Vec<GitEvent>> {
    const WHAT: &str = "push";
    let changes = at(v, &["push", "changes"])
        .and_then(Value::as_array)
        .ok_or_else(|| missing(WHAT, &["push", "changes"]))?;
    let repo = at(v, &["repository"]).ok_or_else(|| missing(WHAT, &["repository"]))?;
    let repository = bitbucket_repo(repo);
    let pusher = first_str(
        v,
        &[
            &["actor", "nickname"],
            &["actor", "display_name"],
            &["actor", "username"],
        ],
    )
    .map(str::to_string);
    let zeros = "0".repeat(40);
    let mut events = Vec::with_capacity(changes.len());
    for change in changes {
        let new = at(change, &["new"]);
        let old = at(change, &["old"]);
        let deleted = new.is_none() || bool_at(change, &["closed"]);
        let side = new.or(old).ok_or_else(|| {
            Error::invalid("push payload has a change with neither 'new' nor 'old'")
        })?;
        let name = required_str(side, &["name"], "push change")?;
        let (git_ref, branch, tag) = match str_at(side, &["type"]).unwrap_or("branch") {
            "branch" | "named_branch" => {
                (format!("refs/heads/{name}"), Some(name.to_string()), None)
            }
            "tag" | "annotated_tag" => (format!("refs/tags/{name}"), None, Some(name.to_string())),
            other => (format!("{other}:{name}"), None, None),
        };
        let after = match new.filter(|_| !deleted) {
            Some(n) => required_str(n, &["target", "hash"], "push change 'new'")?.to_string(),
            None => zeros.clone(),
        };
        let before = old
            .and_then(|o| str_at(o, &["target", "hash"]))
            .map(str::to_string)
            .unwrap_or_else(|| zeros.clone());
        events.push(GitEvent::Push(Push {
            repository: repository.clone(),
            git_ref,
            branch,
            tag,
            before,
            after,
            deleted,
            forced: bool_at(change, &["forced"]),
            changed_files: Vec::new(),
            commits_complete: false,
            head_message: new
                .and_then(|n| str_at(n, &["target", "message"]))
                .map(str::to_string),
            pusher: pusher.clone(),
        }));
    }
    if events.is_empty() {
        events.push(GitEvent::Ignored {
            kind: "repo:push".into(),
            reason: "push changes no ref".into(),
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::request::Headers;
    use serde_json::json;

    fn hdrs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn run(provider: Provider, event: &str, ct: Option<&str>, body: &[u8]) -> Result<GitEvent> {
        let h = hdrs(&[(provider.event_header(), event)]);
        parse(provider, &Headers::new(&h), ct, body)
    }

    fn push_of(e: GitEvent) -> Push {
        match e {
            GitEvent::Push(p) => p,
            other => panic!("expected a push, got {other:?}"),
        }
    }

    fn gh_push(extra: Value) -> Value {
        let mut base = json!({
            "ref": "refs/heads/main",
            "before": "1111111111111111111111111111111111111111",
            "after": "2222222222222222222222222222222222222222",
            "deleted": false,
            "forced": false,
            "repository": {"full_name": "o/r", "clone_url": "https://github.com/o/r.git", "html_url": "https://github.com/o/r"},
            "commits": [
                {"id": "aaaa", "message": "one", "added": ["a.txt"], "modified": ["src/x.rs"], "removed": []},
                {"id": "2222222222222222222222222222222222222222", "message": "two", "added": [], "modified": ["src/x.rs"], "removed": ["old.md"]}
            ],
            "head_commit": {"id": "2222222222222222222222222222222222222222", "message": "two"},
            "pusher": {"name": "octo", "email": "o@example.com"}
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        base
    }

    #[test]
    fn github_push_basic() {
        let body = serde_json::to_vec(&gh_push(json!({}))).unwrap();
        let p = push_of(run(Provider::GitHub, "push", Some("application/json"), &body).unwrap());
        assert_eq!(p.branch.as_deref(), Some("main"));
        assert_eq!(p.tag, None);
        assert_eq!(p.after, "2222222222222222222222222222222222222222");
        assert_eq!(p.changed_files, vec!["a.txt", "old.md", "src/x.rs"]);
        assert!(p.commits_complete);
        assert!(!p.deleted && !p.forced);
        assert_eq!(p.head_message.as_deref(), Some("two"));
        assert_eq!(p.pusher.as_deref(), Some("octo"));
        assert_eq!(p.repository.full_name.as_deref(), Some("o/r"));
        assert_eq!(
            p.repository.urls,
            vec!["https://github.com/o/r.git", "https://github.com/o/r"]
        );
    }

    #[test]
    fn github_push_variants() {
        let zeros = "0000000000000000000000000000000000000000";
        type Check = fn(&Push) -> bool;
        let cases: Vec<(&str, Value, Check)> = vec![
            ("tag", json!({"ref": "refs/tags/v1.2"}), |p| {
                p.tag.as_deref() == Some("v1.2") && p.branch.is_none()
            }),
            ("deleted flag", json!({"deleted": true}), |p| p.deleted),
            (
                "zero after",
                json!({"after": zeros, "deleted": null}),
                |p| p.deleted,
            ),
            ("forced", json!({"forced": true}), |p| p.forced),
            ("no commits field", json!({"commits": null}), |p| {
                !p.commits_complete && p.changed_files.is_empty()
            }),
            (
                "commit without file lists",
                json!({"commits": [{"id": "x"}]}),
                |p| !p.commits_complete,
            ),
            ("notes ref", json!({"ref": "refs/notes/commits"}), |p| {
                p.branch.is_none() && p.tag.is_none()
            }),
            ("empty branch name", json!({"ref": "refs/heads/"}), |p| {
                p.branch.is_none()
            }),
            (
                "slashy branch",
                json!({"ref": "refs/heads/release/1.x"}),
                |p| p.branch.as_deref() == Some("release/1.x"),
            ),
            (
                "shell branch",
                json!({"ref": "refs/heads/$(touch x);`id`${IFS}"}),
                |p| p.branch.as_deref() == Some("$(touch x);`id`${IFS}"),
            ),
            ("no head_commit", json!({"head_commit": null}), |p| {
                p.head_message.as_deref() == Some("two")
            }),
            (
                "unknown fields",
                json!({"whatever": {"deep": [1, 2]}}),
                |p| p.after.starts_with("2222"),
            ),
        ];
        for (name, extra, check) in cases {
            let body = serde_json::to_vec(&gh_push(extra)).unwrap();
            let p = push_of(run(Provider::GitHub, "push", None, &body).unwrap());
            assert!(check(&p), "{name}: {p:?}");
        }
        let many: Vec<Value> = (0..GITHUB_MAX_COMMITS)
            .map(|i| json!({"id": i.to_string(), "added": ["f"]}))
            .collect();
        let body = serde_json::to_vec(&gh_push(json!({ "commits": many }))).unwrap();
        assert!(!push_of(run(Provider::GitHub, "push", None, &body).unwrap()).commits_complete);
    }

    #[test]
    fn malformed_bodies_are_invalid_with_specific_messages() {
        let no_after =
            serde_json::to_vec(&json!({"ref": "refs/heads/main", "repository": {}})).unwrap();
        let no_repo =
            serde_json::to_vec(&json!({"ref": "refs/heads/main", "after": "ab"})).unwrap();
        let cases: Vec<(&str, &[u8], Option<&str>, &str)> = vec![
            ("push", b"", None, "payload is empty"),
            ("push", b"  \n", None, "payload is empty"),
            ("push", b"{not json", None, "payload is not valid json"),
            ("push", b"[1,2]", None, "payload must be a json object"),
            ("push", b"null", None, "payload must be a json object"),
            ("push", &no_after, None, "push payload has no 'after'"),
            ("push", &no_repo, None, "push payload has no 'repository'"),
            ("push", br#"{"after":"ab","repository":{}}"#, None, "push payload has no 'ref'"),
            ("push", br#"{"ref":7,"after":"ab","repository":{}}"#, None, "push payload has no 'ref'"),
            ("pull_request", br#"{"number":1}"#, None, "pull_request payload has no 'action'"),
            ("pull_request", br#"{"action":"opened","number":1,"pull_request":{"head":{"ref":"f"},"base":{"ref":"main"}},"repository":{}}"#, None, "pull_request payload has no 'pull_request.head.sha'"),
            ("pull_request", br#"{"action":"opened","pull_request":{}}"#, None, "pull_request payload has no 'number'"),
            ("push", b"payload=%7B%zz", Some("application/x-www-form-urlencoded"), "bad percent escape"),
            ("push", b"other=1", Some("application/x-www-form-urlencoded"), "has no 'payload' field"),
            ("push", b"payload=", Some("application/x-www-form-urlencoded"), "'payload' field is empty"),
            ("push", b"payload=%7Bnope", None, "'payload' field is not valid json"),
        ];
        for (event, body, ct, want) in cases {
            match run(Provider::GitHub, event, ct, body) {
                Err(Error::Invalid(m)) => assert!(m.contains(want), "{want:?} not in {m:?}"),
                other => panic!("{want}: expected invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn missing_event_header_is_invalid() {
        let h = hdrs(&[("Content-Type", "application/json")]);
        let err = parse(Provider::GitHub, &Headers::new(&h), None, b"{}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing X-GitHub-Event header: cannot tell the github event type"
        );
    }

    #[test]
    fn form_encoded_delivery() {
        let json = serde_json::to_string(&gh_push(
            json!({"head_commit": {"message": "a+b & c=d 100% \u{e9}"}}),
        ))
        .unwrap();
        let mut enc = String::new();
        for b in json.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    enc.push(b as char)
                }
                b' ' => enc.push('+'),
                _ => enc.push_str(&format!("%{b:02X}")),
            }
        }
        for ct in [
            Some("application/x-www-form-urlencoded"),
            Some("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
            None,
        ] {
            let body = format!("payload={enc}");
            let p = push_of(run(Provider::GitHub, "push", ct, body.as_bytes()).unwrap());
            assert_eq!(
                p.head_message.as_deref(),
                Some("a+b & c=d 100% \u{e9}"),
                "{ct:?}"
            );
            let later = format!("x=1&payload={enc}&y=2");
            let p = push_of(
                run(
                    Provider::GitHub,
                    "push",
                    ct.or(Some("application/x-www-form-urlencoded")),
                    later.as_bytes(),
                )
                .unwrap(),
            );
            assert_eq!(p.branch.as_deref(), Some("main"));
        }
        assert_eq!(url_decode(b"a+b%2Bc%25").unwrap(), b"a b+c%");
        assert!(url_decode(b"%").is_err());
        assert!(url_decode(b"%4").is_err());
    }

    #[test]
    fn github_ping_and_unknown_events() {
        assert_eq!(
            run(
                Provider::GitHub,
                "ping",
                None,
                br#"{"zen":"Keep it simple.","hook_id":1}"#
            )
            .unwrap(),
            GitEvent::Ping {
                zen: Some("Keep it simple.".into())
            }
        );
        assert_eq!(
            run(Provider::GitHub, "ping", None, br#"{"hook_id":1}"#).unwrap(),
            GitEvent::Ping { zen: None }
        );
        let e = run(Provider::GitHub, "issues", None, b"{}").unwrap();
        assert_eq!(
            e,
            GitEvent::Ignored {
                kind: "issues".into(),
                reason: "event 'issues' does not trigger builds".into()
            }
        );
        assert_eq!(e.kind(), "issues");
    }

    fn gh_pr(action: &str, head_repo: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "action": action,
            "number": 42,
            "pull_request": {
                "number": 42,
                "head": {"ref": "feature", "sha": "abc123", "repo": head_repo},
                "base": {"ref": "main", "repo": {"id": 1, "full_name": "o/r"}}
            },
            "repository": {"id": 1, "full_name": "o/r", "clone_url": "https://github.com/o/r.git"}
        }))
        .unwrap()
    }

    #[test]
    fn github_pull_requests() {
        let same = json!({"id": 1, "full_name": "o/r", "clone_url": "https://github.com/o/r.git"});
        let fork =
            json!({"id": 2, "full_name": "evil/r", "clone_url": "https://github.com/evil/r.git"});
        for action in ["opened", "synchronize", "reopened"] {
            match run(
                Provider::GitHub,
                "pull_request",
                None,
                &gh_pr(action, same.clone()),
            )
            .unwrap()
            {
                GitEvent::PullRequest(pr) => {
                    assert_eq!(
                        (
                            pr.number,
                            pr.head_sha.as_str(),
                            pr.head_ref.as_str(),
                            pr.base_ref.as_str()
                        ),
                        (42, "abc123", "feature", "main")
                    );
                    assert!(!pr.from_fork);
                    assert_eq!(pr.action, action);
                }
                other => panic!("{action}: {other:?}"),
            }
        }
        for action in ["closed", "labeled", "edited", "ready_for_review"] {
            match run(
                Provider::GitHub,
                "pull_request",
                None,
                &gh_pr(action, same.clone()),
            )
            .unwrap()
            {
                GitEvent::Ignored { kind, reason } => {
                    assert_eq!(kind, "pull_request");
                    assert!(reason.contains(action), "{reason}");
                }
                other => panic!("{action}: {other:?}"),
            }
        }
        let GitEvent::PullRequest(pr) = run(
            Provider::GitHub,
            "pull_request",
            None,
            &gh_pr("opened", fork),
        )
        .unwrap() else {
            panic!()
        };
        assert!(pr.from_fork);
        assert_eq!(
            pr.head_repository.unwrap().full_name.as_deref(),
            Some("evil/r")
        );
        let GitEvent::PullRequest(pr) = run(
            Provider::GitHub,
            "pull_request",
            None,
            &gh_pr("opened", Value::Null),
        )
        .unwrap() else {
            panic!()
        };
        assert!(pr.from_fork && pr.head_repository.is_none());
        // By name when ids are absent.
        let by_name = json!({"full_name": "O/R"});
        let body = String::from_utf8(gh_pr("opened", by_name))
            .unwrap()
            .replace("\"id\":1,", "");
        let GitEvent::PullRequest(pr) =
            run(Provider::GitHub, "pull_request", None, body.as_bytes()).unwrap()
        else {
            panic!()
        };
        assert!(!pr.from_fork);
    }

    #[test]
    fn gitea_push_total_commits_and_pr_synchronized() {
        let body = serde_json::to_vec(&json!({
            "ref": "refs/heads/main", "before": "1", "after": "2", "total_commits": 7,
            "commits": [{"id": "2", "message": "m", "added": ["x"], "removed": [], "modified": []}],
            "repository": {"full_name": "o/r", "clone_url": "http://gitea.local:3000/o/r.git"},
            "pusher": {"login": "me", "username": "me"}
        }))
        .unwrap();
        let p = push_of(run(Provider::Gitea, "push", None, &body).unwrap());
        assert!(!p.commits_complete, "7 commits pushed, 1 listed");
        assert_eq!(p.pusher.as_deref(), Some("me"));
        let pr = serde_json::to_vec(&json!({
            "action": "synchronized", "number": 3,
            "pull_request": {"head": {"ref": "f", "sha": "s", "repo_id": 5, "repo": {"id": 5, "full_name": "o/r"}},
                             "base": {"ref": "main", "repo_id": 5, "repo": {"id": 5, "full_name": "o/r"}}},
            "repository": {"id": 5, "full_name": "o/r"}
        })).unwrap();
        assert!(
            matches!(run(Provider::Forgejo, "pull_request", None, &pr).unwrap(), GitEvent::PullRequest(p) if !p.from_fork && p.number == 3)
        );
        assert!(matches!(
            run(Provider::Gitea, "pull_request_sync", None, &pr).unwrap(),
            GitEvent::PullRequest(_)
        ));
        assert!(matches!(
            run(Provider::Gitea, "create", None, b"{}").unwrap(),
            GitEvent::Ignored { .. }
        ));
    }

    #[test]
    fn forgejo_event_header_falls_back_to_gitea() {
        let h = hdrs(&[("X-Gitea-Event", "push")]);
        assert_eq!(
            event_type(Provider::Forgejo, &Headers::new(&h)).as_deref(),
            Some("push")
        );
        assert_eq!(event_type(Provider::GitHub, &Headers::new(&h)), None);
    }

    #[test]
    fn delivery_ids() {
        let h = hdrs(&[
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("X-Gitlab-Event-UUID", " 0f1c "),
            ("X-Gitea-Delivery", "g-1"),
            ("X-Forgejo-Delivery", "f-1"),
            ("X-Request-UUID", "has space"),
        ]);
        let h = Headers::new(&h);
        assert_eq!(
            delivery_id(Provider::GitHub, &h).as_deref(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        assert_eq!(delivery_id(Provider::GitLab, &h).as_deref(), Some("0f1c"));
        assert_eq!(delivery_id(Provider::Gitea, &h).as_deref(), Some("g-1"));
        assert_eq!(delivery_id(Provider::Forgejo, &h).as_deref(), Some("f-1"));
        assert_eq!(delivery_id(Provider::Bitbucket, &h), None);
        let long = "a".repeat(201);
        let h2 = hdrs(&[("X-Gitea-Delivery", "g-2"), ("X-GitHub-Delivery", &long)]);
        assert_eq!(
            delivery_id(Provider::Forgejo, &Headers::new(&h2)).as_deref(),
            Some("g-2")
        );
        assert_eq!(delivery_id(Provider::GitHub, &Headers::new(&h2)), None);
    }

    #[test]
    fn gitlab_system_hook_dispatches_on_object_kind() {
        let body = serde_json::to_vec(&json!({
            "object_kind": "push", "event_name": "push", "ref": "refs/heads/main",
            "before": "1", "after": "2", "checkout_sha": "2", "total_commits_count": 0, "commits": [],
            "project": {"path_with_namespace": "g/p", "git_http_url": "https://gl.example/g/p.git"}
        })).unwrap();
        let p = push_of(run(Provider::GitLab, "System Hook", None, &body).unwrap());
        assert_eq!(p.repository.full_name.as_deref(), Some("g/p"));
        assert!(matches!(
            run(
                Provider::GitLab,
                "System Hook",
                None,
                br#"{"event_name":"project_create"}"#
            )
            .unwrap(),
            GitEvent::Ignored { .. }
        ));
        assert!(
            matches!(run(Provider::GitLab, "Note Hook", None, b"{}").unwrap(), GitEvent::Ignored { kind, .. } if kind == "Note Hook")
        );
    }

    #[test]
    fn zero_sha() {
        assert!(is_zero_sha("0000000000000000000000000000000000000000"));
        assert!(is_zero_sha(&"0".repeat(64)));
        assert!(!is_zero_sha(""));
        assert!(!is_zero_sha("0000000000000000000000000000000000000001"));
    }
}
