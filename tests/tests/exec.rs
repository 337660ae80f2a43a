//! `crtask exec`, the step executor the CodeBuild builder runs, proven
//! locally: the real binary as a process with the buildspec's environment
//! contract, buildah in place of docker (`CRTASK_ENGINE=buildah`), and a
//! real distribution registry. The last tests run the commands of
//! `infra/aws/buildspec.yml` themselves with bash, with stubs only for the
//! parts that need AWS (see [`buildspec_phases_build_and_push_with_stubbed_aws`]).

use crtask_tests::{crtask_bin, read_from_image, repo_root, show, write_files, Registry};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A multi-stage Dockerfile on the seeded base.
fn dockerfile(host: &str) -> String {
    format!(
        "FROM {host}/base:1 AS build\n\
         RUN mkdir -p /out && echo built-in-stage-one > /out/msg.txt && echo exec-build-marker\n\
         \n\
         FROM {host}/base:1\n\
         COPY --from=build /out/msg.txt /msg.txt\n\
         COPY hello.txt /hello.txt\n"
    )
}

/// Packs `dir` as a quick-build upload (`crtask_executor::context::pack_dir`).
fn pack(dir: &Path, out: &Path) {
    let file = std::fs::File::create(out).unwrap();
    crtask_executor::context::pack_dir(dir, Some("Dockerfile"), 64 << 20, file, &mut |_| {})
        .unwrap_or_else(|e| panic!("pack {}: {e}", dir.display()));
}

/// The build spec CodeBuild passes in `CRTASK_SPEC` (a `BuildSpec` as JSON).
fn spec(images: &[&str]) -> String {
    serde_json::json!({
        "context": {"kind": "uploaded", "id": "ctx1"},
        "file": "Dockerfile",
        "images": images,
        "push": true,
        "timeout": 600,
    })
    .to_string()
}

/// A command with no `CRTASK_*` variable inherited from the test's environment.
fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CRTASK_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// Runs `crtask exec` with exactly these contract variables.
fn exec(env: &BTreeMap<String, String>) -> Output {
    clean_command(crtask_bin())
        .arg("exec")
        .envs(env)
        .output()
        .unwrap_or_else(|e| panic!("cannot run crtask exec: {e}"))
}

