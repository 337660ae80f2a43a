//! Multi-platform builds end to end (real crtask, buildah, registry and
//! qemu user emulation): `--platform linux/amd64,linux/arm64` pushes one
//! image index whose arm64 image runs under emulation, and the run records
//! the index digest and each platform's. A base without the asked platform
//! fails the build and pushes nothing.
//!
//! Needs what infra/local/setup.sh installs: qemu-user-static with its
//! binfmt handlers registered, and an arm64 busybox for the test base.

use crtask_tests::{seed_multiarch, show, write_files, Registry, Server};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The image index the registry serves for `repo:tag`.
fn index(reg: &Registry, repo: &str, tag: &str) -> Value {
    reg.index(repo, tag)
}

/// Runs `cmd` in a container of `image` for `arch`; returns its stdout.
fn run_in(reg: &Registry, image: &str, arch: &str, cmd: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            reg.host
        ),
    )
    .unwrap();
    let buildah = |args: &[&str]| {
        let out = Command::new("buildah")
            .args(["--storage-driver", "vfs", "--root"])
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("runroot"))
            .args(args)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "buildah {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let ctr = buildah(&["from", "--quiet", "--arch", arch, image]);
    let mut args = vec!["run", "--isolation", "chroot", &ctr, "--"];
    args.extend_from_slice(cmd);
    let out = buildah(&args);
    buildah(&["rm", &ctr]);
    out
}

fn built_id(out: &std::process::Output, prefix: &str) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no run id: {}", show(out)))
        .to_string()
}

/// The index's `(architecture, digest)` pairs.
fn arches(index: &Value) -> Vec<(String, String)> {
    crtask_tests::index_arches(index)
}

/// Checks the record of a run that pushed `app:tag` for both platforms.
fn check_record(reg: &Registry, run: &Value, tag: &str) {
    let idx = index(reg, "app", tag);
    let outs = run["outputImages"].as_array().unwrap();
    assert_eq!(outs.len(), 1, "{run}");
    let out = &outs[0];
    assert_eq!(out["tag"], tag);
    assert_eq!(
        out["digest"].as_str(),
        reg.digest("app", tag).as_deref(),
        "{run}"
    );
    let recorded: Vec<(String, String)> = out["platforms"]
        .as_array()
        .unwrap_or_else(|| panic!("no platforms recorded: {run}"))
        .iter()
        .map(|p| {
            (
                p["platform"].as_str().unwrap().to_string(),
                p["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let served: Vec<(String, String)> = arches(&idx)
        .into_iter()
        .map(|(a, d)| (format!("linux/{a}"), d))
        .collect();
    assert_eq!(recorded, served, "{run}");
    // Three digests in all: the index and one per platform, all distinct.
    let mut all: Vec<&str> = recorded.iter().map(|(_, d)| d.as_str()).collect();
    all.push(out["digest"].as_str().unwrap());
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 3, "{run}");
}

fn context(reg: &Registry, base: &str) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {}/{base}\nRUN uname -m > /built-on\nCOPY hello.txt /\n",
                    reg.host
                ),
            ),
            ("hello.txt", "hello\n"),
        ],
    );
    ctx
}

fn build(srv: &Server, ctx: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    srv.cli(&args)
}

