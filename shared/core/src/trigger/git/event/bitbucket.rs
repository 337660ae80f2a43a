//! Bitbucket Cloud payloads: `repo:push`, which may change several refs at
//! once (one event per change).

use serde_json::Value;

use super::fields::{at, bool_at, first_str, missing, required_str, str_at};
use super::{GitEvent, Push, RepoUrls};
use crate::error::{Error, Result};

fn repo_urls(repo: &Value) -> RepoUrls {
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

pub(super) fn push(v: &Value) -> Result<Vec<GitEvent>> {
    const WHAT: &str = "push";
    let changes = at(v, &["push", "changes"])
        .and_then(Value::as_array)
        .ok_or_else(|| missing(WHAT, &["push", "changes"]))?;
    let repo = at(v, &["repository"]).ok_or_else(|| missing(WHAT, &["repository"]))?;
    let repository = repo_urls(repo);
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