/// The contract variables of one run, in a private work directory.
fn contract(
    reg: &Registry,
    work: &Path,
    run_id: &str,
    images: &[&str],
) -> BTreeMap<String, String> {
    let p = |s: &str| work.join(s).display().to_string();
    [
        ("CRTASK_ENGINE", "buildah".to_string()),
        ("CRTASK_WORK_DIR", p("work")),
        ("CRTASK_RESULT_FILE", p("out/result.json")),
        ("CRTASK_LOG_FILE", p("out/run.log")),
        ("CRTASK_CONTEXT_ARCHIVE", p("context.tar.gz")),
        ("CRTASK_RUN_ID", run_id.to_string()),
        ("CRTASK_RUN_TYPE", "QuickRun".to_string()),
        ("CRTASK_TRIGGER", "commit".to_string()),
        ("CRTASK_TASK", "app".to_string()),
        ("CRTASK_COMMIT", "0123abcd".to_string()),
        ("CRTASK_BRANCH", "main".to_string()),
        ("CRTASK_REGISTRY", reg.host.clone()),
        ("CRTASK_INSECURE_REGISTRY", reg.host.clone()),
        ("CRTASK_RUN_DATE", "2026-01-02T03:04:05Z".to_string()),
        ("CRTASK_CONTEXT_KIND", "uploaded".to_string()),
        ("CRTASK_SPEC", spec(images)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn result(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no result file {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("result is not JSON ({e}): {text}"))
}

/// Every output image's digest is what the registry now serves for its tag.
fn assert_outputs_served(reg: &Registry, r: &serde_json::Value, tags: &[&str]) {
    let outs = r["outputImages"].as_array().expect("outputImages");
    assert_eq!(outs.len(), tags.len(), "{r:#}");
    for tag in tags {
        let o = outs
            .iter()
            .find(|o| o["tag"] == *tag)
            .unwrap_or_else(|| panic!("no output tag {tag}: {r:#}"));
        assert_eq!(o["registry"], reg.host.as_str());
        assert_eq!(o["repository"], "app");
        let served = reg.digest("app", tag).expect("the registry serves the tag");
        assert_eq!(o["digest"], served.as_str(), "{tag}");
    }
}

#[test]
fn exec_builds_and_pushes_an_uploaded_context() {
    let reg = Registry::start().unwrap();
    let base_digest = reg.seed("base:1", "exec-v1").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    write_files(
        &ctx,
        &[
            ("Dockerfile", &dockerfile(&reg.host)),
            ("hello.txt", "hello from the context\n"),
        ],
    );
    pack(&ctx, &tmp.path().join("context.tar.gz"));
    let env = contract(
        &reg,
        tmp.path(),
        "cb1",
        &[
            "app:{{.Run.ID}}",
            "app:{{.Run.Commit}}",
            "app:{{.Run.Date}}",
        ],
    );
    let out = exec(&env);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    let r = result(&tmp.path().join("out/result.json"));
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    assert_eq!(r["runId"], "cb1");
    assert!(r["error"].is_null(), "{r:#}");
    assert_outputs_served(&reg, &r, &["cb1", "0123abcd", "20260102-030405z"]);
    let bases = r["baseImages"].as_array().expect("baseImages");
    assert!(
        bases
            .iter()
            .any(|b| b["image"] == format!("{}/base:1", reg.host)
                && b["digest"] == base_digest.as_str()),
        "base digest {base_digest} not recorded: {r:#}"
    );
    assert!(!r["steps"].as_array().expect("steps").is_empty(), "{r:#}");

    // The log went to the log file and to stdout.
    let log = std::fs::read_to_string(tmp.path().join("out/run.log")).unwrap();
    assert!(log.contains("exec-build-marker"), "{log}");
    assert!(log.contains("crtask: run cb1 Succeeded"), "{log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("exec-build-marker"), "{}", show(&out));

    // The image holds what the two stages and the context put there.
    let image = format!("{}/app:cb1", reg.host);
    assert_eq!(
        read_from_image(&image, &reg.host, "/msg.txt")
            .unwrap()
            .as_deref(),
        Some("built-in-stage-one\n")
    );
    assert_eq!(
        read_from_image(&image, &reg.host, "/hello.txt")
            .unwrap()
            .as_deref(),
        Some("hello from the context\n")
    );
}

#[test]
fn exec_reports_a_failing_build_and_exits_1() {
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "exec-fail").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM {}/base:1\nRUN echo about-to-fail && exit 3\n",
                reg.host
            ),
        )],
    );
    pack(&ctx, &tmp.path().join("context.tar.gz"));
    let env = contract(&reg, tmp.path(), "cb2", &["app:{{.Run.ID}}"]);
    let out = exec(&env);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let r = result(&tmp.path().join("out/result.json"));
    assert_eq!(r["status"], "Failed", "{r:#}");
    assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r:#}");
    assert_eq!(r["outputImages"], serde_json::json!([]));
    assert!(reg.digest("app", "cb2").is_none(), "nothing may be pushed");
    let log = std::fs::read_to_string(tmp.path().join("out/run.log")).unwrap();
    assert!(log.contains("about-to-fail"), "{log}");
}

/// The one `error: ...` line a failing command prints on stderr.
fn error_line(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line expected: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

#[test]
fn exec_names_a_missing_or_invalid_variable() {
    let reg = Registry::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let full = contract(&reg, tmp.path(), "cb3", &["app:1"]);

    let mut env = full.clone();
    env.remove("CRTASK_RESULT_FILE");
    let out = exec(&env);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        error_line(&out).contains("CRTASK_RESULT_FILE"),
        "{}",
        show(&out)
    );

    // With a result file, a broken contract is also reported there.
    let result_file = tmp.path().join("out/result.json");
    for (name, value) in [
        ("CRTASK_SPEC", None),
        ("CRTASK_SPEC", Some("{not json")),
        ("CRTASK_ENGINE", Some("podman; rm -rf /")),
        ("CRTASK_RUN_ID", Some("cb3; echo")),
        ("CRTASK_LOG_FILE", None),
        ("CRTASK_RUN_DATE", Some("yesterday")),
    ] {
        let mut env = full.clone();
        match value {
            None => env.remove(name),
            Some(v) => env.insert(name.to_string(), v.to_string()),
        };
        let _ = std::fs::remove_file(&result_file);
        let out = exec(&env);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", show(&out));
        assert!(error_line(&out).contains(name), "{name}: {}", show(&out));
        let r = result(&result_file);
        assert_eq!(r["status"], "Error", "{name}: {r:#}");
        assert!(
            r["error"].as_str().is_some_and(|e| e.contains(name)),
            "{name}: {r:#}"
        );
    }
}

