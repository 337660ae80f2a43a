//! Reading payload fields: JSON paths, refs, commit lists. Shared by the
//! provider parsers.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::{Error, Result};

pub(super) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .filter(|v| !v.is_null())
}

pub(super) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

/// A non-empty string, or an error naming the missing field.
pub(super) fn required_str<'a>(v: &'a Value, path: &[&str], what: &str) -> Result<&'a str> {
    str_at(v, path)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing(what, path))
}

pub(super) fn missing(what: &str, path: &[&str]) -> Error {
    Error::invalid(format!("{what} payload has no '{}'", path.join(".")))
}

pub(super) fn bool_at(v: &Value, path: &[&str]) -> bool {
    at(v, path).and_then(Value::as_bool).unwrap_or(false)
}

/// A non-negative integer, also accepted as a decimal string.
pub(super) fn u64_at(v: &Value, path: &[&str]) -> Option<u64> {
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
pub(super) fn split_ref(git_ref: &str) -> (Option<String>, Option<String>) {
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
pub(super) fn changed_files(
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
pub(super) fn commit_message<'a>(commits: Option<&'a Value>, sha: &str) -> Option<&'a str> {
    commits?
        .as_array()?
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(sha))
        .and_then(|c| c.get("message"))
        .and_then(Value::as_str)
}

pub(super) fn first_str<'a>(v: &'a Value, paths: &[&[&str]]) -> Option<&'a str> {
    paths
        .iter()
        .find_map(|p| str_at(v, p).map(str::trim).filter(|s| !s.is_empty()))
}
