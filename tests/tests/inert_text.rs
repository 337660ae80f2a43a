//! Untrusted text stays inert end to end: a signed delivery whose branch
//! holds a newline, an escape sequence or a NUL is refused (400, JSON,
//! recorded with the reason) and starts nothing, so it cannot forge a line
//! in any run's log; text from an accepted delivery reaches the event
//! record and `crtask events list` with its control characters escaped.

use crtask_tests::{github_signature, post_webhook, show, Registry, Server};
use serde_json::{json, Value};

const SECRET: &str = "inert-text-secret";
const REPO: &str = "https://git.example.invalid/test/repo.git";
const SHA: &str = "2222222222222222222222222222222222222222";

fn deliver(srv: &Server, event: &str, delivery: &str, body: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(body).unwrap();
    post_webhook(
        &format!("{}/webhooks/git", srv.url),
        &[
            ("X-GitHub-Event", event.to_string()),
            ("X-GitHub-Delivery", delivery.to_string()),
            ("X-Hub-Signature-256", github_signature(SECRET, &body)),
            ("Content-Type", "application/json".to_string()),
        ],
        &body,
    )
    .unwrap()
}

fn push(git_ref: &str) -> Value {
    json!({
        "ref": git_ref,
        "before": "1111111111111111111111111111111111111111",
        "after": SHA,
        "commits": [{"id": SHA, "message": "m", "added": [], "removed": [], "modified": ["a"]}],
        "repository": {"full_name": "test/repo", "clone_url": REPO},
        "pusher": {"name": "tester"}
    })
}

/// Bytes a terminal acts on: C0 controls other than the line end, DEL, and
/// the UTF-8 encodings of C1 controls (U+0080-U+009F start with 0xC2).
fn raw_controls(out: &[u8]) -> Vec<(usize, u8)> {
    let mut found = Vec::new();
    for (i, w) in out.windows(2).enumerate() {
        if w[0] == 0xC2 && (0x80..=0x9F).contains(&w[1]) {
            found.push((i, w[1]));
        }
    }
    for (i, b) in out.iter().enumerate() {
        if (*b < 0x20 && *b != b'\n') || *b == 0x7F {
            found.push((i, *b));
        }
    }
    found
}

#[test]
fn hostile_branches_are_refused_and_events_list_prints_no_raw_controls() {
    let reg = Registry::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let srv = Server::start(
        &reg,
        &["--git-webhook-secret-file", secret.to_str().unwrap()],
    )
    .unwrap();
    srv.cli_json(&["task", "create", "--name", "app", "-c", REPO, "-t", "app:1"])
        .unwrap();

    let forged = "main\ncrtask: run ca1 Succeeded after 1s FORGED";
    let hostile = [
        format!("refs/heads/{forged}"),
        "refs/heads/\u{1b}]0;pwned\u{7}\u{1b}[2J".to_string(),
        "refs/heads/nul\0byte".to_string(),
        "refs/heads/a..b".to_string(),
        "refs/heads/x.lock".to_string(),
        "refs/heads/a@{1}".to_string(),
    ];
    for (i, r) in hostile.iter().enumerate() {
        let (status, answer) = deliver(&srv, "push", &format!("h-{i}"), &push(r));
        assert_eq!(status, 400, "{r:?}: {answer}");
        let error = answer["error"].as_str().expect("a JSON error");
        assert!(error.contains("is not a valid git ref name"), "{error}");
    }
    // A C1 control (U+009B, the 8-bit CSI) is valid in a git ref name (git
    // allows any byte over 0x7F): accepted, and shown escaped.
    let (status, answer) = deliver(&srv, "push", "c1", &push("refs/heads/c1\u{9b}31m"));
    assert_eq!(status, 202, "{answer}");
    // A pull request action nobody builds on, full of escapes: accepted,
    // ignored, and its reason stored inert.
    let pr = json!({
        "action": "closed\u{1b}[2J\nFORGED",
        "number": 1,
        "pull_request": {"head": {"sha": SHA, "ref": "f"}, "base": {"ref": "main"}},
        "repository": {"full_name": "test/repo", "clone_url": REPO}
    });
    let (status, answer) = deliver(&srv, "pull_request", "pr-1", &pr);
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["outcome"], "ignored", "{answer}");

    let runs = srv.cli_json(&["task", "list-runs"]).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 0, "{runs}");
    assert!(
        !srv.data.join("logs").exists()
            || std::fs::read_dir(srv.data.join("logs")).unwrap().count() == 0,
        "a refused delivery wrote a run log"
    );

    let events = srv.cli_json(&["events", "list"]).unwrap();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), hostile.len() + 2);
    for e in events {
        let reason = e["reason"].as_str().unwrap();
        assert!(
            !reason.chars().any(char::is_control) && !reason.contains('\u{9b}'),
            "stored reason holds a control character: {reason:?}"
        );
    }
    assert!(
        events.iter().any(|e| e["reason"]
            .as_str()
            .unwrap()
            .contains("main\\ncrtask: run ca1")),
        "the refused name is shown escaped: {events:?}"
    );

    let out = srv.cli(&["events", "list"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(raw_controls(&out.stdout), vec![], "{}", show(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    // Header, rule, one line per event: no forged line.
    assert_eq!(text.lines().count(), events.len() + 2, "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("crtask: run")),
        "{text}"
    );
}