// ---------------------------------------------------------------------------
// The buildspec's own commands, run by bash
// ---------------------------------------------------------------------------

/// `aws` stub: records its arguments; `ecr get-login-password` prints a
/// token; `s3 cp` copies between local files and `$FAKE_S3/<bucket>/<key>`.
/// Anything else fails, so an unexpected AWS call is noticed.
const AWS_STUB: &str = r#"#!/usr/bin/env bash
set -euo pipefail
printf '%s\n' "aws $*" >> "$STUB_LOG"
local_path() { case "$1" in s3://*) printf '%s/%s' "$FAKE_S3" "${1#s3://}" ;; *) printf '%s' "$1" ;; esac; }
case "${1:-} ${2:-}" in
  "ecr get-login-password") echo stub-ecr-token ;;
  "secretsmanager get-secret-value")
    # Only the task's git token secret, as text: what the builder's role
    # may read and how the buildspec asks for it.
    [ "$*" = "secretsmanager get-secret-value --secret-id $STUB_GIT_SECRET --query SecretString --output text" ] \
      || { echo "aws stub: unexpected call: $*" >&2; exit 2; }
    printf '%s\n' "$STUB_GIT_TOKEN" ;;
  "s3 cp")
    shift 2
    args=()
    for a in "$@"; do [ "$a" = --only-show-errors ] || args+=("$a"); done
    src=$(local_path "${args[0]}"); dst=$(local_path "${args[1]}")
    mkdir -p "$(dirname "$dst")"
    cp "$src" "$dst" ;;
  *) echo "aws stub: unexpected call: $*" >&2; exit 2 ;;
esac
"#;

/// `docker` stub: only `docker login --password-stdin`, which must receive
/// the stub ECR token on stdin. Builds go to buildah (`CRTASK_ENGINE`).
const DOCKER_STUB: &str = r#"#!/usr/bin/env bash
set -euo pipefail
token=$(cat)
printf '%s\n' "docker $* token=$token" >> "$STUB_LOG"
[ "${1:-}" = login ] && [ "$token" = stub-ecr-token ] || { echo "docker stub: unexpected call: $*" >&2; exit 2; }
echo "Login Succeeded"
"#;

struct Buildspec {
    variables: BTreeMap<String, String>,
    phases: BTreeMap<String, Vec<String>>,
}

fn buildspec() -> Buildspec {
    let path = repo_root().join("infra/aws/buildspec.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let y = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0);
    assert_eq!(y["env"]["shell"].as_str(), Some("bash"));
    let variables = y["env"]["variables"]
        .as_hash()
        .expect("env.variables")
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap().to_string(),
            )
        })
        .collect();
    let phases = y["phases"]
        .as_hash()
        .expect("phases")
        .iter()
        .map(|(k, v)| {
            let cmds = v["commands"]
                .as_vec()
                .expect("commands")
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            (k.as_str().unwrap().to_string(), cmds)
        })
        .collect();
    Buildspec { variables, phases }
}

/// Outcome of one phase: its commands' combined output, and whether all passed.
struct Phase {
    ok: bool,
    output: String,
}

/// Runs a phase's commands with bash in order, as CodeBuild does, stopping
/// at the first failure.
fn run_phase(commands: &[String], env: &BTreeMap<String, String>) -> Phase {
    let mut output = String::new();
    for c in commands {
        let out = clean_command("bash")
            .arg("-c")
            .arg(c)
            .envs(env)
            .output()
            .unwrap();
        output.push_str(&show(&out));
        if !out.status.success() {
            return Phase { ok: false, output };
        }
    }
    Phase { ok: true, output }
}

