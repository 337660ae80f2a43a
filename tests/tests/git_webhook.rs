//! Git webhooks end to end: a repository served by `git daemon`, signed
//! GitHub deliveries posted to `crtask serve`, real builds of the pushed commit.

use crtask_tests::{github_signature, post_webhook, show, GitServer, Registry, Server};
use serde_json::{json, Value};

const SECRET: &str = "It's a Secret to Everybody";

struct Fixture {
    reg: Registry,
    git: GitServer,
    srv: Server,
    _secret_dir: tempfile::TempDir,
}

fn fixture(extra: &[&str]) -> Fixture {
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "v1").unwrap();
    let git = GitServer::start().unwrap();
    let secret_dir = tempfile::tempdir().unwrap();
    let old = secret_dir.path().join("old");
    let new = secret_dir.path().join("new");
    std::fs::write(&old, "the-previous-secret\n").unwrap();
    std::fs::write(&new, format!("{SECRET}\n")).unwrap();
    let mut args = vec![
        "--git-webhook-secret-file".to_string(),
        old.display().to_string(),
        "--git-webhook-secret-file".to_string(),
        new.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let srv = Server::start(&reg, &args).unwrap();
    Fixture {
        reg,
        git,
        srv,
        _secret_dir: secret_dir,
    }
}

fn dockerfile(reg: &Registry) -> String {
    format!(
        "FROM {}/base:1\nCOPY v.txt /v.txt\nRUN echo \"content: $(cat /v.txt)\"\n",
        reg.host
    )
}

/// A GitHub push payload as GitHub shapes it.
fn push_payload(url: &str, branch: &str, before: &str, commits: &[(&str, &[&str])]) -> Vec<u8> {
    let after = commits
        .last()
        .map(|c| c.0)
        .unwrap_or("0000000000000000000000000000000000000000");
    let commits: Vec<Value> = commits
        .iter()
        .map(|(id, files)| json!({"id": id, "message": "change", "added": [], "removed": [], "modified": files}))
        .collect();
    serde_json::to_vec(&json!({
        "ref": format!("refs/heads/{branch}"),
        "before": before,
        "after": after,
        "created": false, "deleted": false, "forced": false,
        "commits": commits,
        "head_commit": commits.last(),
        "repository": {"full_name": "test/repo", "clone_url": url, "html_url": url, "default_branch": "main"},
        "pusher": {"name": "tester"}
    }))
    .unwrap()
}

fn deliver(srv: &Server, event: &str, delivery: &str, body: &[u8], secret: &str) -> (u16, Value) {
    post_webhook(
        &format!("{}/webhooks/git", srv.url),
        &[
            ("X-GitHub-Event", event.to_string()),
            ("X-GitHub-Delivery", delivery.to_string()),
            ("X-Hub-Signature-256", github_signature(secret, body)),
            ("Content-Type", "application/json".to_string()),
        ],
        body,
    )
    .unwrap()
}

