//! Multi-step task files end to end on buildah: build, run the built image,
//! push only when the tests pass; parallel steps; ACR's own samples.

use crtask_tests::{
    own_sleep, processes, run_queued, show, wait_until, write_files, Registry, Server,
};
use serde_json::Value;

/// A bash-like image: like docker-library's `bash`, arguments starting with
/// `-` go to the shell, anything else runs as a command.
fn seed_shell_image(srv: &Server, reg: &Registry) {
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            ("entry.sh", "#!/bin/sh\nif [ \"$#\" -eq 0 ] || [ \"${1#-}\" != \"$1\" ]; then set -- sh \"$@\"; fi\nexec \"$@\"\n"),
            ("Dockerfile", &format!("FROM {}/base:1\nCOPY entry.sh /entry.sh\nRUN chmod +x /entry.sh\nENTRYPOINT [\"/entry.sh\"]\n", reg.host)),
        ],
    );
    let out = srv.cli(&["build", "-t", "shell:1", ctx.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
}

fn start() -> (Registry, Server) {
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "v1").unwrap();
    let alias = format!("bash={}/shell:1", reg.host);
    let srv = Server::start(&reg, &["--image-alias", &alias, "--workers", "2"]).unwrap();
    seed_shell_image(&srv, &reg);
    (reg, srv)
}

fn quick_run(
    srv: &Server,
    dir: &std::path::Path,
    file: &str,
    extra: &[&str],
) -> (std::process::Output, Option<Value>) {
    let mut args = vec!["run", "-f", file];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    let out = srv.cli(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Queued a run with ID: "))
        .map(|id| srv.run(id).unwrap());
    (out, run)
}

const PIPELINE: &str = r#"version: v1.1.0
steps:
  # build, then test and scan in parallel, push only if both pass
  - id: build
    build: -t $Registry/app:$ID -f Dockerfile .
  - id: test
    cmd: $Registry/app:$ID sh -c 'test "$(cat /result)" = "{{.Values.expect}}" && echo test-passed'
    when: [build]
  - id: scan
    cmd: bash -c 'sleep 1; echo scan-passed'
    when: [build]
  - id: push
    push:
      - $Registry/app:$ID
    when: [test, scan]
"#;

#[test]
fn build_test_scan_push_pushes_only_when_the_tests_pass() {
    let (reg, srv) = start();
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            ("acr-task.yaml", PIPELINE),
            (
                "Dockerfile",
                &format!("FROM {}/base:1\nRUN echo ok > /result\n", reg.host),
            ),
        ],
    );

    // The test fails: nothing is pushed, the run names the step.
    let (out, run) = quick_run(
        &srv,
        ctx.path(),
        "acr-task.yaml",
        &["--set", "expect=not-ok"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let run = run.unwrap();
    assert_eq!(run["status"], "Failed", "{run}");
    assert_eq!(run["runType"], "QuickRun");
    assert!(
        run["error"].as_str().unwrap().contains("step 'test'"),
        "{run}"
    );
    let id = run["runId"].as_str().unwrap();
    assert_eq!(
        reg.digest("app", id),
        None,
        "nothing pushed after a failed test"
    );
    let push = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "push")
        .unwrap();
    assert_ne!(push["status"], "Succeeded");

    // Both pass: the pushed digest is recorded.
    let (out, run) = quick_run(&srv, ctx.path(), "acr-task.yaml", &["--set", "expect=ok"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[test] test-passed") && text.contains("[scan] scan-passed"),
        "{text}"
    );
    assert!(
        text.contains("==> step push: Succeeded"),
        "step boundaries in the log: {text}"
    );
    let run = run.unwrap();
    assert_eq!(run["status"], "Succeeded", "{run}");
    let id = run["runId"].as_str().unwrap();
    let out0 = &run["outputImages"][0];
    assert_eq!(out0["repository"], "app");
    assert_eq!(out0["tag"], id);
    assert_eq!(reg.digest("app", id).as_deref(), out0["digest"].as_str());
    let steps: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["build", "test", "scan", "push"]);
    assert!(run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "Succeeded" && s["exitCode"] == 0));
}

fn times(run: &Value, id: &str) -> (chrono_like::T, chrono_like::T) {
    let s = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap();
    (
        chrono_like::parse(&s["startTime"]),
        chrono_like::parse(&s["finishTime"]),
    )
}