/// The environment of one simulated CodeBuild build: the buildspec's
/// `env.variables`, then the project's and StartBuild's variables, which
/// take precedence over them (CodeBuild's documented order).
fn build_env(
    spec: &Buildspec,
    reg: &Registry,
    tmp: &Path,
    overrides: &[(&str, String)],
) -> BTreeMap<String, String> {
    let stubs = tmp.join("stubs");
    std::fs::create_dir_all(&stubs).unwrap();
    for (name, text) in [("aws", AWS_STUB), ("docker", DOCKER_STUB)] {
        let p = stubs.join(name);
        std::fs::write(&p, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // The install phase's job (fetch the executor, put it on PATH) is done
    // by putting the freshly built binary's directory on PATH.
    let bin_dir: PathBuf = crtask_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}:{}",
        stubs.display(),
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut env = spec.variables.clone();
    let p = |s: &str| tmp.join(s).display().to_string();
    let project_and_run = [
        // The buildspec's own values of these point at /tmp/crtask, shared
        // by every run on the machine; a real builder is a fresh container.
        ("CRTASK_WORK_DIR", p("work")),
        ("CRTASK_RESULT_FILE", p("work/result.json")),
        ("CRTASK_LOG_FILE", p("work/run.log")),
        // buildah in place of docker: the acceptance test's premise.
        ("CRTASK_ENGINE", "buildah".to_string()),
        ("CRTASK_INSECURE_REGISTRY", reg.host.clone()),
        // The project's variables (template.yaml).
        ("CRTASK_BUCKET", "crtask-bucket".to_string()),
        ("CRTASK_REGISTRY", reg.host.clone()),
        (
            "CRTASK_EXECUTOR_LAYER_ARN",
            "arn:aws:lambda:us-east-1:123456789012:layer:crtask:1".to_string(),
        ),
        // CodeBuild's own.
        ("AWS_REGION", "us-east-1".to_string()),
        ("CODEBUILD_SRC_DIR", p("src")),
        // StartBuild's overrides, as shared/aws/src/codebuild.rs sends them.
        ("CRTASK_RUN_ID", "cb9".to_string()),
        ("CRTASK_RUN_TYPE", "QuickRun".to_string()),
        ("CRTASK_TRIGGER", "manual".to_string()),
        ("CRTASK_PLATFORM", "linux/amd64".to_string()),
        ("CRTASK_FILE", "Dockerfile".to_string()),
        ("CRTASK_PUSH", "true".to_string()),
        ("CRTASK_CONTEXT_KIND", "uploaded".to_string()),
        (
            "CRTASK_CONTEXT_OBJECT",
            "s3://crtask-bucket/contexts/ctx1.tar.gz".to_string(),
        ),
        ("CRTASK_SPEC", spec_json_for_buildspec()),
        // The stubs' state.
        ("FAKE_S3", p("s3")),
        ("STUB_LOG", p("stubs.log")),
        ("PATH", path),
    ];
    for (k, v) in project_and_run {
        env.insert(k.to_string(), v);
    }
    for (k, v) in overrides {
        env.insert(k.to_string(), v.clone());
    }
    env
}

fn spec_json_for_buildspec() -> String {
    spec(&["app:{{.Run.ID}}", "app:latest"])
}

/// The buildspec's pre_build, build and post_build phases, run by bash
/// exactly as written. Stubbed, and why:
/// - the whole `install` phase is not run: it downloads the executor layer
///   (`aws lambda get-layer-version-by-arn`, `curl`) and installs it into
///   `/usr/local/bin`; the freshly built `crtask` is put on PATH instead;
/// - `aws ecr get-login-password` (pre_build): a stub printing a token;
/// - `docker login --password-stdin` (pre_build): a stub checking that the
///   token arrives on stdin (the images are built and pushed by buildah);
/// - `aws s3 cp` (pre_build's context download, post_build's log and result
///   upload): a stub copying to and from a local directory standing in for
///   the bucket.
///
/// `crtask exec` itself is not stubbed.
#[test]
fn buildspec_phases_build_and_push_with_stubbed_aws() {
    let reg = Registry::start().unwrap();
    let base_digest = reg.seed("base:1", "buildspec").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    write_files(
        &ctx,
        &[
            ("Dockerfile", &dockerfile(&reg.host)),
            ("hello.txt", "hello via the buildspec\n"),
        ],
    );
    let object = tmp.path().join("s3/crtask-bucket/contexts/ctx1.tar.gz");
    std::fs::create_dir_all(object.parent().unwrap()).unwrap();
    pack(&ctx, &object);

    let bs = buildspec();
    assert_eq!(
        bs.variables.get("CRTASK_ENGINE").map(String::as_str),
        Some("docker")
    );
    let env = build_env(&bs, &reg, tmp.path(), &[]);
    let pre = run_phase(&bs.phases["pre_build"], &env);
    assert!(pre.ok, "pre_build: {}", pre.output);
    let build = run_phase(&bs.phases["build"], &env);
    let post = run_phase(&bs.phases["post_build"], &env);
    assert!(build.ok, "build: {}", build.output);
    assert!(post.ok, "post_build: {}", post.output);
    assert!(
        build.output.contains("exec-build-marker"),
        "{}",
        build.output
    );

    // What post_build uploaded is what build-status will read.
    let uploaded = tmp.path().join("s3/crtask-bucket/logs");
    let r = result(&uploaded.join("cb9.result.json"));
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    assert_outputs_served(&reg, &r, &["cb9", "latest"]);
    assert!(
        r["baseImages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["digest"] == base_digest.as_str()),
        "{r:#}"
    );
    let log = std::fs::read_to_string(uploaded.join("cb9.log")).unwrap();
    assert!(log.contains("exec-build-marker"), "{log}");

    let calls = std::fs::read_to_string(tmp.path().join("stubs.log")).unwrap();
    assert!(
        calls.contains("aws ecr get-login-password --region us-east-1"),
        "{calls}"
    );
    assert!(
        calls.contains(&format!(
            "docker login --username AWS --password-stdin {} token=stub-ecr-token",
            reg.host
        )),
        "{calls}"
    );
    assert!(
        calls.contains("aws s3 cp --only-show-errors s3://crtask-bucket/contexts/ctx1.tar.gz"),
        "{calls}"
    );
}

/// pre_build refuses a malformed run id and a context object outside the
/// stack's bucket before anything runs; post_build then uploads nothing.
/// A task's git token on AWS: the build phase reads the secret that
/// `CRTASK_GIT_TOKEN_SECRET` names into a private file, and `crtask exec`
/// clones the private repository with it; the token is in no log.
#[test]
fn buildspec_build_clones_with_the_tasks_git_token_from_secrets_manager() {
    use crtask_tests::private_git::{publish, PrivateGit};
    const TOKEN: &str = "ghp_zzBuildspecTokenzz42";
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "buildspec-git").unwrap();
    let git = crtask_tests::GitServer::start().unwrap();
    git.commit(
        "main",
        &[
            ("Dockerfile", &dockerfile(&reg.host)),
            ("hello.txt", "hello from a private repository\n"),
        ],
        "first",
    )
    .unwrap();
    let http = PrivateGit::start(publish(&git), TOKEN);
    let tmp = tempfile::tempdir().unwrap();
    let bs = buildspec();
    let git_env = |secret: &str| {
        build_env(
            &bs,
            &reg,
            tmp.path(),
            &[
                ("CRTASK_CONTEXT_KIND", "git".to_string()),
                ("CRTASK_GIT_URL", http.url.clone()),
                ("CRTASK_GIT_REF", "main".to_string()),
                ("CRTASK_GIT_TOKEN_SECRET", secret.to_string()),
                ("STUB_GIT_SECRET", "crtask/git/web".to_string()),
                ("STUB_GIT_TOKEN", TOKEN.to_string()),
            ],
        )
    };
    let env = git_env("crtask/git/web");
    let pre = run_phase(&bs.phases["pre_build"], &env);
    assert!(pre.ok, "pre_build: {}", pre.output);
    let build = run_phase(&bs.phases["build"], &env);
    assert!(build.ok, "build: {}", build.output);
    assert!(
        build.output.contains("exec-build-marker"),
        "{}",
        build.output
    );
    let token_file = tmp.path().join("work/git-token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the token file is private: {mode:o}");
    let r = result(&tmp.path().join("work/result.json"));
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    let log = std::fs::read_to_string(tmp.path().join("work/run.log")).unwrap();
    assert!(
        !log.contains(TOKEN) && !build.output.contains(TOKEN),
        "{log}"
    );
    assert!(
        http.seen.lock().unwrap().iter().any(Option::is_some),
        "the clone sent the token"
    );

    // Without a token (a secret the stub does not know): the build fails
    // before anything is cloned.
    let env = git_env("crtask/git/other");
    let build = run_phase(&bs.phases["build"], &env);
    assert!(!build.ok, "{}", build.output);
}

#[test]
fn buildspec_pre_build_rejects_bad_run_metadata() {
    let reg = Registry::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let bs = buildspec();
    for (name, value, message) in [
        (
            "CRTASK_RUN_ID",
            "cb9; touch pwned",
            "CRTASK_RUN_ID is missing or malformed",
        ),
        (
            "CRTASK_CONTEXT_OBJECT",
            "s3://someone-else/contexts/ctx1.tar.gz",
            "CRTASK_CONTEXT_OBJECT must name an object under s3://crtask-bucket/contexts/",
        ),
        (
            "CRTASK_CONTEXT_OBJECT",
            "s3://crtask-bucket/contexts/../logs/x.tar.gz",
            "CRTASK_CONTEXT_OBJECT must name an object under",
        ),
    ] {
        let env = build_env(&bs, &reg, tmp.path(), &[(name, value.to_string())]);
        let pre = run_phase(&bs.phases["pre_build"], &env);
        assert!(!pre.ok, "{name}={value}: {}", pre.output);
        assert!(
            pre.output.contains(message),
            "{name}={value}: {}",
            pre.output
        );
    }
    assert!(!tmp.path().join("pwned").exists());
    assert!(!Path::new("pwned").exists());
}

/// `CRTASK_SPEC` of a run of the context's `acr-task.yaml`.
fn task_file_spec(push: bool, values: serde_json::Value) -> String {
    serde_json::json!({
        "context": {"kind": "uploaded", "id": "ctx1"},
        "file": "acr-task.yaml",
        "images": [],
        "push": push,
        "timeout": 600,
        "values": values,
    })
    .to_string()
}

/// An acr-task.yaml through `crtask exec`: build, a `cmd` step on the built
/// image with the context at /workspace, push.
#[test]
fn exec_runs_a_task_file() {
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "exec-multi").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    let task_file = r#"version: v1.1.0
steps:
  - id: build
    build: -t $Registry/app:$ID -f Dockerfile .
  - id: test
    cmd: $Registry/app:$ID sh -c 'test "$(cat /result)" = "$(cat /workspace/expected.txt)" && echo test-passed-{{.Values.who}}'
  - id: push
    push:
      - $Registry/app:$ID
"#;
    write_files(
        &ctx,
        &[
            ("acr-task.yaml", task_file),
            (
                "Dockerfile",
                &format!("FROM {}/base:1\nRUN echo ok > /result\n", reg.host),
            ),
            ("expected.txt", "ok\n"),
        ],
    );
    pack(&ctx, &tmp.path().join("context.tar.gz"));
    let mut env = contract(&reg, tmp.path(), "cb4", &[]);
    env.insert(
        "CRTASK_SPEC".into(),
        task_file_spec(true, serde_json::json!({"who": "exec"})),
    );
    let out = exec(&env);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let r = result(&tmp.path().join("out/result.json"));
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    assert_outputs_served(&reg, &r, &["cb4"]);
    let ids: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, ["build", "test", "push"], "{r:#}");
    let log = std::fs::read_to_string(tmp.path().join("out/run.log")).unwrap();
    assert!(log.contains("test-passed-exec"), "{log}");
}

