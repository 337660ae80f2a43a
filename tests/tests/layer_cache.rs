//! The layer cache end to end (real crtask, buildah and registry): a
//! rebuild after a one-file change reuses the dependency layer, `--no-cache`
//! and a new base digest rebuild, and caching leaves runs isolated.

use crtask_tests::{read_from_image, show, write_files, Registry, Server};
use std::path::Path;

/// The dependency step writes a value unique to the moment it ran, so a
/// reused layer is seen in the image's content, not only in the log.
fn dockerfile(reg: &Registry) -> String {
    format!(
        "FROM {}/base:1\nRUN echo deps-$(date +%s%N) > /deps\nCOPY . /src/\n",
        reg.host
    )
}

/// Runs `crtask build` and returns (run id, streamed text).
fn build(srv: &Server, ctx: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let out = srv.cli(&args);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let id = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Queued a build with ID: "))
        .unwrap_or_else(|| panic!("no run id: {text}"))
        .to_string();
    (id, text)
}

/// The `cache` of the run's build step in its record.
fn cache_use(srv: &Server, id: &str) -> (u64, u64) {
    let run = srv.run(id).unwrap();
    let steps = run["steps"].as_array().cloned().unwrap_or_default();
    let c = steps
        .iter()
        .find_map(|s| s.get("cache").cloned())
        .unwrap_or_else(|| panic!("no cache use recorded: {run}"));
    (c["reused"].as_u64().unwrap(), c["built"].as_u64().unwrap())
}

fn file(reg: &Registry, tag: &str, path: &str) -> String {
    read_from_image(&format!("{}/app:{tag}", reg.host), &reg.host, path)
        .unwrap()
        .unwrap_or_else(|| panic!("{path} missing from app:{tag}"))
}

/// A registry with `base:1`, a server, and a context with the Dockerfile.
fn stack() -> (Registry, Server, tempfile::TempDir) {
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "v1").unwrap();
    let srv = Server::start(&reg, &[]).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write_files(
        ctx.path(),
        &[("Dockerfile", &dockerfile(&reg)), ("a.txt", "one\n")],
    );
    (reg, srv, ctx)
}

#[test]
fn rebuilds_reuse_layers_until_no_cache_or_a_new_base() {
    let (reg, srv, ctx) = stack();

    let (id1, text1) = build(&srv, ctx.path(), &["-t", "app:1"]);
    assert!(
        text1.contains(&format!("layer cache {}/app/cache", reg.host)),
        "{text1}"
    );
    assert_eq!(cache_use(&srv, &id1), (0, 2));

    // A one-file change: the dependency layer comes from the cache.
    write_files(ctx.path(), &[("a.txt", "two\n")]);
    let (id2, text2) = build(&srv, ctx.path(), &["-t", "app:2"]);
    assert!(
        text2.contains("layer cache: 1 step(s) reused, 1 built"),
        "{text2}"
    );
    assert_eq!(cache_use(&srv, &id2), (1, 1));
    assert_eq!(file(&reg, "2", "/deps"), file(&reg, "1", "/deps"));
    assert_eq!(file(&reg, "2", "/src/a.txt"), "two\n");

    // --no-cache builds every step again.
    let (id3, text3) = build(&srv, ctx.path(), &["--no-cache", "-t", "app:3"]);
    assert!(text3.contains("--no-cache, every step is built"), "{text3}");
    assert_eq!(cache_use(&srv, &id3), (0, 2));
    assert_ne!(file(&reg, "3", "/deps"), file(&reg, "2", "/deps"));

    // A new digest behind the same base tag: nothing after FROM is reused.
    reg.seed("base:1", "v2").unwrap();
    let (id4, _) = build(&srv, ctx.path(), &["-t", "app:4"]);
    assert_eq!(cache_use(&srv, &id4), (0, 2));
    assert_ne!(file(&reg, "4", "/deps"), file(&reg, "3", "/deps"));
    assert_eq!(file(&reg, "4", "/etc/base-release"), "v2\n");

    // And with the new base cached, the next rebuild reuses again.
    write_files(ctx.path(), &[("a.txt", "three\n")]);
    let (id5, _) = build(&srv, ctx.path(), &["-t", "app:5"]);
    assert_eq!(cache_use(&srv, &id5), (1, 1));
    assert_eq!(file(&reg, "5", "/src/a.txt"), "three\n");
    assert_eq!(file(&reg, "5", "/deps"), file(&reg, "4", "/deps"));
}

