//! Request bodies as senders shape them: a GitHub push, a Lambda Function
//! URL request (payload format 2.0).

use crate::model::setters;
use serde_json::{json, Map, Value};

/// A GitHub `push` delivery body. [`GithubPush::new`] is one commit to a
/// branch; the setters change what a test needs, [`GithubPush::body`] gives
/// the bytes to sign.
#[derive(Debug, Clone)]
pub struct GithubPush(Push);

#[derive(Debug, Clone)]
struct Push {
    git_ref: String,
    before: String,
    /// (id, modified files), oldest first; the last one is the head.
    commits: Vec<(String, Vec<String>)>,
    message: String,
    full_name: String,
    clone_url: String,
    html_url: String,
    pusher: String,
    deleted: bool,
    forced: bool,
}

/// What `before` is when a test does not say (any commit but the pushed one).
pub const BEFORE: &str = "0000000000000000000000000000000000000001";

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl GithubPush {
    /// A push of `commit` (changing `app.go`) to `branch` of the repository
    /// cloned from `repo_url` (`https://github.com/acme/app.git`); its
    /// `full_name` is the URL's last two path segments.
    pub fn new(repo_url: &str, branch: &str, commit: &str) -> Self {
        let path = repo_url
            .split_once("://")
            .map_or(repo_url, |(_, rest)| rest)
            .trim_end_matches('/')
            .trim_end_matches(".git");
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let full_name = segments[segments.len().saturating_sub(2)..].join("/");
        GithubPush(Push {
            git_ref: format!("refs/heads/{branch}"),
            before: BEFORE.into(),
            commits: vec![(commit.into(), vec!["app.go".into()])],
            message: "change".into(),
            full_name,
            clone_url: repo_url.into(),
            html_url: repo_url.trim_end_matches(".git").into(),
            pusher: "tester".into(),
            deleted: false,
            forced: false,
        })
    }

    setters! {
        /// Pushes to `git_ref` (`refs/tags/v1`, `refs/heads/x`) instead.
        git_ref(v: &str) => git_ref = v.into();
        before(v: &str) => before = v.into();
        /// The pushed commits as (id, modified files), oldest first; the last
        /// is `after`. None: a push that carries no commit (`after` all zeros).
        commits(v: &[(&str, &[&str])]) => commits = v.iter().map(|(id, f)| (id.to_string(), strings(f))).collect();
        message(v: &str) => message = v.into();
        full_name(v: &str) => full_name = v.into();
        /// The repository's web URL (default: the clone URL without `.git`).
        html_url(v: &str) => html_url = v.into();
        pusher(v: &str) => pusher = v.into();
        deleted(v: bool) => deleted = v;
        forced(v: bool) => forced = v;
    }

    /// The head commit (`after`).
    pub fn after(&self) -> &str {
        self.0
            .commits
            .last()
            .map_or("0000000000000000000000000000000000000000", |c| c.0.as_str())
    }

    pub fn json(&self) -> Value {
        let p = &self.0;
        let commits: Vec<Value> = p
            .commits
            .iter()
            .map(|(id, files)| {
                json!({"id": id, "message": p.message, "added": [], "removed": [], "modified": files})
            })
            .collect();
        json!({
            "ref": p.git_ref,
            "before": p.before,
            "after": self.after(),
            "created": false, "deleted": p.deleted, "forced": p.forced,
            "commits": commits,
            "head_commit": commits.last(),
            "repository": {
                "full_name": p.full_name,
                "clone_url": p.clone_url,
                "html_url": p.html_url,
                "default_branch": "main"
            },
            "pusher": {"name": p.pusher}
        })
    }

    /// The body as sent (compact JSON).
    pub fn body(&self) -> Vec<u8> {
        self.json().to_string().into_bytes()
    }
}

/// A Lambda Function URL request (payload format 2.0) of `method` on
/// `path` with `headers` (names lower-cased, as Lambda hands them over) and
/// a text `body`.
pub fn function_url_event<K: AsRef<str>, V: AsRef<str>>(
    method: &str,
    path: &str,
    headers: &[(K, V)],
    body: &[u8],
) -> Value {
    let headers: Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.as_ref().into()))
        .collect();
    let user_agent = headers
        .get("user-agent")
        .cloned()
        .unwrap_or_else(|| "crtask-test".into());
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnop",
            "domainName": "abcdefghijklmnop.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnop",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": user_agent
            },
            "requestId": "d1b3f7a2-0c4e-4f6a-9b8d-2e1f3a5c7b9d",
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1_795_766_400_000u64
        },
        "body": String::from_utf8_lossy(body),
        "isBase64Encoded": false
    })
}

/// The `statusCode` and JSON body of a Function URL answer (`null` when the
/// body is not JSON).
pub fn function_url_answer(answer: &Value) -> (u16, Value) {
    let status = answer["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = answer["body"].as_str().unwrap_or("null");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_names_its_repository_and_head() {
        let p = GithubPush::new("https://github.com/acme/app.git", "main", "c1")
            .commits(&[("c0", &["a"]), ("c1", &["b"])]);
        let v = p.json();
        assert_eq!(v["ref"], "refs/heads/main");
        assert_eq!(v["after"], "c1");
        assert_eq!(v["head_commit"]["id"], "c1");
        assert_eq!(v["repository"]["full_name"], "acme/app");
        assert_eq!(v["repository"]["html_url"], "https://github.com/acme/app");
        let none = GithubPush::new("git://127.0.0.1:9418/repo.git", "main", "c1")
            .commits(&[])
            .json();
        assert_eq!(none["after"], "0000000000000000000000000000000000000000");
        assert_eq!(none["head_commit"], Value::Null);
        assert_eq!(none["repository"]["full_name"], "repo");
    }
}