/// A git context CodeBuild cannot fetch itself (`NO_SOURCE`): `crtask exec`
/// clones `CRTASK_GIT_URL` at `CRTASK_COMMIT` and builds `CRTASK_CONTEXT_SUBDIR`.
#[test]
fn exec_clones_a_git_context_at_the_commit() {
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "exec-git").unwrap();
    let git = crtask_tests::GitServer::start().unwrap();
    let first = git
        .commit(
            "main",
            &[
                ("app/Dockerfile", &dockerfile(&reg.host)),
                ("app/hello.txt", "first commit\n"),
            ],
            "first",
        )
        .unwrap();
    git.commit("main", &[("app/hello.txt", "second commit\n")], "second")
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut env = contract(&reg, tmp.path(), "cb5", &["app:{{.Run.Commit}}"]);
    env.remove("CRTASK_CONTEXT_ARCHIVE");
    for (k, v) in [
        ("CRTASK_CONTEXT_KIND", "git".to_string()),
        ("CRTASK_GIT_URL", git.url()),
        ("CRTASK_GIT_REF", "main".to_string()),
        ("CRTASK_CONTEXT_SUBDIR", "app".to_string()),
        ("CRTASK_COMMIT", first.clone()),
    ] {
        env.insert(k.to_string(), v);
    }
    let out = exec(&env);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let r = result(&tmp.path().join("out/result.json"));
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    assert_outputs_served(&reg, &r, &[first.as_str()]);
    assert_eq!(
        read_from_image(
            &format!("{}/app:{first}", reg.host),
            &reg.host,
            "/hello.txt"
        )
        .unwrap()
        .as_deref(),
        Some("first commit\n"),
        "built at CRTASK_COMMIT, not the branch head"
    );
}