fn run_count(srv: &Server) -> usize {
    srv.cli_json(&["task", "list-runs", "--top", "100"])
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn signed_push_builds_exactly_the_pushed_head_once() {
    let f = fixture(&[]);
    let c1 = f
        .git
        .commit(
            "main",
            &[("Dockerfile", &dockerfile(&f.reg)), ("v.txt", "first")],
            "one",
        )
        .unwrap();
    let url = f.git.url();
    let t = f
        .srv
        .cli_json(&[
            "task",
            "create",
            "--name",
            "app",
            "-c",
            &format!("{url}#main"),
            "-t",
            "app:c-{{.Run.Commit}}",
            "-t",
            "app:{{.Run.Branch}}-{{.Run.ID}}",
        ])
        .unwrap();
    assert_eq!(t["commitTriggerEnabled"], true);

    // Two commits in one push: the head is built, not the oldest.
    let c2 = f.git.commit("main", &[("v.txt", "second")], "two").unwrap();
    let c3 = f
        .git
        .commit("main", &[("v.txt", "third")], "three")
        .unwrap();
    let body = push_payload(&url, "main", &c1, &[(&c2, &["v.txt"]), (&c3, &["v.txt"])]);
    let (status, answer) = deliver(&f.srv, "push", "d-1", &body, SECRET);
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["outcome"], "triggered", "{answer}");
    let runs = answer["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{answer}");
    let id = runs[0].as_str().unwrap().to_string();

    let run = f
        .srv
        .wait_status(&id, 120, |s| s != "Queued" && s != "Running")
        .unwrap();
    assert_eq!(run["status"], "Succeeded", "{run}\n{}", f.srv.log());
    assert_eq!(run["runType"], "AutoBuild");
    assert_eq!(run["trigger"]["type"], "Commit");
    assert_eq!(run["trigger"]["commit"], c3.as_str());
    assert_eq!(run["trigger"]["branch"], "main");
    let logs = f.srv.cli(&["task", "logs", "--run-id", &id]);
    let log = String::from_utf8_lossy(&logs.stdout);
    assert!(
        log.contains("content: third"),
        "built the pushed head: {log}"
    );
    assert!(
        f.reg.digest("app", &format!("c-{c3}")).is_some(),
        "{{.Run.Commit}} tag pushed"
    );
    assert!(
        f.reg.digest("app", &format!("main-{id}")).is_some(),
        "{{.Run.Branch}} tag pushed"
    );

    // The same delivery again: the original answer, nothing new.
    let (status, again) = deliver(&f.srv, "push", "d-1", &body, SECRET);
    assert_eq!(status, 202);
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["runs"], answer["runs"]);
    // A new delivery of the same commit: not built twice.
    let (status, same) = deliver(&f.srv, "push", "d-2", &body, SECRET);
    assert_eq!(status, 202);
    assert_eq!(same["outcome"], "duplicate", "{same}");
    assert_eq!(run_count(&f.srv), 1);

    let events = f
        .srv
        .cli_json(&["events", "list", "--source", "git"])
        .unwrap();
    let outcomes: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    // The redelivery of d-1 recorded nothing: one event per delivery id.
    assert_eq!(outcomes, ["duplicate", "triggered"], "{events}");
}

#[test]
fn forged_or_malformed_deliveries_are_rejected_and_start_nothing() {
    let f = fixture(&["--webhook-body-limit", "4096"]);
    let c1 = f
        .git
        .commit(
            "main",
            &[("Dockerfile", &dockerfile(&f.reg)), ("v.txt", "x")],
            "one",
        )
        .unwrap();
    let url = f.git.url();
    f.srv
        .cli_json(&[
            "task",
            "create",
            "--name",
            "app",
            "-c",
            &url,
            "-t",
            "app:{{.Run.ID}}",
        ])
        .unwrap();
    let body = push_payload(
        &url,
        "main",
        "0000000000000000000000000000000000000000",
        &[(&c1, &["v.txt"])],
    );
    let hook = format!("{}/webhooks/git", f.srv.url);

    // Wrong secret.
    let (s, a) = deliver(&f.srv, "push", "f-1", &body, "not-the-secret");
    assert_eq!(s, 401, "{a}");
    // Truncated signature.
    let sig = github_signature(SECRET, &body);
    let (s, _) = post_webhook(
        &hook,
        &[
            ("X-GitHub-Event", "push".into()),
            ("X-Hub-Signature-256", sig[..sig.len() - 2].to_string()),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(s, 401);
    // Body altered by one byte after signing.
    let mut altered = body.clone();
    let i = altered.iter().position(|b| *b == b'm').unwrap();
    altered[i] = b'n';
    let (s, _) = post_webhook(
        &hook,
        &[
            ("X-GitHub-Event", "push".into()),
            ("X-Hub-Signature-256", sig.clone()),
        ],
        &altered,
    )
    .unwrap();
    assert_eq!(s, 401);
    // No signature at all.
    let (s, a) = post_webhook(&hook, &[("X-GitHub-Event", "push".into())], &body).unwrap();
    assert_eq!(s, 401);
    assert!(
        a["error"].as_str().unwrap().contains("X-Hub-Signature-256"),
        "{a}"
    );
    // Correctly signed garbage.
    let garbage = b"{\"ref\": 12, not json";
    let (s, a) = deliver(&f.srv, "push", "f-2", garbage, SECRET);
    assert_eq!(s, 400, "{a}");
    // Over the body limit.
    let big = vec![b' '; 5000];
    let (s, _) = deliver(&f.srv, "push", "f-3", &big, SECRET);
    assert_eq!(s, 413);
    // No provider header.
    let (s, _) = post_webhook(&hook, &[], &body).unwrap();
    assert_eq!(s, 400);

    assert_eq!(
        run_count(&f.srv),
        0,
        "a rejected request never starts a run"
    );
    let events = f.srv.cli_json(&["events", "list"]).unwrap();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["outcome"] == "rejected"),
        "{events}"
    );

    // The previous (rotated) secret still verifies.
    let (s, a) = deliver(&f.srv, "push", "f-4", &body, "the-previous-secret");
    assert_eq!(s, 202, "{a}");
    assert_eq!(a["outcome"], "triggered");
}

