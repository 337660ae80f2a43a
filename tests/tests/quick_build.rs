//! Quick builds end to end: the real crtask binary, buildah and the
//! distribution registry.

use crtask_tests::{read_from_image, seeded_stack, show, write_files, Registry, Server};

const APP_DOCKERFILE: &str = r#"# multi-stage with ARG, RUN and COPY
ARG BASE
FROM ${BASE} AS build
ARG MSG=default
RUN mkdir -p /out && echo "msg=$MSG" > /out/msg.txt

FROM ${BASE}
COPY --from=build /out/msg.txt /msg.txt
COPY . /ctx/
"#;

/// The one `error: ...` line a failing command prints on stderr.
fn error_line(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 1, "exactly one error line expected: {err}");
    assert!(!err.contains("panicked"), "{err}");
    lines[0].to_string()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn quick_build_pushes_tags_and_records_digests() {
    let reg = Registry::start().unwrap();
    let base_digest = reg.seed("base:1", "v1").unwrap();
    let srv = Server::start(&reg, &[]).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            ("Dockerfile", APP_DOCKERFILE),
            ("keep.txt", "kept\n"),
            ("secret.env", "TOKEN=hunter2\n"),
            ("docs/notes.md", "ignored\n"),
            ("docs/README.md", "re-included\n"),
            (".dockerignore", "secret.env\ndocs/*.md\n!docs/README.md\n"),
        ],
    );
    let base = format!("BASE={}/base:1", reg.host);
    let out = srv.cli(&[
        "build",
        "-t",
        "app:{{.Run.ID}}",
        "-t",
        "app:latest",
        "-f",
        "Dockerfile",
        "--build-arg",
        &base,
        "--build-arg",
        "MSG=hello-from-arg",
        ctx.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    let first = text.lines().next().unwrap_or("");
    let id = first
        .strip_prefix("Queued a build with ID: ")
        .unwrap_or_else(|| panic!("first line: {first}"))
        .to_string();
    assert!(text.contains("STEP"), "log was not streamed: {text}");
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with(&format!("Run ID: {id} was successful after")),
        "{text}"
    );

    let run = srv.run(&id).unwrap();
    assert_eq!(run["status"], "Succeeded");
    assert_eq!(run["runType"], "QuickBuild");
    assert_eq!(run["trigger"]["type"], "Manual");
    let outputs = run["outputImages"].as_array().unwrap();
    assert_eq!(outputs.len(), 2, "{run}");
    for o in outputs {
        assert_eq!(o["registry"], reg.host.as_str());
        assert_eq!(o["repository"], "app");
        let tag = o["tag"].as_str().unwrap();
        assert!(tag == id || tag == "latest", "{tag}");
        let served = reg.digest("app", tag).expect("tag is in the registry");
        assert_eq!(o["digest"].as_str().unwrap(), served, "digest of app:{tag}");
    }
    let bases = run["baseImages"].as_array().unwrap();
    assert_eq!(bases.len(), 1, "{run}");
    assert_eq!(bases[0]["image"], format!("{}/base:1", reg.host));
    assert_eq!(bases[0]["digest"].as_str().unwrap(), base_digest);
    assert_eq!(bases[0]["runtime"], true);
    for field in ["createTime", "startTime", "finishTime"] {
        let t = run[field].as_str().unwrap();
        assert!(t.ends_with('Z') && t.contains('.'), "{field}: {t}");
    }

    // The build argument reached the build; ignored files are not in the image.
    let image = format!("{}/app:{id}", reg.host);
    assert_eq!(
        read_from_image(&image, &reg.host, "/msg.txt")
            .unwrap()
            .as_deref(),
        Some("msg=hello-from-arg\n")
    );
    assert_eq!(
        read_from_image(&image, &reg.host, "/ctx/keep.txt")
            .unwrap()
            .as_deref(),
        Some("kept\n")
    );
    assert_eq!(
        read_from_image(&image, &reg.host, "/ctx/secret.env").unwrap(),
        None
    );
    assert_eq!(
        read_from_image(&image, &reg.host, "/ctx/docs/notes.md").unwrap(),
        None
    );
    assert!(read_from_image(&image, &reg.host, "/ctx/docs/README.md")
        .unwrap()
        .is_some());

    // list-runs shows it, newest first.
    let runs = srv.cli_json(&["task", "list-runs"]).unwrap();
    assert_eq!(runs[0]["runId"], id.as_str());
}

