//! `crtask registry credential add|list|remove` on the local platform: the
//! password comes from stdin or a file (there is no flag for it), lands in
//! the data directory's credentials file (mode 0600) and is never printed;
//! bad input is refused and changes nothing.

use crtask_tests::{crtask_bin, show};
use std::io::Write;
use std::process::{Command, Output, Stdio};

const PASSWORD: &str = "s3cret-Token_value";

fn cli(data_dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(crtask_bin())
        .args(["--platform", "local", "registry", "credential"])
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("CRTASK_DATA_DIR")
        .env_remove("CRTASK_AWS_STACK")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn add_list_remove_without_ever_showing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = cli(
        d,
        &["add", "GHCR.io", "-u", "bot", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(!text(&out).contains(PASSWORD));
    let file = d.join("registry-credentials.json");
    let stored = std::fs::read_to_string(&file).unwrap();
    let json: serde_json::Value = serde_json::from_str(&stored).unwrap();
    // Trailing line break dropped; host normalised.
    assert_eq!(json["registries"]["ghcr.io"]["password"], PASSWORD);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // From a file too.
    let pw = d.join("pw.txt");
    std::fs::write(&pw, "other-pass\n").unwrap();
    let out = cli(
        d,
        &[
            "add",
            "registry.example.com:5000",
            "-u",
            "ci",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", show(&out));

    let out = cli(d, &["list"], None);
    assert!(out.status.success(), "{}", show(&out));
    let t = text(&out);
    assert!(t.contains("ghcr.io") && t.contains("bot"), "{t}");
    assert!(
        t.contains("registry.example.com:5000") && t.contains("ci"),
        "{t}"
    );
    assert!(!t.contains(PASSWORD) && !t.contains("other-pass"), "{t}");
    let out = Command::new(crtask_bin())
        .args([
            "--platform",
            "local",
            "-o",
            "json",
            "registry",
            "credential",
            "list",
            "--data-dir",
        ])
        .arg(d)
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([
            {"registry": "ghcr.io", "username": "bot"},
            {"registry": "registry.example.com:5000", "username": "ci"}
        ])
    );

    let out = cli(d, &["remove", "ghcr.io"], None);
    assert!(out.status.success(), "{}", show(&out));
    let out = cli(d, &["remove", "ghcr.io"], None);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(text(&out).contains("no credential is stored for ghcr.io"));
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No password source: clap refuses; a password flag does not exist.
    let out = cli(d, &["add", "ghcr.io", "-u", "bot"], None);
    assert!(!out.status.success());
    let out = cli(
        d,
        &["add", "ghcr.io", "-u", "bot", "--password", PASSWORD],
        None,
    );
    assert!(!out.status.success());
    assert!(!text(&out).contains(PASSWORD) || text(&out).contains("unexpected argument"));
    for (host, user, pw, why) in [
        ("https://ghcr.io/x", "bot", "p", "no scheme, path or user"),
        ("ghcr.io", "b:t", "p", "must not contain ':'"),
        ("ghcr.io", "bot", "", "the password is empty"),
        ("gh\u{1b}[2Jcr.io", "bot", "p", "is not a valid host name"),
    ] {
        let out = cli(d, &["add", host, "-u", user, "--password-stdin"], Some(pw));
        assert_eq!(out.status.code(), Some(1), "{host}: {}", show(&out));
        let t = text(&out);
        assert!(t.contains(why), "{host}: {t}");
        assert!(!t.contains('\u{1b}'), "{t:?}");
    }
    assert!(!d.join("registry-credentials.json").exists());
    // On AWS an ECR host needs no stored credential (refused before any AWS call).
    let out = Command::new(crtask_bin())
        .args([
            "--platform",
            "aws",
            "registry",
            "credential",
            "add",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "-u",
            "AWS",
            "--password-stdin",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("is an ECR registry"), "{}", text(&out));
}
