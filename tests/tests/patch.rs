//! OS patching end to end (`crtask patch`): a Debian image built here with
//! debootstrap and dpkg, a local apt repository with newer packages, the
//! real crtask server, buildah and the distribution registry.

use crtask_tests::debian::{self, AptRepo, Buildah, ImageSpec};
use crtask_tests::{read_from_image, show, write_files, Registry, Server};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("patch-fixtures")
}

/// The registry, the server, the apt repository (crtask-demo and
/// crtask-other at 1.1) and `demo:1` holding both at 1.0.
struct Stack {
    reg: Registry,
    srv: Server,
    repo: AptRepo,
    buildah: Buildah,
}

fn stack(tags: &[&str], server_args: &[&str]) -> Stack {
    let rootfs = debian::rootfs_tarball(&cache_dir()).unwrap_or_else(|e| panic!("{e:#}"));
    let reg = Registry::start().unwrap();
    let repo = AptRepo::start().unwrap();
    let old = tempfile::tempdir().unwrap();
    let debs: Vec<PathBuf> = ["crtask-demo", "crtask-other"]
        .iter()
        .map(|n| debian::build_deb(old.path(), n, "1.0").unwrap())
        .collect();
    repo.add("crtask-demo", "1.1").unwrap();
    repo.add("crtask-other", "1.1").unwrap();
    let buildah = Buildah::new(&reg.host).unwrap();
    for tag in tags {
        debian::push_debian_image(
            &buildah,
            &rootfs,
            &ImageSpec {
                image: &format!("{}/demo:{tag}", reg.host),
                source: &repo.source_line(),
                debs: &debs,
            },
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    }
    let srv = Server::start(&reg, server_args).unwrap();
    Stack {
        reg,
        srv,
        repo,
        buildah,
    }
}

/// Runs `crtask patch ARGS`, returns the exit code and the run's record.
fn patch(srv: &Server, args: &[&str]) -> (i32, serde_json::Value) {
    let mut a = vec!["patch"];
    a.extend(args);
    let out = srv.cli(&a);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let id = stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Queued a patch with ID: "))
        .unwrap_or_else(|| panic!("no run id: {}", show(&out)))
        .to_string();
    let run = srv.run(&id).unwrap();
    (out.status.code().unwrap_or(-1), run)
}

fn changes(run: &serde_json::Value) -> Vec<(String, String, String)> {
    run["patch"]["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["oldVersion"].as_str().unwrap_or("-").to_string(),
                p["newVersion"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

fn ch(n: &str, a: &str, b: &str) -> (String, String, String) {
    (n.into(), a.into(), b.into())
}

#[test]
fn patches_one_layer_then_nothing_new_then_the_next_tag() {
    let s = stack(&["1"], &[]);
    let host = s.reg.host.clone();
    let (orig_manifest, orig_config) = debian::manifest_and_config(&host, "demo", "1").unwrap();
    let orig_layers = debian::layers(&orig_manifest);
    assert_eq!(orig_layers.len(), 2, "{orig_manifest}");

    // A dry run says what would change and pushes nothing.
    let (code, run) = patch(&s.srv, &["demo:1", "--dry-run"]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["patch"]["outcome"], "DryRun", "{run}");
    assert_eq!(run["patch"]["patchedImage"], format!("{host}/demo:1-1"));
    assert_eq!(
        changes(&run),
        [
            ch("crtask-demo", "1.0", "1.1"),
            ch("crtask-other", "1.0", "1.1")
        ]
    );
    assert_eq!(debian::tags(&host, "demo").unwrap(), ["1"]);

    // The patch: both packages updated, one layer more, pushed as 1-1.
    let (code, run) = patch(&s.srv, &["demo:1"]);
    assert_eq!(code, 0, "{run}\n{}", s.srv.log());
    assert_eq!(run["runType"], "Patch");
    assert_eq!(run["status"], "Succeeded");
    assert_eq!(run["trigger"]["type"], "Manual");
    assert_eq!(run["patch"]["outcome"], "Patched", "{run}");
    assert_eq!(run["patch"]["os"], "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(run["patch"]["packageManager"], "apt");
    assert_eq!(
        changes(&run),
        [
            ch("crtask-demo", "1.0", "1.1"),
            ch("crtask-other", "1.0", "1.1")
        ]
    );
    assert_eq!(run["outputImages"][0]["tag"], "1-1", "{run}");
    assert_eq!(debian::tags(&host, "demo").unwrap(), ["1", "1-1"]);

    let (manifest, config) = debian::manifest_and_config(&host, "demo", "1-1").unwrap();
    let layers = debian::layers(&manifest);
    assert_eq!(layers.len(), 3, "exactly one new layer: {manifest}");
    assert_eq!(
        layers[..2],
        orig_layers[..],
        "the original layers are unchanged"
    );
    assert_eq!(
        run["outputImages"][0]["digest"]
            .as_str()
            .map(|d| d.starts_with("sha256:")),
        Some(true)
    );
    // The config is the original one: entrypoint, command, env, user, labels.
    for k in ["Entrypoint", "Cmd", "Env", "User", "Labels", "WorkingDir"] {
        assert_eq!(config["config"][k], orig_config["config"][k], "config {k}");
    }
    let history = config["history"].as_array().unwrap();
    assert_eq!(
        history.len(),
        orig_config["history"].as_array().unwrap().len() + 1
    );
    let last = history.last().unwrap()["created_by"].as_str().unwrap_or("");
    assert!(
        last.starts_with("crtask patch: apt update of 2 package(s)"),
        "{last}"
    );
    // No apt lists or downloaded packages in the patch layer.
    let paths = debian::layer_paths(&host, "demo", &layers[2]).unwrap();
    assert!(
        paths
            .iter()
            .any(|p| p.contains("usr/share/crtask-demo/version")),
        "{paths:?}"
    );
    let leftovers: Vec<&String> = paths
        .iter()
        .filter(|p| {
            (p.contains("var/lib/apt/lists/") && p.ends_with("Packages")) || p.ends_with(".deb")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The patched image runs, with its own entrypoint and command.
    let mut argv: Vec<String> = Vec::new();
    for k in ["Entrypoint", "Cmd"] {
        argv.extend(
            config["config"][k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
    }
    let ctr = s
        .buildah
        .run(&["from", "--quiet", &format!("{host}/demo:1-1")])
        .unwrap();
    let mut a = vec!["run", "--user", "nobody", ctr.as_str(), "--"];
    a.extend(argv.iter().map(String::as_str));
    assert_eq!(s.buildah.run(&a).unwrap(), "1.1");

    // Nothing new: nothing pushed.
    let (code, run) = patch(&s.srv, &["demo:1"]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["patch"]["outcome"], "UpToDate", "{run}");
    assert_eq!(run["patch"]["previousPatch"], format!("{host}/demo:1-1"));
    assert!(run["outputImages"].as_array().unwrap().is_empty());
    assert_eq!(debian::tags(&host, "demo").unwrap(), ["1", "1-1"]);

    // A newer package: the next patch of the original tag is 1-2.
    s.repo.add("crtask-demo", "1.2").unwrap();
    let (code, run) = patch(&s.srv, &["demo:1"]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["patch"]["outcome"], "Patched", "{run}");
    assert_eq!(
        changes(&run),
        [
            ch("crtask-demo", "1.0", "1.2"),
            ch("crtask-other", "1.0", "1.1")
        ]
    );
    assert_eq!(debian::tags(&host, "demo").unwrap(), ["1", "1-1", "1-2"]);
    let (manifest, _) = debian::manifest_and_config(&host, "demo", "1-2").unwrap();
    let layers = debian::layers(&manifest);
    assert_eq!(
        layers.len(),
        3,
        "one layer over the original ones, not over 1-1"
    );
    assert_eq!(layers[..2], orig_layers[..]);
    assert_eq!(
        read_from_image(
            &format!("{host}/demo:1-2"),
            &host,
            "/usr/share/crtask-demo/version"
        )
        .unwrap()
        .as_deref(),
        Some("1.2\n")
    );
}

#[test]
fn a_report_updates_only_its_packages_and_bad_reports_change_nothing() {
    let s = stack(&["2"], &[]);
    let host = s.reg.host.clone();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("trivy.json");
    std::fs::write(
        &report,
        r#"{"SchemaVersion": 2, "ArtifactName": "demo:2",
            "Results": [{"Target": "demo:2 (debian 12)", "Class": "os-pkgs", "Type": "debian",
              "Vulnerabilities": [
                {"VulnerabilityID": "CVE-2026-0001", "PkgName": "crtask-demo",
                 "InstalledVersion": "1.0", "FixedVersion": "1.1", "Severity": "HIGH"}]}]}"#,
    )
    .unwrap();
    let (code, run) = patch(
        &s.srv,
        &[
            "demo:2",
            "--report",
            report.to_str().unwrap(),
            "--tag-convention",
            "floating",
        ],
    );
    assert_eq!(code, 0, "{run}\n{}", s.srv.log());
    assert_eq!(run["patch"]["outcome"], "Patched", "{run}");
    assert_eq!(
        run["patch"]["packages"],
        serde_json::json!([
            {"name": "crtask-demo", "oldVersion": "1.0", "newVersion": "1.1", "fixedVersion": "1.1"}
        ])
    );
    assert_eq!(debian::tags(&host, "demo").unwrap(), ["2", "2-patched"]);
    let image = format!("{host}/demo:2-patched");
    assert_eq!(
        read_from_image(&image, &host, "/usr/share/crtask-demo/version")
            .unwrap()
            .as_deref(),
        Some("1.1\n")
    );
    assert_eq!(
        read_from_image(&image, &host, "/usr/share/crtask-other/version")
            .unwrap()
            .as_deref(),
        Some("1.0\n")
    );

    // Reports that are not Trivy's, or name no package to fix: refused
    // before anything is queued.
    for (text, why) in [
        ("{\"Results\": []}", "no SchemaVersion"),
        ("not json", "not a Trivy JSON report"),
        (
            "{\"SchemaVersion\": 2, \"Results\": []}",
            "lists no OS package",
        ),
        (
            r#"{"SchemaVersion":2,"Results":[{"Class":"os-pkgs","Vulnerabilities":[{"PkgName":"-o Dir=/x","FixedVersion":"1"}]}]}"#,
            "not a package name",
        ),
    ] {
        std::fs::write(&report, text).unwrap();
        let out = s
            .srv
            .cli(&["patch", "demo:2", "--report", report.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{why}: {err}");
    }
    let bad = s
        .srv
        .cli(&["patch", "demo:2", "--tag-convention", "weekly"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("unknown tag convention 'weekly'"),
        "{}",
        show(&bad)
    );
    let runs = s.srv.cli_json(&["task", "list-runs"]).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    // The API refuses the same bodies with a 400.
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/patches", s.srv.api))
        .json(&serde_json::json!({"image": "demo:2", "report": {"Results": []}}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

#[test]
fn images_crtask_cannot_patch_are_refused_with_the_reason() {
    let reg = Registry::start().unwrap();
    // No /etc/os-release at all.
    reg.seed("plain:1", "v1").unwrap();
    // An OS release but no package manager (a distroless image).
    let b = Buildah::new(&reg.host).unwrap();
    let ctr = b.run(&["from", "scratch"]).unwrap();
    let mnt = PathBuf::from(b.run(&["mount", &ctr]).unwrap());
    write_files(
        &mnt,
        &[
            (
                "usr/lib/os-release",
                "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
            ),
            (
                "var/lib/dpkg/status.d/base",
                "Package: base-files\nVersion: 12.4\n",
            ),
        ],
    );
    std::fs::create_dir_all(mnt.join("etc")).unwrap();
    std::os::unix::fs::symlink("../usr/lib/os-release", mnt.join("etc/os-release")).unwrap();
    let image = format!("{}/distroless:1", reg.host);
    b.run(&["commit", "--quiet", &ctr, &image]).unwrap();
    b.run(&["push", "--quiet", &image, &format!("docker://{image}")])
        .unwrap();
    let srv = Server::start(&reg, &[]).unwrap();

    for (img, why) in [
        ("plain:1", "has no /etc/os-release"),
        (
            "distroless:1",
            "Debian GNU/Linux 12 (bookworm) has no package manager in the image (apt not found)",
        ),
        ("missing:1", "cannot pull"),
    ] {
        let (code, run) = patch(&srv, &[img]);
        assert_eq!(code, 1, "{run}");
        assert_eq!(run["status"], "Failed", "{run}");
        let err = run["error"].as_str().unwrap_or("");
        assert!(err.contains(why), "{img}: {why}: {err}");
    }
    let t = debian::tags(&reg.host, "distroless").unwrap();
    assert_eq!(t, ["1"]);
}

#[test]
fn a_task_built_on_the_patched_tag_rebuilds_once() {
    let s = stack(&["3"], &["--settle-window", "1"]);
    let host = s.reg.host.clone();
    let app = tempfile::tempdir().unwrap();
    write_files(
        app.path(),
        &[(
            "Dockerfile",
            &format!("FROM {host}/demo:3-patched\nUSER root\nRUN cat /usr/share/crtask-demo/version > /built-on\n"),
        )],
    );
    let created = s.srv.cli(&[
        "task",
        "create",
        "--name",
        "app",
        "-c",
        app.path().to_str().unwrap(),
        "-t",
        "app:{{.Run.ID}}",
        "--commit-trigger-enabled",
        "false",
    ]);
    assert!(created.status.success(), "{}", show(&created));
    let (code, run) = patch(&s.srv, &["demo:3", "--tag-convention", "floating"]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["patch"]["outcome"], "Patched");

    let start = Instant::now();
    let runs = loop {
        let runs = s
            .srv
            .cli_json(&["task", "list-runs", "--name", "app"])
            .unwrap();
        let runs = runs.as_array().unwrap().clone();
        if !runs.is_empty()
            && runs
                .iter()
                .all(|r| !matches!(r["status"].as_str(), Some("Queued" | "Running")))
        {
            break runs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no rebuild: {runs:?}\n{}",
            s.srv.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(runs.len(), 1, "one rebuild: {runs:?}");
    assert_eq!(runs[0]["status"], "Succeeded", "{}", runs[0]);
    assert_eq!(runs[0]["trigger"]["type"], "ImageUpdate");
    assert_eq!(
        runs[0]["trigger"]["image"],
        format!("{host}/demo:3-patched")
    );
    assert_eq!(
        runs[0]["trigger"]["cause"],
        format!(
            "pushed by run {} of a patch",
            run["runId"].as_str().unwrap()
        )
    );
    let built = format!("{host}/app:{}", runs[0]["runId"].as_str().unwrap());
    assert_eq!(
        read_from_image(&built, &host, "/built-on")
            .unwrap()
            .as_deref(),
        Some("1.1\n")
    );
}

#[test]
fn continuous_patching_config_is_set_shown_and_deleted() {
    let reg = Registry::start().unwrap();
    let srv = Server::start(&reg, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("continuous-patch.json");
    std::fs::write(
        &file,
        r#"{"version": "v1", "tag-convention": "floating",
            "repositories": [{"repository": "demo", "tags": ["1*", "2"], "enabled": true},
                             {"repository": "old", "tags": ["*"], "enabled": false}]}"#,
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let shown = srv
        .cli_json(&["patch", "config", "set", "-f", f, "--schedule", "7d"])
        .unwrap();
    assert_eq!(shown["schedule"], "7d");
    assert_eq!(shown["config"]["tag-convention"], "floating");
    let shown = srv.cli_json(&["patch", "config", "show"]).unwrap();
    assert_eq!(shown["config"]["repositories"][1]["enabled"], false);
    assert!(shown["nextRun"]
        .as_str()
        .is_some_and(|t| t > shown["createTime"].as_str().unwrap()));

    // Bad schedules and files are refused and change nothing.
    for (args, why) in [
        (vec!["--schedule", "31d"], "not 1d to 30d"),
        (vec!["--schedule", "12h"], "not 1d to 30d"),
    ] {
        let mut a = vec!["patch", "config", "set", "-f", f];
        a.extend(args);
        let out = srv.cli(&a);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(why),
            "{}",
            show(&out)
        );
    }
    let resp = reqwest::blocking::Client::new()
        .put(format!("{}/api/v1/patch-config", srv.api))
        .json(
            &serde_json::json!({"config": {"version": "v2", "repositories": []}, "schedule": "1d"}),
        )
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp
        .text()
        .unwrap()
        .contains("version 'v2' is not supported"));
    assert_eq!(
        srv.cli_json(&["patch", "config", "show"]).unwrap()["schedule"],
        "7d"
    );

    let out = srv.cli(&["patch", "config", "delete"]);
    assert!(out.status.success(), "{}", show(&out));
    let out = srv.cli(&["patch", "config", "show"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        show(&out)
    );
}

/// The patch run as CodeBuild carries it out on AWS: `crtask exec` with the
/// contract variables the dispatcher sets for a patch run (`CRTASK_PATCH`,
/// `CRTASK_ENGINE=buildah`, no context), on the same Debian image. Its
/// result file is what build-status stores on the run.
#[test]
fn exec_carries_out_a_patch_run_as_the_aws_builder_does() {
    let s = stack(&["3"], &[]);
    let host = s.reg.host.clone();
    let work = tempfile::tempdir().unwrap();
    let p = |n: &str| work.path().join(n).display().to_string();
    let patch = serde_json::json!({
        "image": format!("{host}/demo:3"),
        "tagConvention": "incremental",
        "dryRun": false,
    });
    let spec = serde_json::json!({
        "context": {"kind": "none"}, "file": "", "images": [], "push": true, "timeout": 1800,
    });
    let mut cmd = std::process::Command::new(crtask_tests::crtask_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CRTASK_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .arg("exec")
        .envs([
            ("CRTASK_ENGINE", "buildah".to_string()),
            ("CRTASK_WORK_DIR", p("work")),
            ("CRTASK_RESULT_FILE", p("out/result.json")),
            ("CRTASK_LOG_FILE", p("out/run.log")),
            ("CRTASK_RUN_ID", "cb12".to_string()),
            ("CRTASK_RUN_TYPE", "Patch".to_string()),
            ("CRTASK_TRIGGER", "Manual".to_string()),
            ("CRTASK_CONTEXT_KIND", "none".to_string()),
            ("CRTASK_REGISTRY", host.clone()),
            ("CRTASK_INSECURE_REGISTRY", host.clone()),
            ("CRTASK_SPEC", spec.to_string()),
            ("CRTASK_PATCH", patch.to_string()),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let log = std::fs::read_to_string(p("out/run.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "crtask exec: {}\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p("out/result.json")).unwrap()).unwrap();
    assert_eq!(result["status"], "Succeeded", "{result:#}");
    assert_eq!(result["patch"]["outcome"], "Patched", "{result:#}");
    assert_eq!(result["patch"]["image"], format!("{host}/demo:3"));
    assert_eq!(result["patch"]["packageManager"], "apt");
    assert_eq!(
        changes(&result),
        [
            ch("crtask-demo", "1.0", "1.1"),
            ch("crtask-other", "1.0", "1.1")
        ]
    );
    assert_eq!(result["outputImages"][0]["tag"], "3-1", "{result:#}");
    assert_eq!(debian::tags(&host, "demo").unwrap(), ["3", "3-1"]);
    assert!(log.contains("crtask-demo"), "{log}");

    // build-status reads exactly this file back.
    let parsed = crtask_core::trigger::build_status::ExecResult::from_json(
        &std::fs::read(p("out/result.json")).unwrap(),
    )
    .unwrap();
    let reported = parsed.patch.expect("the result carries the patch");
    assert_eq!(reported.packages.len(), 2);

    // A malformed CRTASK_PATCH is refused by name, with a result left.
    let bad = std::process::Command::new(crtask_tests::crtask_bin())
        .arg("exec")
        .envs([
            ("CRTASK_ENGINE", "buildah".to_string()),
            ("CRTASK_WORK_DIR", p("work2")),
            ("CRTASK_RESULT_FILE", p("out2/result.json")),
            ("CRTASK_LOG_FILE", p("out2/run.log")),
            ("CRTASK_RUN_ID", "cb13".to_string()),
            ("CRTASK_CONTEXT_KIND", "none".to_string()),
            ("CRTASK_SPEC", spec.to_string()),
            ("CRTASK_PATCH", "{\"image\": 7}".to_string()),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p("out2/result.json")).unwrap()).unwrap();
    assert_eq!(r["status"], "Error", "{r:#}");
    assert!(
        r["error"].as_str().unwrap().contains("CRTASK_PATCH"),
        "{r:#}"
    );
}