#[test]
fn failing_run_is_failed_with_its_output_in_the_log() {
    let (reg, srv) = seeded_stack(&[]);
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {}/base:1\nRUN echo boom-marker-42 && exit 3\n",
                reg.host
            ),
        )],
    );
    let out = srv.cli(&["build", "-t", "bad:1", ctx.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = stdout(&out);
    let id = text
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("Queued a build with ID: ")
        .to_string();
    assert!(
        text.contains(&format!("Run ID: {id} failed after")),
        "{text}"
    );
    let err = error_line(&out);
    assert!(err.contains("exit code 3"), "{err}");
    let run = srv.run(&id).unwrap();
    assert_eq!(run["status"], "Failed");
    assert!(
        run["error"].as_str().unwrap().contains("exit code"),
        "{run}"
    );
    assert!(run["outputImages"].as_array().unwrap().is_empty());
    assert_eq!(reg.digest("bad", "1"), None, "nothing pushed");
    let logs = srv.cli(&["task", "logs", "--run-id", &id]);
    assert!(logs.status.success(), "{}", show(&logs));
    assert!(stdout(&logs).contains("boom-marker-42"), "{}", show(&logs));
}

#[test]
fn bad_input_gives_one_line_errors_and_starts_nothing() {
    let reg = Registry::start().unwrap();
    let srv = Server::start(&reg, &[]).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write_files(ctx.path(), &[("app.txt", "x")]);
    let big = tempfile::tempdir().unwrap();
    write_files(
        big.path(),
        &[
            ("Dockerfile", "FROM scratch\n"),
            ("blob.bin", &"x".repeat(4096)),
        ],
    );

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["build", "-t", "a:1", ctx.path().to_str().unwrap()],
            "Dockerfile 'Dockerfile' not found",
        ),
        (
            vec!["build", "-t", "a:1", "/no/such/dir"],
            "context directory '/no/such/dir' does not exist",
        ),
        (
            vec![
                "build",
                "-t",
                "a:1",
                "-f",
                "../x",
                ctx.path().to_str().unwrap(),
            ],
            "must be inside the context",
        ),
        (
            vec!["task", "show", "--name", "nope"],
            "task 'nope' not found",
        ),
        (
            vec!["task", "run", "--name", "nope"],
            "task 'nope' not found",
        ),
        (
            vec!["task", "show-run", "--run-id", "ca999"],
            "run 'ca999' not found",
        ),
        (
            vec!["task", "list-runs", "--run-status", "Done"],
            "unknown run status 'Done'",
        ),
        (
            vec!["task", "create", "--name", "bad name", "-c", "/dev/null"],
            "invalid task name",
        ),
        (
            vec![
                "task",
                "create",
                "--name",
                "t",
                "-c",
                "/dev/null",
                "--timeout",
                "5",
            ],
            "timeout 5 is out of range",
        ),
    ];
    for (args, want) in cases {
        let out = srv.cli(&args);
        assert!(
            !out.status.success(),
            "{args:?} should fail: {}",
            show(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line expected: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(want),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let runs = srv.cli_json(&["task", "list-runs"]).unwrap();
    assert_eq!(
        runs.as_array().unwrap().len(),
        0,
        "no run was started: {runs}"
    );
    let tasks = srv.cli_json(&["task", "list"]).unwrap();
    assert_eq!(tasks.as_array().unwrap().len(), 0);

    // No server at all.
    let out = std::process::Command::new(crtask_tests::crtask_bin())
        .args(["task", "list", "--server", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot reach the crtask server"),
        "{err}"
    );
}

#[test]
fn unreachable_registry_fails_fast_with_a_specific_error() {
    let (reg, srv) = seeded_stack(&["--insecure-registry", "127.0.0.1:1"]);
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {}/base:1\n", reg.host))],
    );
    let out = srv.cli(&[
        "build",
        "-t",
        "127.0.0.1:1/app:x",
        ctx.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = error_line(&out);
    assert!(err.contains("registry 127.0.0.1:1 is unreachable"), "{err}");
}

#[test]
fn no_push_builds_without_pushing_and_dev_null_needs_a_dockerfile() {
    let (reg, srv) = seeded_stack(&[]);
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM {}/base:1\nRUN true\n", reg.host),
        )],
    );
    let out = srv.cli(&[
        "build",
        "--no-push",
        "-t",
        "np:1",
        ctx.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(reg.digest("np", "1"), None);

    let out = srv.cli(&["build", "-t", "x:1", "/dev/null"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stdout(&out).contains("Dockerfile 'Dockerfile' not found in the context"),
        "{}",
        show(&out)
    );
}