/// RFC 3339 to milliseconds since the epoch, enough to compare step times.
mod chrono_like {
    pub type T = i64;
    pub fn parse(v: &serde_json::Value) -> T {
        let s = v.as_str().unwrap_or_else(|| panic!("no time: {v}"));
        // 2026-11-27T05:21:12.345Z
        let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap();
        let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
        let (hms, ms) = time.split_once('.').unwrap_or((time, "0"));
        let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
        let ms: i64 = format!("{ms:0<3}")[..3].parse().unwrap();
        (((d[2] * 24 + t[0]) * 60 + t[1]) * 60 + t[2]) * 1000 + ms
    }
}

#[test]
fn when_graphs_order_and_overlap_steps_as_acr_does() {
    let (reg, srv) = start();
    let ctx = tempfile::tempdir().unwrap();
    let img = format!("{}/base:1", reg.host);
    let file = format!(
        "steps:\n  - id: a\n    cmd: {img} sleep 2\n  - id: b\n    cmd: {img} sleep 2\n    when: [\"-\"]\n  - id: c\n    cmd: {img} sleep 1\n  - id: d\n    cmd: {img} true\n    when: [a, c]\n"
    );
    write_files(ctx.path(), &[("graph.yaml", &file)]);
    let (out, run) = quick_run(&srv, ctx.path(), "graph.yaml", &[]);
    assert!(out.status.success(), "{}", show(&out));
    let run = run.unwrap();
    let (a0, a1) = times(&run, "a");
    let (b0, b1) = times(&run, "b");
    let (c0, c1) = times(&run, "c");
    let (d0, _) = times(&run, "d");
    assert!(b0 < a1 && a0 < b1, "a and b (when [\"-\"]) overlap: {run}");
    assert!(
        c0 >= b1,
        "c (no when) waits for b, the step before it: {run}"
    );
    assert!(d0 >= a1 && d0 >= c1, "d waits for a and c: {run}");
}

