//! GitLab payloads: `Push Hook`, `Tag Push Hook`, `Merge Request Hook` (and
//! the same bodies inside a `System Hook`).

use serde_json::Value;

use super::fields::{
    at, changed_files, commit_message, first_str, is_zero_sha, missing, required_str, split_ref,
    str_at, u64_at,
};
use super::{GitEvent, PullRequest, Push, RepoUrls};
use crate::error::Result;

/// Merge request actions that start a build.
const GITLAB_MR_ACTIONS: &[&str] = &["open", "reopen", "update"];

const GITLAB_URL_FIELDS: &[&str] = &[
    "git_http_url",
    "git_ssh_url",
    "web_url",
    "http_url",
    "ssh_url",
    "homepage",
    "url",
];

fn repo_urls(project: Option<&Value>, extra: Option<&Value>) -> RepoUrls {
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

pub(super) fn push(v: &Value) -> Result<Push> {
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
        repository: repo_urls(project, repository),
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

pub(super) fn merge_request(event: &str, v: &Value) -> Result<GitEvent> {
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
    let repository = repo_urls(project.or(target), target);
    let head_repository = source.map(|s| repo_urls(Some(s), None));
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
