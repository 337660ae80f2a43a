//! Tasks end to end: lifecycle, local-directory and git contexts, streamed
//! `task run`, cancellation, and recovery after the server is killed.

use crtask_tests::{own_sleep, processes, seeded_stack, show, write_files};
use std::process::Command;

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", show(&out));
}

#[test]
fn task_lifecycle_with_a_local_directory_context() {
    // No digest polling: a poll of base:1 racing the manual run would add
    // an ImageUpdate run ("not built on it yet") when it comes first.
    let (reg, srv) = seeded_stack(&["--poll-interval", "0"]);
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM {}/base:1\nARG V\nRUN echo \"v=$V\"\n", reg.host),
        )],
    );
    let dir = ctx.path().to_str().unwrap();
    let t = srv
        .cli_json(&[
            "task",
            "create",
            "--name",
            "web",
            "-c",
            dir,
            "-t",
            "web:{{.Run.ID}}",
            "--build-arg",
            "V=one",
        ])
        .unwrap();
    assert_eq!(t["name"], "web");
    assert_eq!(t["context"], dir);
    assert_eq!(t["commitTriggerEnabled"], true);
    assert_eq!(t["baseImageTriggerType"], "Runtime");

    let dup = srv.cli(&["task", "create", "--name", "web", "-c", dir]);
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("task 'web' already exists"),
        "{}",
        show(&dup)
    );

    let list = srv.cli_json(&["task", "list"]).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    let t = srv
        .cli_json(&[
            "task",
            "update",
            "--name",
            "web",
            "--build-arg",
            "V=two",
            "--base-image-trigger-type",
            "All",
        ])
        .unwrap();
    assert_eq!(t["buildArgs"][0]["value"], "two");
    assert_eq!(t["baseImageTriggerType"], "All");
    assert_eq!(
        t["images"][0], "web:{{.Run.ID}}",
        "update keeps what was not given"
    );

    let out = srv.cli(&["task", "run", "--name", "web"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("Queued a run with ID: ")
        .to_string();
    assert!(text.contains("v=two"), "streamed log: {text}");
    let run = srv.run(&id).unwrap();
    assert_eq!(run["task"], "web");
    assert_eq!(run["status"], "Succeeded");
    assert_eq!(
        reg.digest("web", &id).as_deref(),
        run["outputImages"][0]["digest"].as_str()
    );

    let runs = srv
        .cli_json(&["task", "list-runs", "--name", "web"])
        .unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    let logs = srv.cli(&["task", "logs", "--name", "web"]);
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("v=two"),
        "{}",
        show(&logs)
    );

    let del = srv.cli(&["task", "delete", "--name", "web"]);
    assert!(del.status.success(), "{}", show(&del));
    let gone = srv.cli(&["task", "show", "--name", "web"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("task 'web' not found"));
    // Its runs are kept.
    assert_eq!(srv.run(&id).unwrap()["status"], "Succeeded");
}

#[test]
fn failing_task_run_exits_non_zero() {
    let (reg, srv) = seeded_stack(&[]);
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM {}/base:1\nRUN exit 7\n", reg.host),
        )],
    );
    srv.cli_json(&[
        "task",
        "create",
        "--name",
        "bad",
        "-c",
        ctx.path().to_str().unwrap(),
        "-t",
        "bad:x",
    ])
    .unwrap();
    let out = srv.cli(&["task", "run", "--name", "bad"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("failed after"),
        "{}",
        show(&out)
    );
}