/// Secret build arguments are masked in the log file and on stdout alike.
#[test]
fn exec_masks_secret_build_arguments() {
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "exec-secret").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM {}/base:1\nARG TOKEN\nRUN echo \"token=$TOKEN\"\n",
                reg.host
            ),
        )],
    );
    pack(&ctx, &tmp.path().join("context.tar.gz"));
    let mut env = contract(&reg, tmp.path(), "cb6", &[]);
    env.insert(
        "CRTASK_SPEC".into(),
        serde_json::json!({
            "context": {"kind": "uploaded", "id": "ctx1"},
            "file": "Dockerfile",
            "images": ["app:{{.Run.ID}}"],
            "buildArgs": [{"name": "TOKEN", "value": "s3cr3t-xyz", "secret": true}],
            "push": false,
            "timeout": 600,
        })
        .to_string(),
    );
    let out = exec(&env);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let log = std::fs::read_to_string(tmp.path().join("out/run.log")).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for text in [log.as_str(), &stdout] {
        assert!(text.contains("token=*****"), "{text}");
        assert!(!text.contains("s3cr3t-xyz"), "{text}");
    }
    assert!(
        reg.digest("app", "cb6").is_none(),
        "push: false pushes nothing"
    );
}

/// Task-file secrets on AWS: `crtask exec` reads a Secrets Manager ARN
/// (here from moto) with the builder's credentials; the value reaches
/// `{{.Secrets.id}}` and is masked in the log, on stdout and in the result.
/// A secret that does not exist fails the run naming it.
#[test]
fn exec_resolves_secrets_manager_task_secrets() {
    const VALUE: &str = "sm-s3cret-2468";
    let moto = crtask_tests::MotoServer::start().unwrap();
    let arn = moto.create_secret("crtask-task-secret", VALUE).unwrap();
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "exec-sm").unwrap();
    let run = |name: &str, keyvault: &str| {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        let file = format!(
            r#"secrets:
  - id: token
    keyvault: {keyvault}
steps:
  - id: use
    cmd: {}/base:1 sh -c 'echo "token={{{{.Secrets.token}}}}"; test "$T" = "{{{{.Secrets.token}}}}" && echo same'
    env: ["T={{{{.Secrets.token}}}}"]
"#,
            reg.host
        );
        write_files(&ctx, &[("acr-task.yaml", &file)]);
        pack(&ctx, &tmp.path().join("context.tar.gz"));
        let mut env = contract(&reg, tmp.path(), name, &[]);
        env.extend(moto.env());
        env.insert(
            "CRTASK_SPEC".into(),
            task_file_spec(false, serde_json::json!({})),
        );
        let out = exec(&env);
        let log = std::fs::read_to_string(tmp.path().join("out/run.log")).unwrap_or_default();
        let result = std::fs::read_to_string(tmp.path().join("out/result.json")).unwrap();
        (out, log, result)
    };

    let (out, log, result) = run("cb7", &arn);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for text in [log.as_str(), stdout.as_str()] {
        assert!(text.contains("[use] token=*****"), "{text}");
        assert!(text.contains("[use] same"), "{text}");
    }
    for text in [log.as_str(), stdout.as_str(), result.as_str()] {
        assert!(!text.contains(VALUE), "the value leaked:\n{text}");
    }

    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-AbCdEf";
    let (out, _, result) = run("cb8", missing);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let r: serde_json::Value = serde_json::from_str(&result).unwrap();
    assert_eq!(r["status"], "Failed", "{r:#}");
    let err = r["error"].as_str().unwrap();
    assert!(
        err.starts_with(&format!("cannot resolve secret 'token' ({missing}): ")),
        "{err}"
    );
    assert!(r["steps"].as_array().unwrap().is_empty(), "{r:#}");
}