#[test]
fn invalid_task_files_are_rejected_before_any_step_runs() {
    let (reg, srv) = start();
    let ctx = tempfile::tempdir().unwrap();
    let img = format!("{}/base:1", reg.host);
    write_files(
        ctx.path(),
        &[(
            "bad.yaml",
            &format!("# a comment line\nsteps:\n  - id: one\n    cmd: {img} true\n  - id: two\n    cmd: {img} true\n    when: [three]\n  - id: three\n    cmd: {img} true\n"),
        )],
    );
    let (out, run) = quick_run(&srv, ctx.path(), "bad.yaml", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(run.is_none(), "nothing queued");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 7") && err.contains("step 'two'") && err.contains("three"),
        "{err}"
    );

    // The same file as a task: the run fails before any step, naming step and line.
    srv.cli_json(&[
        "task",
        "create",
        "--name",
        "bad",
        "-c",
        ctx.path().to_str().unwrap(),
        "-f",
        "bad.yaml",
    ])
    .unwrap();
    let out = srv.cli(&["task", "run", "--name", "bad"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("Queued a run with ID: ")
        .to_string();
    let run = srv.run(&id).unwrap();
    assert_eq!(run["runType"], "AutoRun");
    assert!(run["error"].as_str().unwrap().contains("line 7"), "{run}");
    assert!(
        run["steps"].as_array().unwrap().is_empty(),
        "no step ran: {run}"
    );
}

#[test]
fn acr_published_samples_run_with_aliased_images() {
    let Some(samples) = crtask_tests::acr_samples("acr_published_samples_run_with_aliased_images")
    else {
        return;
    };
    let (_reg, srv) = start();
    for (file, expect) in [
        ("bash-echo.yaml", "hello world"),
        ("files-working-directory.yaml", "hello.txt"),
    ] {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::copy(samples.join(file), ctx.path().join(file)).unwrap();
        let (out, run) = quick_run(&srv, ctx.path(), file, &[]);
        assert!(out.status.success(), "{file}: {}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(expect),
            "{file}: {}",
            show(&out)
        );
        assert_eq!(run.unwrap()["status"], "Succeeded");
    }
    // No context: the task file is read locally and sent alone.
    let file = samples.join("bash-echo.yaml");
    let out = srv.cli(&["run", "-f", file.to_str().unwrap(), "/dev/null"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello world"),
        "{}",
        show(&out)
    );
}

#[test]
fn cmd_steps_honour_env_working_directory_entry_point_user_and_detach() {
    let (reg, srv) = start();
    let ctx = tempfile::tempdir().unwrap();
    let img = format!("{}/base:1", reg.host);
    let sleep = own_sleep(3597);
    let file = format!(
        r#"version: v1.1.0
env: ["FROM_TASK=task-level,SHARED=task"]
steps:
  - id: env
    cmd: {img} sh -c 'echo "env=$FROM_TASK/$SHARED/$OWN"'
    env: ["SHARED=step", "OWN=mine"]
  - id: workdir
    cmd: {img} sh -c 'echo "pwd=$(pwd)"; ls'
    workingDirectory: sub
  - id: entry
    cmd: {img} -c 'echo "entry=$0"'
    entryPoint: sh
  - id: user
    cmd: {img} id -u
    user: "1234"
  - id: server
    cmd: {img} {sleep}
    detach: true
  - id: after
    cmd: {img} echo after-detached
"#
    );
    write_files(
        ctx.path(),
        &[("props.yaml", &file), ("sub/inside.txt", "x")],
    );
    let (out, run) = quick_run(&srv, ctx.path(), "props.yaml", &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text.contains("[env] env=task-level/step/mine"),
        "step env wins, task env merged: {text}"
    );
    assert!(
        text.contains("[workdir] pwd=/workspace/sub") && text.contains("[workdir] inside.txt"),
        "{text}"
    );
    assert!(
        text.contains("[entry] entry=sh") || text.contains("[entry] entry=/bin/sh"),
        "the entry point replaces the image's command: {text}"
    );
    assert!(text.contains("[user] 1234"), "{text}");
    assert!(
        text.contains("[after] after-detached"),
        "a detached step does not block: {text}"
    );
    let run = run.unwrap();
    assert_eq!(run["status"], "Succeeded");
    let (s0, s1) = times(&run, "server");
    assert!(s1 - s0 < 10_000, "detach returns once started: {run}");
    // The detached container ends with the run.
    // Exactly the step's command line: any other `sleep 3...` on the
    // machine (a shell waiting, another test) must not count.
    assert_eq!(processes(&sleep), "", "detached container outlived its run");
}

#[test]
fn a_run_timeout_stops_the_steps_and_keeps_their_records() {
    let (reg, srv) = start();
    let ctx = tempfile::tempdir().unwrap();
    let img = format!("{}/base:1", reg.host);
    let sleep = own_sleep(45);
    let file = format!("steps:\n  - id: quick\n    cmd: {img} true\n  - id: slow\n    cmd: {img} {sleep}\n  - id: never\n    cmd: {img} true\n");
    write_files(ctx.path(), &[("slow.yaml", &file)]);
    let started = std::time::Instant::now();
    let (out, run) = quick_run(&srv, ctx.path(), "slow.yaml", &["--timeout", "6"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        started.elapsed().as_secs() < 40,
        "the timeout stopped the run"
    );
    let run = run.unwrap();
    assert_eq!(run["status"], "Timeout", "{run}");
    let steps = run["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["quick", "slow", "never"],
        "step records survive the timeout: {run}"
    );
    assert_eq!(steps[0]["status"], "Succeeded");
    assert!(
        steps[1]["startTime"].is_string() && steps[1]["status"] != "Succeeded",
        "{run}"
    );
    assert!(steps[2]["startTime"].is_null(), "{run}");
    assert_eq!(processes(&sleep), "", "the step's process was stopped");
}

/// ACR's own samples (`build-test-hello-world.yaml`) tag local images
/// without a registry and run them: such a build has no layer cache (it
/// would be pushed to docker.io) and the run succeeds.
#[test]
fn a_build_tagged_without_a_registry_runs_locally_without_a_cache() {
    let (reg, srv) = start();
    let ctx = tempfile::tempdir().unwrap();
    let file = "version: v1.1.0\nsteps:\n  - build: -t hello-local -f hello.dockerfile .\n  - cmd: hello-local\n";
    write_files(
        ctx.path(),
        &[
            ("t.yaml", file),
            (
                "hello.dockerfile",
                &format!(
                    "FROM {}/base:1\nRUN echo built-line\nCMD [\"echo\", \"hello-from-local\"]\n",
                    reg.host
                ),
            ),
        ],
    );
    let (out, run) = quick_run(&srv, ctx.path(), "t.yaml", &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text.contains("layer cache disabled: no tag names a registry"),
        "{text}"
    );
    assert!(
        text.contains("built-line") && text.contains("hello-from-local"),
        "{text}"
    );
    assert_eq!(run.unwrap()["status"], "Succeeded");
}

/// A step's own `timeout` stops that step's container at once (runc puts
/// it out of reach of the process-group kill), while the run goes on.
#[test]
fn a_step_timeout_stops_its_container_at_once_and_the_run_goes_on() {
    let (reg, srv) = start();
    let ctx = tempfile::tempdir().unwrap();
    let img = format!("{}/base:1", reg.host);
    let sleep = own_sleep(3594);
    let file = format!(
        "steps:\n  - id: slow\n    cmd: {img} {sleep}\n    timeout: 3\n    ignoreErrors: true\n  - id: next\n    cmd: {img} sleep 30\n"
    );
    write_files(ctx.path(), &[("slow.yaml", &file)]);
    let id = run_queued(&srv, ctx.path(), "slow.yaml");
    let running = || !processes(&sleep).is_empty();
    assert!(wait_until(120, running), "the slow step never started");
    // Gone soon after its 3 s, while the next step's 30 s still run: not
    // when the run ends.
    assert!(
        wait_until(20, || !running()),
        "the timed-out step's process is still running"
    );
    let run = srv
        .wait_status(&id, 120, |s| s != "Queued" && s != "Running")
        .unwrap();
    assert_eq!(run["status"], "Succeeded", "{run}");
    let (s0, s1) = times(&run, "slow");
    assert!((3_000..10_000).contains(&(s1 - s0)), "{run}");
    let log = srv.cli(&["task", "logs", "--run-id", &id]);
    let text = String::from_utf8_lossy(&log.stdout);
    assert!(text.contains("timed out after 3s"), "{text}");
    assert_eq!(run["steps"][1]["status"], "Succeeded", "{run}");
}

/// ACR's `docker run` line: `HOME=/acb/home` on one home volume for the
/// run's steps, a missing working directory created, env values with their
/// shell quotes removed (and nothing expanded).
#[test]
fn cmd_steps_share_a_home_create_working_directories_and_unquote_env() {
    let (reg, srv) = start();
    let ctx = tempfile::tempdir().unwrap();
    let img = format!("{}/base:1", reg.host);
    let file = format!(
        r#"env: ["T='task level'"]
steps:
  - id: write
    cmd: {img} sh -c 'echo "home=$HOME"; echo remembered > "$HOME/note"'
  - id: read
    cmd: {img} sh -c 'echo "note=$(cat "$HOME/note")"'
  - id: made
    cmd: {img} sh -c 'echo "pwd=$(pwd)"; touch here'
    workingDirectory: made/by/step
  - id: elsewhere
    cmd: {img} sh -c 'echo "abs=$(pwd)"'
    workingDirectory: /opt/new/dir
  - id: quoted
    cmd: {img} sh -c 'echo "q=[$Q] d=[$D] h=[$H] t=[$T]"'
    env: ["Q='a b'", 'D="x"', "H=$HOME"]
  - id: own-home
    cmd: {img} sh -c 'echo "own=$HOME"'
    env: [HOME=/tmp]
"#
    );
    write_files(ctx.path(), &[("acb.yaml", &file)]);
    let (out, run) = quick_run(&srv, ctx.path(), "acb.yaml", &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(run.unwrap()["status"], "Succeeded");
    for want in [
        "[write] home=/acb/home",
        "[read] note=remembered",
        "[made] pwd=/workspace/made/by/step",
        "[elsewhere] abs=/opt/new/dir",
        "[quoted] q=[a b] d=[x] h=[$HOME] t=[task level]",
        "[own-home] own=/tmp",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

/// `repeat` runs every repetition even after one failed, and the step's
/// error lists each failed repetition (ACR aggregates them).
#[test]
fn repeat_runs_every_repetition_and_reports_each_failure() {
    let (reg, srv) = start();
    let ctx = tempfile::tempdir().unwrap();
    let img = format!("{}/base:1", reg.host);
    let file = format!(
        r#"steps:
  - id: flaky
    cmd: {img} sh -c 'n=$(cat /workspace/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /workspace/n; echo "rep=$n"; [ $n -ne 2 ] && [ $n -ne 4 ]'
    repeat: 3
  - id: never
    cmd: {img} echo never-runs
"#
    );
    write_files(ctx.path(), &[("repeat.yaml", &file)]);
    let (out, run) = quick_run(&srv, ctx.path(), "repeat.yaml", &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    for n in 1..=4 {
        assert!(text.contains(&format!("[flaky] rep={n}")), "{text}");
    }
    assert!(!text.contains("never-runs"), "{text}");
    // As with ACR's `docker run`, no line of the engine's own about the
    // exit status: the record says it.
    assert!(!text.contains("exit status"), "{text}");
    let run = run.unwrap();
    assert_eq!(run["status"], "Failed");
    assert_eq!(
        run["error"],
        "step 'flaky' failed: repetition 2 of 4 exited with code 1; repetition 4 of 4 exited with code 1",
        "{run}"
    );
}

/// Task-file secrets resolve from a file and from the server's secret
/// directory, reach `{{.Secrets.id}}`, and are masked in the streamed and
/// the stored log and absent from the run record. A secret that cannot be
/// resolved fails the run naming it; one without `keyvault` is refused.
#[test]
fn task_file_secrets_resolve_and_never_show() {
    const FILE_VALUE: &str = "file-s3cret-4711";
    const HELD_VALUE: &str = "held-s3cret-0815";
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "v1").unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let held = secrets.path().join("held");
    std::fs::create_dir(&held).unwrap();
    std::fs::write(held.join("db-pass"), format!("{HELD_VALUE}\n")).unwrap();
    let token = secrets.path().join("token.txt");
    std::fs::write(&token, FILE_VALUE).unwrap();
    let srv = Server::start(&reg, &["--secret-dir", held.to_str().unwrap()]).unwrap();
    let img = format!("{}/base:1", reg.host);
    let ctx = tempfile::tempdir().unwrap();
    let file = format!(
        r#"secrets:
  - id: fromfile
    keyvault: file://{}
  - id: held
    keyvault: crtask://db-pass
steps:
  - id: use
    cmd: {img} sh -c 'echo "file={{{{.Secrets.fromfile}}}} env=$PASS"; test "$PASS" = "{{{{.Secrets.held}}}}" && echo matches'
    env: ["PASS={{{{.Secrets.held}}}}"]
"#,
        token.display()
    );
    write_files(ctx.path(), &[("secret.yaml", &file)]);
    let (out, run) = quick_run(&srv, ctx.path(), "secret.yaml", &[]);
    let streamed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        streamed.contains("[use] file=***** env=*****") && streamed.contains("[use] matches"),
        "{streamed}"
    );
    let run = run.unwrap();
    assert_eq!(run["status"], "Succeeded", "{run}");
    let id = run["runId"].as_str().unwrap();
    let stored = srv.cli(&["task", "logs", "--run-id", id]);
    let stored = String::from_utf8_lossy(&stored.stdout).into_owned();
    assert!(stored.contains("file=***** env=*****"), "{stored}");
    let record = srv.cli(&["task", "show-run", "--run-id", id, "-o", "json"]);
    for text in [
        streamed.as_str(),
        stored.as_str(),
        &String::from_utf8_lossy(&record.stdout),
    ] {
        assert!(
            !text.contains(FILE_VALUE) && !text.contains(HELD_VALUE),
            "a secret value leaked:\n{text}"
        );
    }

    // Unresolvable: the run fails before any step, naming the secret.
    let bad = format!(
        "secrets:\n  - id: gone\n    keyvault: crtask://no-such-secret\nsteps:\n  - cmd: {img} echo should-not-run\n"
    );
    write_files(ctx.path(), &[("gone.yaml", &bad)]);
    let (out, run) = quick_run(&srv, ctx.path(), "gone.yaml", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("should-not-run"));
    let run = run.unwrap();
    assert_eq!(run["status"], "Failed");
    assert_eq!(
        run["error"],
        "cannot resolve secret 'gone' (crtask://no-such-secret): the server holds no secret named 'no-such-secret'"
    );
    // A path that climbs out is refused without reading anything.
    let climb = format!(
        "secrets:\n  - id: up\n    keyvault: crtask://../token.txt\nsteps:\n  - cmd: {img} true\n"
    );
    write_files(ctx.path(), &[("climb.yaml", &climb)]);
    let (_, run) = quick_run(&srv, ctx.path(), "climb.yaml", &[]);
    let err = run.unwrap()["error"].as_str().unwrap().to_string();
    assert!(err.starts_with("cannot resolve secret 'up'"), "{err}");

    // No keyvault: refused before anything is queued, as ACR does.
    write_files(
        ctx.path(),
        &[(
            "nokv.yaml",
            &format!("secrets:\n  - id: s\nsteps:\n  - cmd: {img} true\n"),
        )],
    );
    let (out, run) = quick_run(&srv, ctx.path(), "nokv.yaml", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(run.is_none());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("secret 's' has no 'keyvault'"),
        "{err}"
    );
}
