//! Runs you can trust: every line a step prints reaches the stored log and
//! the followed stream, in order, on a loaded machine; a run sees only the
//! images it pulls and builds; no container of a finished run remains.

use crtask_tests::{
    own_sleep, processes, run_followed, show, write_files, CpuLoad, Registry, Server,
};
use std::process::Command;

fn start(workers: &str) -> (Registry, Server) {
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "v1").unwrap();
    let srv = Server::start(&reg, &["--workers", workers]).unwrap();
    (reg, srv)
}

fn stored_log(srv: &Server, id: &str) -> String {
    let out = srv.cli(&["task", "logs", "--run-id", id]);
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const LINES: usize = 150;
const STEPS: [&str; 4] = ["s1", "s2", "s3", "s4"];

/// The numbers of `[step] <stream>-<step>-N` lines, in log order.
fn numbers(log: &str, step: &str, stream: &str) -> Vec<usize> {
    let prefix = format!("[{step}] {stream}-{step}-");
    log.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|n| n.parse().unwrap_or(0))
        .collect()
}

fn assert_every_line(log: &str, what: &str) {
    let want: Vec<usize> = (1..=LINES).collect();
    for step in STEPS {
        for stream in ["out", "err"] {
            assert_eq!(
                numbers(log, step, stream),
                want,
                "{what}: {stream} of step {step} lost, repeated or reordered lines:\n{log}"
            );
        }
    }
}

