//! The two surfaces of `crtask serve` end to end: the public listener
//! (webhooks, healthz) never serves the management API; the API refuses to
//! listen off loopback without a token, and with one the CLI gets in only
//! with the right token, from `CRTASK_API_TOKEN` or its config file.

use crtask_tests::{crtask_bin, free_port, show, Registry, Server};
use serde_json::Value;
use std::net::{IpAddr, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "e2e-api-token-7d1f0c";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// A server whose API listens on all addresses, with a token file.
fn exposed_stack() -> (Registry, Server, tempfile::TempDir) {
    let reg = Registry::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("api-token");
    std::fs::write(&tok, format!("{TOKEN}\n")).unwrap();
    let api = format!("0.0.0.0:{}", free_port());
    let srv = Server::start(
        &reg,
        &[
            "--api-listen",
            &api,
            "--api-token-file",
            tok.to_str().unwrap(),
        ],
    )
    .unwrap();
    (reg, srv, dir)
}

#[test]
fn an_open_api_off_loopback_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let start = Instant::now();
    let out = Command::new(crtask_bin())
        .args(["serve", "--listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--api-listen")
        .arg(format!("0.0.0.0:{api_port}"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("CRTASK_API_TOKEN_FILE")
        .env_remove("CRTASK_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--api-listen 0.0.0.0:")
            && err.contains("is not a loopback address")
            && err.contains("--api-token-file"),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(20));
    // Nothing listens there, and nothing was set up.
    assert!(std::net::TcpStream::connect(("127.0.0.1", api_port)).is_err());
    assert!(!dir.path().join("data").exists());
}

#[test]
fn the_cli_needs_the_token_from_env_or_config() {
    let (_reg, srv, dir) = exposed_stack();
    // The harness passes the token in CRTASK_API_TOKEN.
    let created = srv
        .cli_json(&[
            "task",
            "create",
            "--name",
            "web",
            "-c",
            "/dev/null",
            "-t",
            "web:1",
        ])
        .unwrap();
    assert_eq!(created["name"], "web");

    // No token: refused, with where the CLI looks for one; nothing done.
    let out = srv
        .cli_command()
        .env_remove("CRTASK_API_TOKEN")
        .args(["task", "delete", "--name", "web"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: this API needs a token") && err.contains("CRTASK_API_TOKEN"),
        "{err}"
    );
    // A wrong token: refused.
    let out = srv
        .cli_command()
        .env("CRTASK_API_TOKEN", "not-the-token")
        .args(["task", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).starts_with("error: the API token is wrong"),
        "{}",
        stderr(&out)
    );
    let tasks = srv.cli_json(&["task", "show", "--name", "web"]).unwrap();
    assert_eq!(tasks["name"], "web", "the refused delete did nothing");

    // From the config file named by CRTASK_CLI_CONFIG (token file relative
    // to it), server included: no CRTASK_SERVER, no CRTASK_API_TOKEN.
    let cfg_dir = dir.path().join("cfg");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    std::fs::write(cfg_dir.join("tok"), format!("{TOKEN}\n")).unwrap();
    let cfg = cfg_dir.join("cli.toml");
    std::fs::write(
        &cfg,
        format!("server = \"{}\"\napi-token-file = \"tok\"\n", srv.api),
    )
    .unwrap();
    let list = |cmd: &mut Command| -> Output {
        cmd.env_remove("CRTASK_SERVER")
            .args(["task", "list", "-o", "json"])
            .output()
            .unwrap()
    };
    let out = list(
        srv.cli_command()
            .env_remove("CRTASK_API_TOKEN")
            .env("CRTASK_CLI_CONFIG", &cfg),
    );
    assert!(out.status.success(), "{}", show(&out));
    let tasks: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tasks[0]["name"], "web");

    // The default place: $XDG_CONFIG_HOME/crtask/cli.toml.
    let xdg = dir.path().join("xdg");
    std::fs::create_dir_all(xdg.join("crtask")).unwrap();
    std::fs::write(
        xdg.join("crtask/cli.toml"),
        format!("server = \"{}\"\napi-token = \"{TOKEN}\"\n", srv.api),
    )
    .unwrap();
    let out = list(
        srv.cli_command()
            .env_remove("CRTASK_API_TOKEN")
            .env("XDG_CONFIG_HOME", &xdg),
    );
    assert!(out.status.success(), "{}", show(&out));

    // The environment beats the file, both ways.
    let out = list(
        srv.cli_command()
            .env("CRTASK_API_TOKEN", "wrong")
            .env("XDG_CONFIG_HOME", &xdg),
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    std::fs::write(
        xdg.join("crtask/cli.toml"),
        format!("server = \"{}\"\napi-token = \"wrong\"\n", srv.api),
    )
    .unwrap();
    let out = list(
        srv.cli_command()
            .env("CRTASK_API_TOKEN", TOKEN)
            .env("XDG_CONFIG_HOME", &xdg),
    );
    assert!(out.status.success(), "{}", show(&out));

    // A broken config file is a clear error.
    std::fs::write(&cfg, "sever = \"x\"\n").unwrap();
    let out = list(srv.cli_command().env("CRTASK_CLI_CONFIG", &cfg));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("CLI config file") && err.contains("sever"),
        "{err}"
    );

    // The flag beats the environment: pointed at the public listener, the
    // CLI is told where the API is.
    let out = srv
        .cli_command()
        .args(["task", "list", "--server", &srv.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = stderr(&out);
    assert!(err.contains("--api-listen"), "{err}");
}

/// This machine's address on its default route, when it has one.
fn non_loopback_ip() -> Option<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks the route.
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn api_calls_from_other_addresses_need_the_token_and_the_public_port_has_no_api() {
    let (_reg, srv, _dir) = exposed_stack();
    let http = reqwest::blocking::Client::new();
    let api_port = srv.api.rsplit(':').next().unwrap().to_string();
    let mut bases = vec![srv.api.clone()];
    match non_loopback_ip() {
        Some(ip) => bases.push(format!("http://{ip}:{api_port}")),
        None => eprintln!("no non-loopback address here: checked over loopback only"),
    }
    for base in &bases {
        let url = format!("{base}/api/v1/tasks");
        let body = r#"{"name": "x", "context": "/dev/null", "images": ["x:1"]}"#;
        for auth in [None, Some("Bearer wrong".to_string())] {
            let mut req = http
                .post(&url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            let r = req.send().unwrap();
            assert_eq!(r.status().as_u16(), 401, "{url} {auth:?}");
            assert_eq!(r.headers()["content-type"], "application/json");
            let v: Value = r.json().unwrap();
            assert!(v["error"].is_string(), "{v}");
        }
        let r = http.get(&url).bearer_auth(TOKEN).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{url}");
        assert_eq!(r.json::<Value>().unwrap(), serde_json::json!([]));
    }
    // The public listener: the API's paths are 404 JSON, token or not.
    for auth in [None, Some(TOKEN)] {
        let mut req = http
            .post(format!("{}/api/v1/tasks", srv.url))
            .header("content-type", "application/json")
            .body(r#"{"name": "x", "context": "/dev/null", "images": ["x:1"]}"#);
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        let r = req.send().unwrap();
        assert_eq!(r.status().as_u16(), 404);
        let v: Value = r.json().unwrap();
        assert!(
            v["error"]
                .as_str()
                .unwrap_or_default()
                .contains("--api-listen"),
            "{v}"
        );
    }
    let tasks = srv.cli_json(&["task", "list"]).unwrap();
    assert_eq!(
        tasks,
        serde_json::json!([]),
        "no refused call created a task"
    );
}