#[test]
fn git_context_with_ref_and_subdirectory() {
    let (reg, srv) = seeded_stack(&[]);
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q", "-b", "main"]);
    write_files(
        repo.path(),
        &[
            (
                "app/Dockerfile",
                &format!(
                    "FROM {}/base:1\nCOPY v.txt /v.txt\nRUN cat /v.txt\n",
                    reg.host
                ),
            ),
            ("app/v.txt", "on-main\n"),
        ],
    );
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "main"]);
    git(repo.path(), &["checkout", "-q", "-b", "release"]);
    write_files(repo.path(), &[("app/v.txt", "on-release\n")]);
    git(repo.path(), &["commit", "-q", "-am", "release"]);
    git(repo.path(), &["checkout", "-q", "main"]);

    let url = format!("file://{}#release:app", repo.path().display());
    srv.cli_json(&["task", "create", "--name", "g", "-c", &url, "-t", "g:1"])
        .unwrap();
    let out = srv.cli(&["task", "run", "--name", "g"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("on-release"),
        "built the release branch: {text}"
    );
    assert!(!text.contains("on-main"), "{text}");

    let bad = format!("file://{}#nosuchbranch", repo.path().display());
    srv.cli_json(&["task", "create", "--name", "g2", "-c", &bad, "-t", "g:2"])
        .unwrap();
    let out = srv.cli(&["task", "run", "--name", "g2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("reference 'nosuchbranch' not found"),
        "{}",
        show(&out)
    );
}

#[test]
fn cancel_stops_a_running_build() {
    let (reg, srv) = seeded_stack(&[]);
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM {}/base:1\nRUN sleep 60\n", reg.host),
        )],
    );
    let out = srv.cli(&[
        "build",
        "--no-wait",
        "-t",
        "slow:1",
        ctx.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let id = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("Queued a build with ID: ")
        .to_string();
    srv.wait_status(&id, 60, |s| s == "Running").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let c = srv.cli(&["task", "cancel-run", "--run-id", &id]);
    assert!(c.status.success(), "{}", show(&c));
    let run = srv.wait_status(&id, 10, |s| s != "Running").unwrap();
    assert_eq!(run["status"], "Canceled");
    assert_eq!(reg.digest("slow", "1"), None);
    let again = srv.cli(&["task", "cancel-run", "--run-id", &id]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already finished"),
        "{}",
        show(&again)
    );
}

#[test]
fn killed_server_leaves_no_run_running_and_resumes_queued_runs() {
    let (reg, mut srv) = seeded_stack(&["--workers", "1"]);
    let sleep = own_sleep(61);
    let slow = tempfile::tempdir().unwrap();
    write_files(
        slow.path(),
        &[(
            "Dockerfile",
            &format!("FROM {}/base:1\nRUN {sleep}\n", reg.host),
        )],
    );
    let quick = tempfile::tempdir().unwrap();
    write_files(
        quick.path(),
        &[(
            "Dockerfile",
            &format!("FROM {}/base:1\nRUN echo resumed\n", reg.host),
        )],
    );
    let id_of = |o: std::process::Output| {
        assert!(o.status.success(), "{}", show(&o));
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .trim_start_matches("Queued a build with ID: ")
            .to_string()
    };
    let running = id_of(srv.cli(&[
        "build",
        "--no-wait",
        "-t",
        "slow:1",
        slow.path().to_str().unwrap(),
    ]));
    let queued = id_of(srv.cli(&[
        "build",
        "--no-wait",
        "-t",
        "quick:1",
        quick.path().to_str().unwrap(),
    ]));
    srv.wait_status(&running, 60, |s| s == "Running").unwrap();
    assert_eq!(srv.run(&queued).unwrap()["status"], "Queued");

    srv.kill();
    srv.restart().unwrap();

    let r = srv.run(&running).unwrap();
    assert_eq!(r["status"], "Error", "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("server stopped"),
        "{r}"
    );
    let q = srv
        .wait_status(&queued, 120, |s| s != "Queued" && s != "Running")
        .unwrap();
    assert_eq!(q["status"], "Succeeded", "{q}\n{}", srv.log());
    assert!(reg.digest("quick", "1").is_some());
    // No process of the killed build survives (parent-death signal).
    assert_eq!(processes(&sleep), "", "orphaned build process left running");
}
