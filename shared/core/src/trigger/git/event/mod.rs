//! Step 2 of a git webhook: the provider's payload turned into one domain
//! event.
//!
//! Call [`super::verify::verify`] on the raw body first; then [`parse`] (or
//! [`parse_all`] for Bitbucket, which may report several ref changes in one
//! delivery) reads the event header and the body. Unknown fields are ignored
//! everywhere; event types and pull request actions that never start a build
//! come back as [`GitEvent::Ignored`] with a reason. Errors are
//! [`Error::Invalid`] (answer 400) with a message naming what is wrong.
//!
//! Supported, one file per payload family:
//! - `github.rs`: GitHub `ping`, `push`, `pull_request` (JSON or form-encoded
//!   `payload=`, see `body.rs`), and Gitea / Forgejo `push`, `pull_request`
//!   (`pull_request_sync`), which share GitHub's shape.
//! - `gitlab.rs`: GitLab `Push Hook`, `Tag Push Hook`, `Merge Request Hook`
//!   (and the same kinds inside a `System Hook`).
//! - `bitbucket.rs`: Bitbucket Cloud `repo:push`.
//!
//! Every ref name of a parsed event must pass git's check-ref-format rules
//! (`refname.rs`), whichever provider sent it.
//!
//! `fields.rs` holds the field readers they share. Next: [`super::decide`]
//! matches the event against every task.

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::trigger::git::verify::Provider;
use crate::trigger::request::{header, HeaderLookup};

mod bitbucket;
mod body;
mod fields;
mod github;
mod gitlab;
mod refname;

pub use fields::is_zero_sha;
use fields::str_at;

/// Longest event type or delivery id kept from a header.
const MAX_HEADER_TOKEN: usize = 200;

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
    pub(super) fn push_url(&mut self, url: Option<&str>) {
        if let Some(u) = url.map(str::trim).filter(|u| !u.is_empty()) {
            if !self.urls.iter().any(|x| x == u) {
                self.urls.push(u.to_string());
            }
        }
    }

    pub(super) fn add_fields(&mut self, obj: Option<&Value>, fields: &[&str]) {
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
    let json = body::decode(content_type, body)?;
    let events = parse_events(provider, &event, &json)?;
    refname::check(&events)?;
    Ok(events)
}

fn parse_events(provider: Provider, event: &str, json: &Value) -> Result<Vec<GitEvent>> {
    let one = |e: GitEvent| Ok(vec![e]);
    match provider {
        Provider::GitHub => match event {
            "ping" => one(GitEvent::Ping {
                zen: str_at(json, &["zen"]).map(str::to_string),
            }),
            "push" => one(GitEvent::Push(github::push(provider, json)?)),
            "pull_request" => one(github::pull_request(json)?),
            _ => one(ignored_event(event)),
        },
        Provider::Gitea | Provider::Forgejo => match event {
            "push" => one(GitEvent::Push(github::push(provider, json)?)),
            "pull_request" | "pull_request_sync" => one(github::pull_request(json)?),
            _ => one(ignored_event(event)),
        },
        Provider::GitLab => {
            let kind = match event {
                "Push Hook" | "Tag Push Hook" => "push",
                "Merge Request Hook" => "merge_request",
                // System hooks carry the same bodies; tell them by their kind.
                "System Hook" => str_at(json, &["object_kind"])
                    .or_else(|| str_at(json, &["event_name"]))
                    .map(|k| match k {
                        "push" | "tag_push" => "push",
                        "merge_request" => "merge_request",
                        _ => "",
                    })
                    .unwrap_or(""),
                _ => "",
            };
            match kind {
                "push" => one(GitEvent::Push(gitlab::push(json)?)),
                "merge_request" => one(gitlab::merge_request(event, json)?),
                _ => one(ignored_event(event)),
            }
        }
        Provider::Bitbucket => match event {
            "repo:push" => bitbucket::push(json),
            _ => one(ignored_event(event)),
        },
    }
}

fn cap(s: &str) -> String {
    s.chars().take(MAX_HEADER_TOKEN).collect()
}

pub(super) fn ignored_event(event: &str) -> GitEvent {
    GitEvent::Ignored {
        kind: event.to_string(),
        reason: format!("event '{event}' does not trigger builds"),
    }
}

#[cfg(test)]
mod tests {
    use super::body::form_field;
    use super::github::GITHUB_MAX_COMMITS;
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
            (
                "slashy branch",
                json!({"ref": "refs/heads/release/1.x"}),
                |p| p.branch.as_deref() == Some("release/1.x"),
            ),
            (
                "shell branch",
                json!({"ref": "refs/heads/$(touch${IFS}x);`id`"}),
                |p| p.branch.as_deref() == Some("$(touch${IFS}x);`id`"),
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
            ("push", b"payload=%7B%zz", Some("application/x-www-form-urlencoded"), "'payload' field is not valid json"),
            ("push", b"other=1", Some("application/x-www-form-urlencoded"), "has no 'payload' field"),
            ("push", b"payload=", Some("application/x-www-form-urlencoded"), "'payload' field is empty"),
            ("push", b"payload=%7Bnope", None, "'payload' field is not valid json"),
            ("push", br#"{"ref":"refs/heads/","after":"ab","repository":{}}"#, None, "ref 'refs/heads/' is not a valid git ref name"),
            ("push", br#"{"ref":"refs/heads/a\nb","after":"ab","repository":{}}"#, None, "ref 'refs/heads/a\\nb' is not a valid git ref name"),
            ("pull_request", br#"{"action":"opened","number":1,"pull_request":{"head":{"sha":"ab","ref":"f..g"},"base":{"ref":"main"}},"repository":{}}"#, None, "source branch 'f..g' is not a valid git ref name"),
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
        let enc: String = form_urlencoded::byte_serialize(json.as_bytes()).collect();
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
        let field = |body: &[u8]| form_field(body, "payload");
        assert_eq!(field(b"payload=a+b%2Bc%25").as_deref(), Some("a b+c%"));
        assert_eq!(field(b"x=1&payload=%4&payload=2").as_deref(), Some("%4"));
        assert_eq!(field(b"pay%6Coad=1").as_deref(), Some("1"));
        assert_eq!(field(b"payloads=1"), None);
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