#[test]
fn untracked_branches_path_filters_and_pings_are_ignored_with_reasons() {
    let f = fixture(&[]);
    let url = f.git.url();
    let c1 = f
        .git
        .commit(
            "main",
            &[
                ("Dockerfile", &dockerfile(&f.reg)),
                ("v.txt", "x"),
                ("docs/a.md", "a"),
            ],
            "one",
        )
        .unwrap();
    f.srv
        .cli_json(&[
            "task",
            "create",
            "--name",
            "docs",
            "-c",
            &url,
            "-t",
            "docs:{{.Run.ID}}",
            "--path-filter",
            "docs/**",
        ])
        .unwrap();

    let (s, a) = deliver(
        &f.srv,
        "ping",
        "p-1",
        br#"{"zen":"Keep it logically awesome.","hook_id":1}"#,
        SECRET,
    );
    assert_eq!((s, a["outcome"].as_str()), (202, Some("ignored")), "{a}");

    let body = push_payload(&url, "dev", &c1, &[(&c1, &["v.txt"])]);
    let (s, a) = deliver(&f.srv, "push", "i-1", &body, SECRET);
    assert_eq!(s, 202);
    assert_eq!(a["outcome"], "ignored");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("'dev' is not tracked"),
        "{a}"
    );

    let body = push_payload(&url, "main", &c1, &[(&c1, &["v.txt"])]);
    let (_, a) = deliver(&f.srv, "push", "i-2", &body, SECRET);
    assert_eq!(a["outcome"], "ignored");
    assert!(a["reason"].as_str().unwrap().contains("path filter"), "{a}");

    let body = push_payload(
        "https://example.invalid/other/repo.git",
        "main",
        &c1,
        &[(&c1, &["docs/a.md"])],
    );
    let (_, a) = deliver(&f.srv, "push", "i-3", &body, SECRET);
    assert_eq!(a["outcome"], "ignored");
    assert!(
        a["reason"].as_str().unwrap().contains("no task tracks"),
        "{a}"
    );

    let body = push_payload(&url, "main", &c1, &[(&c1, &["docs/a.md"])]);
    let (_, a) = deliver(&f.srv, "push", "i-4", &body, SECRET);
    assert_eq!(
        a["outcome"], "triggered",
        "a change under docs/ matches: {a}"
    );
}