#[test]
fn a_two_platform_build_pushes_an_index_whose_arm64_image_runs_under_emulation() {
    let reg = Registry::start().unwrap();
    seed_multiarch(&reg, "base:multi", "amd64,arm64");
    let srv = Server::start(&reg, &[]).unwrap();
    let ctx = context(&reg, "base:multi");

    let out = build(
        &srv,
        ctx.path(),
        &["-t", "app:1", "--platform", "linux/amd64,linux/arm64"],
    );
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("building for linux/amd64, linux/arm64 into one image index"),
        "{text}"
    );
    let id = built_id(&out, "Queued a build with ID: ");

    // The registry holds an index with one image per architecture.
    let idx = index(&reg, "app", "1");
    let mut got: Vec<String> = arches(&idx).into_iter().map(|(a, _)| a).collect();
    got.sort();
    assert_eq!(got, ["amd64", "arm64"], "{idx}");

    let run = srv.run(&id).unwrap();
    check_record(&reg, &run, "1");
    // The base was pulled per platform, each digest recorded.
    let bases = run["baseImages"].as_array().unwrap();
    let platforms: Vec<&str> = bases
        .iter()
        .map(|b| b["platform"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{run}");
    assert_ne!(bases[0]["digest"], bases[1]["digest"], "{run}");

    // Each image was built for its architecture (the arm64 RUN step ran
    // under emulation) and runs as it.
    let image = format!("{}/app:1", reg.host);
    assert_eq!(run_in(&reg, &image, "arm64", &["uname", "-m"]), "aarch64");
    assert_eq!(
        run_in(&reg, &image, "arm64", &["cat", "/built-on"]),
        "aarch64"
    );
    assert_eq!(
        run_in(&reg, &image, "amd64", &["cat", "/built-on"]),
        "x86_64"
    );
}

#[test]
fn a_base_without_the_platform_fails_the_build_and_pushes_nothing() {
    let reg = Registry::start().unwrap();
    seed_multiarch(&reg, "base:amd64only", "amd64");
    let srv = Server::start(&reg, &[]).unwrap();
    let ctx = context(&reg, "base:amd64only");

    let out = build(
        &srv,
        ctx.path(),
        &["-t", "app:bad", "--platform", "linux/amd64,linux/arm64"],
    );
    assert!(!out.status.success(), "{}", show(&out));
    let all = show(&out);
    let why = format!(
        "base image {}/base:amd64only has no linux/arm64 image",
        reg.host
    );
    assert!(all.contains(&why), "{all}");
    assert!(reg.digest("app", "bad").is_none(), "nothing may be pushed");

    // A single-platform base (no index) is refused the same way: buildah
    // would take its amd64 image for arm64.
    reg.seed("base:1", "single").unwrap();
    let ctx = context(&reg, "base:1");
    let out = build(
        &srv,
        ctx.path(),
        &["-t", "app:bad2", "--platform", "linux/arm64,linux/amd64"],
    );
    assert!(!out.status.success(), "{}", show(&out));
    let why = format!(
        "base image {}/base:1 has no linux/arm64 image (the registry gave linux/amd64)",
        reg.host
    );
    assert!(show(&out).contains(&why), "{}", show(&out));
    assert!(reg.digest("app", "bad2").is_none(), "nothing may be pushed");
}

#[test]
fn bad_platform_lists_are_refused_before_anything_runs() {
    let reg = Registry::start().unwrap();
    let srv = Server::start(&reg, &[]).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write_files(ctx.path(), &[("Dockerfile", "FROM scratch\n")]);
    for (platform, why) in [
        ("linux/amd64,,", "entry 2 is empty"),
        ("windows/amd64", "crtask builds linux images only"),
        ("linux/foo", "unknown architecture 'foo'"),
    ] {
        let out = build(&srv, ctx.path(), &["-t", "app:x", "--platform", platform]);
        assert!(!out.status.success(), "{platform}: {}", show(&out));
        assert!(show(&out).contains(why), "{platform}: {}", show(&out));
        let out = srv.cli(&[
            "task",
            "create",
            "--name",
            "bad",
            "-c",
            "/dev/null",
            "--platform",
            platform,
        ]);
        assert!(!out.status.success(), "{platform}: {}", show(&out));
        assert!(show(&out).contains(why), "{platform}: {}", show(&out));
    }
    let runs = srv.cli_json(&["task", "list-runs"]).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(0), "{runs}");
}

#[test]
fn tasks_and_task_file_build_steps_build_indexes_too() {
    let reg = Registry::start().unwrap();
    seed_multiarch(&reg, "base:multi", "amd64,arm64");
    let srv = Server::start(&reg, &[]).unwrap();
    let ctx = context(&reg, "base:multi");

    // A task with --platform.
    let out = srv.cli(&[
        "task",
        "create",
        "--name",
        "multi",
        "-c",
        ctx.path().to_str().unwrap(),
        "-t",
        "app:task",
        "--platform",
        "linux/amd64,linux/arm64",
        "--commit-trigger-enabled",
        "false",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let out = srv.cli(&["task", "run", "--name", "multi"]);
    assert!(out.status.success(), "{}", show(&out));
    let id = built_id(&out, "Queued a run with ID: ");
    check_record(&reg, &srv.run(&id).unwrap(), "task");

    // A task file's build step with ACR's --platform, then its push step.
    write_files(
        ctx.path(),
        &[(
            "acr-task.yaml",
            "version: v1.1.0\nsteps:\n  - build: -t $Registry/app:steps --platform linux/amd64,linux/arm64 .\n  - push: [\"$Registry/app:steps\"]\n",
        )],
    );
    let out = srv.cli(&["run", "-f", "acr-task.yaml", ctx.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    let id = built_id(&out, "Queued a run with ID: ");
    check_record(&reg, &srv.run(&id).unwrap(), "steps");
    let image = format!("{}/app:steps", reg.host);
    assert_eq!(
        run_in(&reg, &image, "arm64", &["cat", "/built-on"]),
        "aarch64"
    );
}