#[test]
fn cached_runs_still_cannot_see_each_others_images() {
    let (reg, srv, ctx) = stack();
    // Built and tagged, not pushed: only that run's store held it.
    build(&srv, ctx.path(), &["--no-push", "-t", "hidden:1"]);
    let other = tempfile::tempdir().unwrap();
    write_files(
        other.path(),
        &[("Dockerfile", &format!("FROM {}/hidden:1\n", reg.host))],
    );
    let out = srv.cli(&["build", "-t", "app:x", other.path().to_str().unwrap()]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hidden:1"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_bad_cache_repository_is_refused_before_anything_runs() {
    let reg = Registry::start().unwrap();
    let srv = Server::start(&reg, &[]).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    write_files(ctx.path(), &[("Dockerfile", "FROM scratch\n")]);
    let out = srv.cli(&[
        "build",
        "--cache-repo",
        "app:cache",
        "-t",
        "app:1",
        ctx.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cache repository 'app:cache' is not valid"),
        "{err}"
    );
    let runs = srv.cli_json(&["task", "list-runs"]).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(0), "{runs}");
}

/// The task-file `build` step: cached by default, `cache: disabled` and
/// `--no-cache` honoured, each step's use in the run's record.
#[test]
fn task_file_build_steps_honour_cache_settings() {
    let (_reg, srv, ctx) = stack();
    write_files(
        ctx.path(),
        &[(
            "acr-task.yaml",
            "version: v1.1.0\nsteps:\n  - id: warm\n    build: -t $Registry/app:warm .\n  - id: cached\n    build: -t $Registry/app:cached .\n    when: [warm]\n  - id: off\n    build: -t $Registry/app:off .\n    cache: disabled\n    when: [cached]\n  - id: fresh\n    build: --no-cache -t $Registry/app:fresh .\n    when: [off]\n",
        )],
    );
    let out = srv.cli(&["run", "-f", "acr-task.yaml", ctx.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let id = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Queued a run with ID: "))
        .unwrap_or_else(|| panic!("no run id: {text}"))
        .to_string();
    assert!(text.contains("layer cache disabled"), "{text}");
    let run = srv.run(&id).unwrap();
    let used = |step: &str| {
        run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == step)
            .map(|s| s["cache"].clone())
            .unwrap()
    };
    assert_eq!(used("warm"), serde_json::json!({"reused": 0, "built": 2}));
    assert_eq!(used("cached"), serde_json::json!({"reused": 2, "built": 0}));
    assert!(used("off").is_null(), "{run}");
    assert_eq!(used("fresh"), serde_json::json!({"reused": 0, "built": 2}));
}

/// Parallel builds writing one cache repository all succeed: writers take
/// turns (`crtask_executor::cache_lock`), where at the same time one of
/// them could be told "manifest blob unknown" by the registry and fail.
#[test]
fn parallel_builds_writing_one_cache_all_succeed() {
    let (reg, srv, _ctx) = stack();
    let contexts: Vec<tempfile::TempDir> = (0..4)
        .map(|i| {
            let d = tempfile::tempdir().unwrap();
            write_files(
                d.path(),
                &[
                    (
                        "Dockerfile",
                        &format!(
                            "FROM {}/base:1\nRUN echo one-{i} > /one\nRUN echo two-{i} > /two\nCOPY . /src/\n",
                            reg.host
                        ),
                    ),
                    ("a.txt", &format!("ctx {i}\n")),
                ],
            );
            d
        })
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = contexts
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let srv = &srv;
                s.spawn(move || build(srv, d.path(), &["-t", &format!("app:p{i}")]))
            })
            .collect();
        for h in handles {
            h.join().expect("a build failed");
        }
    });
    for i in 0..4 {
        assert_eq!(file(&reg, &format!("p{i}"), "/two"), format!("two-{i}\n"));
    }
}
