//! The `az acr` command lines ACR users bring, with `az acr` replaced by
//! `crtask` and the Azure-only flags (`-r/--registry`, `--resource-group`)
//! dropped, against a real `crtask serve`, registry and buildah; `-o
//! tsv|table|yaml` and `--query` on the answers; `--git-access-token`
//! against a git server that requires it (and never shown anywhere);
//! `--assign-identity` refused by the local platform.
//!
//! Image names differ from Azure's samples only where the samples name
//! images on Microsoft's registry, which cannot be pulled here: the seed
//! image (`base:1`, busybox) stands in for them.

use crtask_tests::private_git::{publish, PrivateGit};
use crtask_tests::{seeded_stack, show, write_files, GitServer, Server};
use std::path::Path;
use std::process::{Command, Output};

/// `crtask ARGS` run in `dir` (for the `.` context of `az acr build`).
fn cli_in(srv: &Server, dir: &Path, args: &[&str]) -> Output {
    srv.cli_command()
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run crtask: {e}"))
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", show(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails_with(out: &Output, needle: &str) {
    assert!(!out.status.success(), "{}", show(out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "{}", show(out));
}

#[test]
fn az_acr_build_run_and_task_examples_run_as_crtask() {
    let (reg, srv) = seeded_stack(&["--poll-interval", "0"]);
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {}/base:1\nARG GREETING\nRUN echo \"greeting=$GREETING\"\n",
                reg.host
            ),
        )],
    );

    // az acr build -r myregistry -t hello:{{.Run.ID}} -f Dockerfile .
    let out = cli_in(
        &srv,
        ctx.path(),
        &["build", "-t", "hello:{{.Run.ID}}", "-f", "Dockerfile", "."],
    );
    let text = ok(&out);
    assert!(text.starts_with("Queued a build with ID: "), "{text}");
    let id = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Queued a build with ID: "))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        text.contains(&format!("Run ID: {id} was successful")),
        "{text}"
    );
    assert!(reg.digest("hello", &id).is_some(), "hello:{id} pushed");

    // az acr build -r myregistry --image hello:v1 --build-arg GREETING=hi --no-logs .
    // (and the az run/task spelling --arg)
    for flag in ["--build-arg", "--arg"] {
        let out = cli_in(
            &srv,
            ctx.path(),
            &["build", "--image", "hello:v1", flag, "GREETING=hi", "."],
        );
        let text = ok(&out);
        assert!(text.contains("greeting=hi"), "{flag}: {text}");
    }

    // az acr run -r myregistry --cmd '$Registry/base:1 echo hello-from-cmd' /dev/null
    let out = srv.cli(&[
        "run",
        "--cmd",
        "$Registry/base:1 echo hello-from-cmd",
        "/dev/null",
    ]);
    let text = ok(&out);
    assert!(text.starts_with("Queued a run with ID: "), "{text}");
    assert!(text.contains("hello-from-cmd"), "{text}");
    let out = srv.cli(&["run", "--cmd", "$Registry/base:1 false", "/dev/null"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    fails_with(
        &srv.cli(&["run", "--cmd", "$Registry/base:1 true", "."]),
        "--cmd runs without a context",
    );

    // az acr task create -r myregistry --name hello --context <dir> --file Dockerfile
    //   -t hello:{{.Run.ID}} --arg GREETING=task --commit-trigger-enabled false
    let dir = ctx.path().to_str().unwrap();
    let out = srv.cli(&[
        "task",
        "create",
        "--name",
        "hello",
        "--context",
        dir,
        "--file",
        "Dockerfile",
        "-t",
        "hello:{{.Run.ID}}",
        "--arg",
        "GREETING=task",
        "--secret-arg",
        "TOKEN=zz-secret-arg-zz",
        "--commit-trigger-enabled",
        "false",
    ]);
    let shown = ok(&out);
    assert!(
        shown.contains("Name:") && shown.contains("hello"),
        "{shown}"
    );
    assert!(!shown.contains("zz-secret-arg-zz"), "{shown}");

    // az acr task run -r myregistry --name hello
    let text = ok(&srv.cli(&["task", "run", "--name", "hello"]));
    assert!(text.contains("greeting=task"), "{text}");
    let run_id = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Queued a run with ID: "))
        .unwrap()
        .trim()
        .to_string();

    // az acr task logs -r myregistry --name hello: the latest run's log.
    let latest = ok(&srv.cli(&["task", "logs", "hello"]));
    assert!(latest.contains("greeting=task"), "{latest}");
    assert_eq!(latest, ok(&srv.cli(&["task", "logs", "--name", "hello"])));
    assert_eq!(latest, ok(&srv.cli(&["task", "logs", "--run-id", &run_id])));
    fails_with(&srv.cli(&["task", "logs", "nope"]), "nope");
    fails_with(&srv.cli(&["task", "logs"]), "give a task name");

    // az acr task list-runs -r myregistry --name hello -o tsv --query "[].runId"
    let ids = ok(&srv.cli(&[
        "task",
        "list-runs",
        "--name",
        "hello",
        "-o",
        "tsv",
        "--query",
        "[].runId",
    ]));
    assert_eq!(ids, format!("{run_id}\n"));
    // -o tsv alone: values only, one line per run, tab-separated.
    let tsv = ok(&srv.cli(&["task", "list-runs", "-o", "tsv"]));
    assert_eq!(tsv.lines().count(), 6, "{tsv}");
    assert!(
        tsv.lines().all(|l| l.contains('\t') && !l.contains('{')),
        "{tsv}"
    );
    assert!(tsv.lines().next().unwrap().contains(&run_id), "{tsv}");
    // --query with -o table: a table of the query's keys.
    let table = ok(&srv.cli(&[
        "task",
        "list-runs",
        "--query",
        "[?task=='hello'].{run: runId, state: status}",
    ]));
    let w = run_id.len().max(3);
    assert_eq!(
        table,
        format!(
            "{:<w$}  State\n{}  ---------\n{run_id:<w$}  Succeeded\n",
            "Run",
            "-".repeat(w)
        )
    );
    // -o yaml: the same document as -o json.
    let yaml = ok(&srv.cli(&["task", "show", "--name", "hello", "-o", "yaml"]));
    let doc = &yaml_rust2::YamlLoader::load_from_str(&yaml).unwrap()[0];
    assert_eq!(doc["name"].as_str(), Some("hello"), "{yaml}");
    assert_eq!(doc["commitTriggerEnabled"].as_bool(), Some(false), "{yaml}");
    assert!(!yaml.contains("zz-secret-arg-zz"), "{yaml}");
    let json = srv
        .cli_json(&[
            "task",
            "show-run",
            "--run-id",
            &run_id,
            "--query",
            "{s: status, t: task}",
        ])
        .unwrap();
    assert_eq!(json, serde_json::json!({"s": "Succeeded", "t": "hello"}));
    // A bad query is refused before anything is asked.
    fails_with(
        &srv.cli(&["task", "list", "--query", "[?"]),
        "invalid --query '[?'",
    );
    // Delete answers through the same printer.
    let gone = ok(&srv.cli(&["task", "delete", "--name", "hello", "-o", "tsv"]));
    assert_eq!(gone, "hello\n");
}

#[test]
fn a_git_access_token_clones_a_private_repository_and_is_never_shown() {
    const TOKEN: &str = "ghp_zzPrivateTokenzz0123456789";
    let (reg, srv) = seeded_stack(&["--poll-interval", "0"]);
    let git = GitServer::start().unwrap();
    git.commit(
        "main",
        &[(
            "Dockerfile",
            &format!("FROM {}/base:1\nRUN echo from-private-repo\n", reg.host),
        )],
        "first",
    )
    .unwrap();
    let http = PrivateGit::start(publish(&git), TOKEN);
    let mut outputs = Vec::new();
    let mut run = |args: &[&str]| {
        let out = srv.cli(args);
        outputs.push(show(&out));
        out
    };

    // az acr task create -r myregistry --name private --context https://.../repo.git#main
    //   --file Dockerfile -t private:{{.Run.ID}} --git-access-token $PAT
    let context = format!("{}#main", http.url);
    let out = run(&[
        "task",
        "create",
        "--name",
        "private",
        "--context",
        &context,
        "--file",
        "Dockerfile",
        "-t",
        "private:{{.Run.ID}}",
        "--git-access-token",
        TOKEN,
    ]);
    let created = ok(&out);
    assert!(created.contains("Git access token:"), "{created}");
    let text = ok(&run(&["task", "run", "--name", "private"]));
    assert!(text.contains("from-private-repo"), "{text}");
    assert!(
        http.seen.lock().unwrap().iter().any(|a| a.is_some()),
        "the clone sent the token"
    );

    // Without the token the same repository is refused (the server is real).
    ok(&run(&[
        "task",
        "create",
        "--name",
        "public",
        "--context",
        &context,
        "--commit-trigger-enabled",
        "false",
    ]));
    let out = run(&["task", "run", "--name", "public"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));

    // Nowhere to be seen: every format of show and list, the run, its log,
    // the server's log.
    for format in ["table", "json", "yaml", "tsv"] {
        for args in [
            &["task", "show", "--name", "private"][..],
            &["task", "list"],
            &["task", "list-runs"],
        ] {
            let mut a = args.to_vec();
            a.extend(["-o", format]);
            ok(&run(&a));
        }
    }
    ok(&run(&["task", "logs", "private"]));
    let masked = srv
        .cli_json(&["task", "show", "--name", "private"])
        .unwrap();
    assert_eq!(masked["gitAccessToken"], "*****");
    // An update that does not name the token keeps it (the run still clones).
    ok(&run(&[
        "task",
        "update",
        "--name",
        "private",
        "--commit-trigger-enabled",
        "false",
    ]));
    ok(&run(&["task", "run", "--name", "private"]));
    let all = outputs.join("\n");
    assert!(!all.contains(TOKEN), "the token was printed:\n{all}");
    assert!(!srv.log().contains(TOKEN), "the token is in the server log");
}

#[test]
fn assign_identity_is_refused_by_the_local_platform() {
    let (_reg, srv) = seeded_stack(&["--poll-interval", "0"]);
    let role = "arn:aws:iam::123456789012:role/crtask-tasks/builder";
    // az acr task create ... --assign-identity <id>
    fails_with(
        &srv.cli(&[
            "task",
            "create",
            "--name",
            "ident",
            "--context",
            "/dev/null",
            "--assign-identity",
            role,
        ]),
        "--assign-identity is for the AWS platform",
    );
    fails_with(&srv.cli(&["task", "show", "--name", "ident"]), "not found");
    // The API refuses it too (a client that skips the CLI's check): 400,
    // nothing stored.
    let body = serde_json::json!({
        "name": "ident", "context": "/dev/null", "identity": role,
        "createTime": "2026-01-01T00:00:00.000Z",
    });
    let mut req = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/tasks", srv.api))
        .json(&body);
    if let Some(t) = &srv.api_token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let text = resp.text().unwrap();
    assert!(text.contains("AWS platform"), "{text}");
    fails_with(&srv.cli(&["task", "show", "--name", "ident"]), "not found");
    // An existing task cannot be given one either.
    ok(&srv.cli(&[
        "task",
        "create",
        "--name",
        "ident",
        "--context",
        "/dev/null",
    ]));
    fails_with(
        &srv.cli(&[
            "task",
            "update",
            "--name",
            "ident",
            "--assign-identity",
            role,
        ]),
        "--assign-identity is for the AWS platform",
    );
    let t = srv.cli_json(&["task", "show", "--name", "ident"]).unwrap();
    assert!(t.get("identity").is_none(), "{t}");
}

#[test]
fn completion_scripts_come_from_the_binary() {
    let (_reg, srv) = seeded_stack(&[]);
    for shell in ["bash", "zsh", "fish"] {
        let text = ok(&srv.cli(&["completion", shell]));
        assert!(text.contains("crtask"), "{shell}");
        assert!(text.contains("list-runs"), "{shell}");
    }
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("crtask.bash");
    std::fs::write(&f, ok(&srv.cli(&["completion", "bash"]))).unwrap();
    let out = Command::new("bash").arg("-n").arg(&f).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    fails_with(&srv.cli(&["completion", "tcsh"]), "invalid value 'tcsh'");
}