#[test]
fn every_line_of_parallel_runs_and_steps_reaches_the_log_and_the_stream_under_load() {
    let (reg, srv) = start("3");
    let ctx = tempfile::tempdir().unwrap();
    let img = format!("{}/base:1", reg.host);
    let mut file = String::from("version: v1.1.0\nsteps:\n");
    for s in STEPS {
        // Each line is its own write, stdout and stderr interleaved; the
        // last line ends the step, where buildah's own relay dropped output.
        file.push_str(&format!(
            "  - id: {s}\n    cmd: {img} sh -c 'i=1; while [ $i -le {LINES} ]; do echo out-{s}-$i; echo err-{s}-$i >&2; i=$((i+1)); done'\n    when: [\"-\"]\n"
        ));
    }
    write_files(ctx.path(), &[("stress.yaml", &file)]);
    let _load = CpuLoad::start(6);
    let results: Vec<(String, std::process::Output, String)> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..6)
            .map(|_| sc.spawn(|| run_followed(&srv, ctx.path(), "stress.yaml")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (streamed, out, id) in &results {
        assert!(out.status.success(), "{}", show(out));
        assert_every_line(streamed, &format!("followed stream of run {id}"));
        assert_every_line(&stored_log(&srv, id), &format!("stored log of run {id}"));
    }
}

/// The run's image store, of a server started by [`start`].
fn run_stores(srv: &Server) -> Vec<String> {
    std::fs::read_dir(srv.data.join("storage").join("runs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// buildah on the `vfs` store whose `root` and `runroot` are in `dir`.
fn buildah_on(dir: &std::path::Path) -> Command {
    let mut c = Command::new("buildah");
    c.args(["--storage-driver", "vfs", "--root"])
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("runroot"));
    c
}

/// `buildah containers` of the server's shared store.
fn shared_containers(srv: &Server) -> String {
    let out = buildah_on(&srv.data.join("storage"))
        .args(["containers", "--all", "--noheading"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_second_run_never_sees_an_image_only_a_first_run_built() {
    let (reg, srv) = start("1");
    let ctx = tempfile::tempdir().unwrap();
    let dockerfile = format!("FROM {}/base:1\nRUN echo private > /which\n", reg.host);
    let first = "version: v1.1.0\nsteps:\n  - build: -t $Registry/private:1 -f Dockerfile .\n  - cmd: $Registry/private:1 cat /which\n";
    let second = "version: v1.1.0\nsteps:\n  - build: -t $Registry/other:1 -f Dockerfile .\n  - cmd: $Registry/private:1 cat /which\n";
    write_files(
        ctx.path(),
        &[
            ("Dockerfile", &dockerfile),
            ("first.yaml", first),
            ("second.yaml", second),
        ],
    );
    // The first run builds private:1 (never pushed) and uses it.
    let (text, out, _) = run_followed(&srv, ctx.path(), "first.yaml");
    assert!(out.status.success(), "{}", show(&out));
    assert!(text.contains("] private"), "{text}");
    // The second cannot: the registry has no such image, and the first
    // run's image store is gone. Its build lists only its own tag.
    let (text, out, _) = run_followed(&srv, ctx.path(), "second.yaml");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text.contains("cannot start") && text.contains("private:1"),
        "{text}"
    );
    assert!(!text.contains("] private\n"), "{text}");
    let tagged: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Successfully tagged"))
        .collect();
    assert!(
        !tagged.is_empty() && tagged.iter().all(|l| !l.contains("private")),
        "{text}"
    );
    assert!(run_stores(&srv).is_empty(), "{:?}", run_stores(&srv));
}

#[test]
fn no_container_of_a_finished_run_remains_kept_failed_or_timed_out() {
    let (reg, srv) = start("2");
    let ctx = tempfile::tempdir().unwrap();
    let img = format!("{}/base:1", reg.host);
    let sleep = own_sleep(3596);
    let kept = format!(
        "steps:\n  - cmd: {img} echo kept\n    keep: true\n  - cmd: {img} {sleep}\n    detach: true\n  - cmd: {img} echo plain\n"
    );
    let failing =
        format!("steps:\n  - cmd: {img} echo kept\n    keep: true\n  - cmd: {img} false\n");
    let slow =
        format!("steps:\n  - cmd: {img} echo kept\n    keep: true\n  - cmd: {img} sleep 40\n");
    write_files(
        ctx.path(),
        &[
            ("kept.yaml", &kept),
            ("failing.yaml", &failing),
            ("slow.yaml", &slow),
        ],
    );
    let (text, out, _) = run_followed(&srv, ctx.path(), "kept.yaml");
    assert!(out.status.success(), "{}", show(&out));
    assert!(text.contains("kept") && text.contains("plain"), "{text}");
    let (_, out, _) = run_followed(&srv, ctx.path(), "failing.yaml");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let out = srv.cli(&[
        "run",
        "--timeout",
        "8",
        "-f",
        "slow.yaml",
        ctx.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(run_stores(&srv).is_empty(), "{:?}", run_stores(&srv));
    assert_eq!(shared_containers(&srv).trim(), "");
    assert_eq!(
        processes(&sleep),
        "",
        "a detached container outlived its run"
    );
}

/// `buildah images` of the store `cmd` images are pulled into, shared by
/// runs (`crtask_executor::pull_cache`).
fn pulled_images(srv: &Server) -> String {
    let out = buildah_on(&srv.data.join("storage").join("pulls"))
        .args([
            "images",
            "--all",
            "--noheading",
            "--format",
            "{{.Name}}:{{.Tag}} {{.ID}}",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn cmd_images_shared_between_runs_are_pulled_again_when_they_move_and_never_hold_a_build() {
    let (reg, srv) = start("2");
    let ctx = tempfile::tempdir().unwrap();
    let img = format!("{}/base:1", reg.host);
    let dockerfile = format!("FROM {img}\nRUN echo built > /which\n");
    // Two steps at once on one image (one pull), a build, and a step on the build.
    let file = format!(
        "version: v1.1.0\nsteps:\n  - id: a\n    cmd: {img} cat /etc/base-release\n    when: [\"-\"]\n  - id: b\n    cmd: {img} cat /etc/base-release\n    when: [\"-\"]\n  - id: build\n    build: -t $Registry/built:1 -f Dockerfile .\n    when: [a, b]\n  - id: use\n    cmd: $Registry/built:1 cat /which\n"
    );
    write_files(
        ctx.path(),
        &[("Dockerfile", &dockerfile), ("f.yaml", &file)],
    );
    let (text, out, _) = run_followed(&srv, ctx.path(), "f.yaml");
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text.matches("] v1\n").count(), 2, "{text}");
    assert!(text.contains("[use] built"), "{text}");
    // The shared store has the pulled image only, never the run's build.
    let images = pulled_images(&srv);
    assert!(images.contains("/base:1 "), "{images}");
    assert!(!images.contains("built"), "{images}");

    // Unchanged, the next run asks the registry (HEAD) and pulls nothing.
    let (gets, heads) = (
        reg.manifest_gets("base", "1"),
        reg.manifest_heads("base", "1"),
    );
    let (text, out, _) = run_followed(&srv, ctx.path(), "f.yaml");
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text.matches("] v1\n").count(), 2, "{text}");
    assert!(reg.manifest_heads("base", "1") > heads);
    // The build step pulls its base into the run's own store (one GET).
    assert!(reg.manifest_gets("base", "1") <= gets + 1, "{gets}");

    // The tag moves: the next run pulls it again and sees the new content.
    reg.seed("base:1", "v2").unwrap();
    let (text, out, _) = run_followed(&srv, ctx.path(), "f.yaml");
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(text.matches("] v2\n").count(), 2, "{text}");
    assert!(!text.contains("] v1\n"), "{text}");
    // Once no run is in progress the old copy goes (in the background).
    let mut images = pulled_images(&srv);
    for _ in 0..100 {
        if images.lines().count() == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        images = pulled_images(&srv);
    }
    assert_eq!(images.lines().count(), 1, "{images}");
    assert!(run_stores(&srv).is_empty(), "{:?}", run_stores(&srv));

    // An image the registry does not have fails the step with its reason.
    let gone = format!("steps:\n  - cmd: {}/base:missing true\n", reg.host);
    write_files(ctx.path(), &[("gone.yaml", &gone)]);
    let (text, out, _) = run_followed(&srv, ctx.path(), "gone.yaml");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text.contains("cannot start") && text.contains("base:missing"),
        "{text}"
    );
}