#[test]
fn branch_names_with_shell_syntax_are_built_as_plain_data() {
    let f = fixture(&[]);
    let url = f.git.url();
    let marker = tempfile::Builder::new()
        .prefix("crtask-marker")
        .tempdir()
        .unwrap();
    let m = marker.path().display().to_string();
    let branch = format!("x;$(touch${{IFS}}{m}/a)`touch${{IFS}}{m}/b`;touch${{IFS}}{m}/c");
    let c1 = f
        .git
        .commit(
            "main",
            &[("Dockerfile", &dockerfile(&f.reg)), ("v.txt", "evil")],
            "one",
        )
        .unwrap();
    f.git.branch(&branch, "main").unwrap();
    f.srv
        .cli_json(&[
            "task",
            "create",
            "--name",
            "evil",
            "-c",
            &url,
            "--branch",
            &branch,
            "-t",
            "evil:{{.Run.ID}}",
        ])
        .unwrap();
    let body = push_payload(
        &url,
        &branch,
        "0000000000000000000000000000000000000000",
        &[(&c1, &["v.txt"])],
    );
    let (s, a) = deliver(&f.srv, "push", "e-1", &body, SECRET);
    assert_eq!((s, a["outcome"].as_str()), (202, Some("triggered")), "{a}");
    let id = a["runs"][0].as_str().unwrap().to_string();
    let run = f
        .srv
        .wait_status(&id, 120, |s| s != "Queued" && s != "Running")
        .unwrap();
    assert_eq!(run["status"], "Succeeded", "{run}");
    assert_eq!(run["trigger"]["branch"], branch.as_str());
    let left: Vec<_> = std::fs::read_dir(marker.path()).unwrap().collect();
    assert!(left.is_empty(), "a branch name ran a command: {left:?}");
    let out = f.srv.cli(&["task", "show-run", "--run-id", &id]);
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn pull_requests_build_without_pushing_and_without_secrets() {
    let f = fixture(&[]);
    let url = f.git.url();
    let df = format!("FROM {}/base:1\nARG TOKEN\nCOPY v.txt /v.txt\nRUN echo \"token=[$TOKEN] content=$(cat /v.txt)\"\n", f.reg.host);
    f.git
        .commit("main", &[("Dockerfile", &df), ("v.txt", "main")], "one")
        .unwrap();
    f.git.branch("feature", "main").unwrap();
    let head = f
        .git
        .commit("feature", &[("v.txt", "from-pr")], "pr change")
        .unwrap();
    f.srv
        .cli_json(&[
            "task",
            "create",
            "--name",
            "app",
            "-c",
            &url,
            "-t",
            "pr:{{.Run.ID}}",
            "--pull-request-trigger-enabled",
            "true",
            "--secret-build-arg",
            "TOKEN=topsecret-value",
        ])
        .unwrap();
    let body = serde_json::to_vec(&json!({
        "action": "opened",
        "number": 7,
        "pull_request": {
            "number": 7,
            "head": {"ref": "feature", "sha": head, "repo": {"clone_url": url, "full_name": "test/repo"}},
            "base": {"ref": "main", "sha": "0000000000000000000000000000000000000001", "repo": {"clone_url": url, "full_name": "test/repo"}}
        },
        "repository": {"full_name": "test/repo", "clone_url": url, "html_url": url}
    }))
    .unwrap();
    let (s, a) = deliver(&f.srv, "pull_request", "pr-1", &body, SECRET);
    assert_eq!((s, a["outcome"].as_str()), (202, Some("triggered")), "{a}");
    let id = a["runs"][0].as_str().unwrap().to_string();
    let run = f
        .srv
        .wait_status(&id, 120, |s| s != "Queued" && s != "Running")
        .unwrap();
    assert_eq!(run["status"], "Succeeded", "{run}\n{}", f.srv.log());
    assert_eq!(run["trigger"]["type"], "PullRequest");
    assert_eq!(run["trigger"]["number"], 7);
    assert_eq!(run["trigger"]["commit"], head.as_str());
    assert!(
        run["outputImages"].as_array().unwrap().is_empty(),
        "a PR run pushes nothing: {run}"
    );
    assert_eq!(f.reg.digest("pr", &id), None);
    let logs = f.srv.cli(&["task", "logs", "--run-id", &id]);
    let log = String::from_utf8_lossy(&logs.stdout);
    assert!(
        log.contains("token=[] content=from-pr"),
        "no secret, the PR's code: {log}"
    );
    assert!(!log.contains("topsecret"), "{log}");

    // A task-file task: its push steps are skipped for the pull request.
    let tf = format!("steps:\n  - build: -t {}/prtf:{{{{.Run.ID}}}} .\n  - push: [\"{}/prtf:{{{{.Run.ID}}}}\"]\n", f.reg.host, f.reg.host);
    f.git
        .commit("feature", &[("ci.yaml", &tf)], "task file")
        .unwrap();
    let head2 = crtask_tests::git(&f.git.work(), &["rev-parse", "HEAD"]).unwrap();
    f.srv
        .cli_json(&[
            "task",
            "create",
            "--name",
            "apptf",
            "-c",
            &url,
            "-f",
            "ci.yaml",
            "--pull-request-trigger-enabled",
            "true",
        ])
        .unwrap();
    let body2 = String::from_utf8(body.clone())
        .unwrap()
        .replace(&head, &head2);
    let (_, a2) = deliver(&f.srv, "pull_request", "pr-3", body2.as_bytes(), SECRET);
    let tf_run = a2["runs"].as_array().unwrap().iter().find_map(|r| {
        let r = f.srv.run(r.as_str().unwrap()).unwrap();
        (r["task"] == "apptf").then_some(r)
    });
    let tf_run = tf_run.unwrap_or_else(|| panic!("no run for the task-file task: {a2}"));
    let id2 = tf_run["runId"].as_str().unwrap().to_string();
    let r = f
        .srv
        .wait_status(&id2, 120, |s| s != "Queued" && s != "Running")
        .unwrap();
    assert_eq!(r["status"], "Succeeded", "{r}");
    assert_eq!(r["runType"], "AutoRun");
    assert!(r["outputImages"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(
        f.reg.digest("prtf", &id2),
        None,
        "a PR run of a task file pushes nothing"
    );
    let logs = f.srv.cli(&["task", "logs", "--run-id", &id2]);
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("not pushing"),
        "{}",
        show(&logs)
    );

    // A closed pull request starts nothing.
    let closed = String::from_utf8(body)
        .unwrap()
        .replace("\"opened\"", "\"closed\"");
    let (_, a) = deliver(&f.srv, "pull_request", "pr-2", closed.as_bytes(), SECRET);
    assert_eq!(a["outcome"], "ignored", "{a}");
}

#[test]
fn private_repositories_are_cloned_with_a_token_that_is_never_logged() {
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "v1").unwrap();
    let git = GitServer::start().unwrap();
    git.commit(
        "main",
        &[(
            "Dockerfile",
            &format!("FROM {}/base:1\nRUN echo private-build-ok\n", reg.host),
        )],
        "one",
    )
    .unwrap();
    let port = crtask_tests::free_port();
    let token = "ghp_testtoken0123456789";
    let mut peer = std::process::Command::new("python3")
        .arg(crtask_tests::repo_root().join("tests/peers/git_http_auth.py"))
        .args([git.root.path().to_str().unwrap(), &port.to_string(), token])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        && start.elapsed().as_secs() < 10
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let url = format!("http://127.0.0.1:{port}/repo.git");

    let with = Server::start(
        &reg,
        &[
            "--git-token-file",
            &format!("127.0.0.1:{port}={}", token_file.display()),
        ],
    )
    .unwrap();
    with.cli_json(&["task", "create", "--name", "p", "-c", &url, "-t", "p:1"])
        .unwrap();
    let out = with.cli(&["task", "run", "--name", "p"]);
    assert!(out.status.success(), "{}\n{}", show(&out), with.log());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("private-build-ok"), "{text}");
    let b64 = "eC1hY2Nlc3MtdG9rZW46Z2hwX3Rlc3R0b2tlbjAxMjM0NTY3ODk";
    for leak in [token, b64] {
        assert!(!text.contains(leak), "token in the log: {text}");
        assert!(!with.log().contains(leak), "token in the server log");
    }

    // Without the token the clone is refused, with a clear reason.
    let without = Server::start(&reg, &[]).unwrap();
    without
        .cli_json(&["task", "create", "--name", "p", "-c", &url, "-t", "p:2"])
        .unwrap();
    let out = without.cli(&["task", "run", "--name", "p"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cannot clone"),
        "{}",
        show(&out)
    );
    let _ = peer.kill();
    let _ = peer.wait();
}
