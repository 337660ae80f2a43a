//! Harness for crtask's end-to-end tests: real processes, real peers.
//!
//! Each test starts its own CNCF distribution registry (`docker-registry`)
//! and its own `crtask serve` on free loopback ports with private data
//! directories, and drives the real `crtask` binary like a user would.

pub mod acr_samples;
pub mod debian;
pub mod load;
pub mod moto;
pub mod private_git;
pub mod sam_build;
pub mod webdriver;
pub use acr_samples::acr_samples;
pub use load::CpuLoad;
pub use moto::MotoServer;

use anyhow::{anyhow, bail, Context, Result};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The `crtask` binary built by `cargo build -p crtask` (or `CRTASK_BIN`).
pub fn crtask_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CRTASK_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test-exe> -> target/<profile>/crtask
    let exe = std::env::current_exe().unwrap_or_default();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("crtask"))
        .unwrap_or_default();
    assert!(
        bin.is_file(),
        "the crtask binary is not at {}: run `cargo build -p crtask` first (infra/test.sh does)",
        bin.display()
    );
    bin
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn wait_http(url: &str, child: &mut Child, what: &str, log: &Path) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "{what} exited early ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(r) = reqwest::blocking::get(url) {
            if r.status().is_success() {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not answer at {url} within 20 s")
}

/// A running `docker-registry` on plain HTTP.
pub struct Registry {
    child: Child,
    pub host: String,
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry; `notify` adds a notification endpoint `(url, bearer token)`.
    pub fn start_with(notify: Option<(&str, &str)>) -> Result<Registry> {
        let dir = tempfile::tempdir()?;
        let host = format!("127.0.0.1:{}", free_port());
        let mut cfg = format!(
            "version: 0.1\nlog: {{level: info}}\nstorage:\n  filesystem: {{rootdirectory: \"{}\"}}\n  delete: {{enabled: true}}\nhttp: {{addr: \"{host}\"}}\n",
            dir.path().join("data").display()
        );
        if let Some((url, token)) = notify {
            cfg.push_str(&format!(
                "notifications:\n  endpoints:\n    - name: crtask\n      url: \"{url}\"\n      headers: {{Authorization: [\"Bearer {token}\"]}}\n      timeout: 2s\n      threshold: 5\n      backoff: 1s\n"
            ));
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg)?;
        let log = dir.path().join("registry.log");
        let log_file = std::fs::File::create(&log)?;
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            // The access log (stdout) is what `manifest_heads` counts.
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("cannot start docker-registry (run infra/local/setup.sh)")?;
        wait_http(
            &format!("http://{host}/v2/"),
            &mut child,
            "docker-registry",
            &log,
        )?;
        Ok(Registry { child, host, dir })
    }

    pub fn start() -> Result<Registry> {
        Self::start_with(None)
    }

    /// The digest the registry serves for `repo:tag`, if any.
    pub fn digest(&self, repo: &str, tag: &str) -> Option<String> {
        let r = reqwest::blocking::Client::new()
            .head(format!("http://{}/v2/{repo}/manifests/{tag}", self.host))
            .header(
                "Accept",
                "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json",
            )
            .send()
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Pushes the busybox seed image as `name` (`base:1`); `content` varies
    /// the image so the same name can be updated. Returns its digest.
    pub fn seed(&self, name: &str, content: &str) -> Result<String> {
        let out = Command::new(repo_root().join("infra/local/seed-base.sh"))
            .args([&self.host, name, content])
            .output()?;
        if !out.status.success() {
            bail!(
                "seed-base.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !digest.starts_with("sha256:") {
            bail!("seed-base.sh printed no digest: {digest}");
        }
        Ok(digest)
    }

    /// The image index the registry serves for `repo:tag`, as JSON.
    pub fn index(&self, repo: &str, tag: &str) -> serde_json::Value {
        reqwest::blocking::Client::new()
            .get(format!("http://{}/v2/{repo}/manifests/{tag}", self.host))
            .header(
                "Accept",
                "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json",
            )
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// How many `GET /v2/<repo>/manifests/<tag>` requests (pulls) the
    /// registry has served so far (from its access log).
    pub fn manifest_gets(&self, repo: &str, tag: &str) -> usize {
        let needle = format!("\"GET /v2/{repo}/manifests/{tag} ");
        std::fs::read_to_string(self.dir.path().join("registry.log"))
            .map(|l| l.matches(&needle).count())
            .unwrap_or(0)
    }

    /// How many `HEAD /v2/<repo>/manifests/<tag>` requests the registry
    /// has served so far (from its access log).
    pub fn manifest_heads(&self, repo: &str, tag: &str) -> usize {
        let needle = format!("\"HEAD /v2/{repo}/manifests/{tag} ");
        std::fs::read_to_string(self.dir.path().join("registry.log"))
            .map(|l| l.matches(&needle).count())
            .unwrap_or(0)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `crtask serve`.
pub struct Server {
    child: Option<Child>,
    /// The public listener (`--listen`): webhooks and `/healthz`.
    pub url: String,
    /// The management API (`--api-listen`), what the CLI calls.
    pub api: String,
    /// The API token (the first `--api-token-file`'s content), if any.
    pub api_token: Option<String>,
    pub data: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server using `registry` for unqualified tags (plain HTTP).
    pub fn start(registry: &Registry, extra: &[&str]) -> Result<Server> {
        Self::start_on(registry, free_port(), extra)
    }

    /// The same, on a given port (to point a registry's notifications at it
    /// first). The API listens on a free loopback port unless `extra` has
    /// `--api-listen`; an `--api-token-file` in `extra` is what [`Server::cli`]
    /// sends.
    pub fn start_on(registry: &Registry, url_port: u16, extra: &[&str]) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--listen".into(),
            format!("127.0.0.1:{url_port}"),
            "--data-dir".into(),
            data.display().to_string(),
            "--registry".into(),
            registry.host.clone(),
            "--insecure-registry".into(),
            registry.host.clone(),
        ];
        let flag = |name: &str| {
            extra
                .iter()
                .position(|a| *a == name)
                .and_then(|i| extra.get(i + 1))
                .map(|v| v.to_string())
        };
        let api_port = match flag("--api-listen") {
            Some(addr) => addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .ok_or_else(|| anyhow!("--api-listen {addr} has no port"))?,
            None => {
                let port = free_port();
                args.extend(["--api-listen".into(), format!("127.0.0.1:{port}")]);
                port
            }
        };
        let api_token = match flag("--api-token-file") {
            Some(f) => Some(std::fs::read_to_string(f)?.trim().to_string()),
            None => None,
        };
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut s = Server {
            child: None,
            url: format!("http://127.0.0.1:{url_port}"),
            api: format!("http://127.0.0.1:{api_port}"),
            api_token,
            log: dir.path().join("server.log"),
            data,
            args,
            _dir: Some(dir),
        };
        s.spawn()?;
        Ok(s)
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut child = Command::new(crtask_bin())
            .args(&self.args)
            .env_remove("CRTASK_SERVER")
            .env_remove("CRTASK_API_LISTEN")
            .env_remove("CRTASK_API_TOKEN_FILE")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        for url in [&self.url, &self.api] {
            wait_http(
                &format!("{url}/healthz"),
                &mut child,
                "crtask serve",
                &self.log,
            )?;
        }
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILLs the server (no chance to clean up), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the server has recorded the registry's notification of a
    /// push of `image` (`host/repository:tag`; for instance a push made before the server
    /// listened, which reaches it only through the registry's retries).
    /// Without the wait such a late notification lands at an arbitrary
    /// moment of the test: after a task was created but before its first
    /// run recorded the digest, it rightly triggers a rebuild.
    pub fn await_registry_push(&self, image: &str, secs: u64) {
        let seen = || {
            self.cli_json(&["events", "list", "--source", "registry", "--top", "1000"])
                .map(|v| {
                    v.as_array()
                        .is_some_and(|events| events.iter().any(|e| e["detail"]["image"] == image))
                })
                .unwrap_or(false)
        };
        assert!(
            wait_until(secs, seen),
            "no registry notification of a push of {image} after {secs} s:\n{}",
            self.log()
        );
    }

    /// `crtask` set up to call this server's API (with its token, if any),
    /// reading no CLI config file of the user's.
    pub fn cli_command(&self) -> Command {
        let mut c = Command::new(crtask_bin());
        c.env("CRTASK_SERVER", &self.api)
            .env_remove("CRTASK_OUTPUT")
            .env_remove("CRTASK_CLI_CONFIG")
            .env_remove("CRTASK_API_TOKEN")
            .env("XDG_CONFIG_HOME", self.log.with_file_name("xdg-config"))
            .stdin(Stdio::null());
        if let Some(t) = &self.api_token {
            c.env("CRTASK_API_TOKEN", t);
        }
        c
    }

    /// Runs `crtask ARGS` against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run crtask: {e}"))
    }

    /// Runs `crtask ARGS -o json` and parses stdout.
    pub fn cli_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.cli(&a);
        if !out.status.success() {
            bail!(
                "crtask {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            anyhow!(
                "crtask {} printed no JSON ({e}): {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// A run's JSON record.
    pub fn run(&self, id: &str) -> Result<serde_json::Value> {
        self.cli_json(&["task", "show-run", "--run-id", id])
    }

    /// Polls until the run's status satisfies `pred` (at most `secs`).
    pub fn wait_status(
        &self,
        id: &str,
        secs: u64,
        pred: impl Fn(&str) -> bool,
    ) -> Result<serde_json::Value> {
        let start = Instant::now();
        loop {
            let r = self.run(id)?;
            if pred(r["status"].as_str().unwrap_or("")) {
                return Ok(r);
            }
            if start.elapsed() > Duration::from_secs(secs) {
                bail!("run {id} still {} after {secs} s", r["status"]);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A registry holding the seed image `base:1` and a server using it: the
/// stack most end-to-end tests start from.
pub fn seeded_stack(extra: &[&str]) -> (Registry, Server) {
    let reg = Registry::start().unwrap_or_else(|e| panic!("registry: {e:#}"));
    reg.seed("base:1", "v1")
        .unwrap_or_else(|e| panic!("seed: {e:#}"));
    let srv = Server::start(&reg, extra).unwrap_or_else(|e| panic!("server: {e:#}"));
    (reg, srv)
}

/// The run id `crtask run`/`build` printed first ("Queued a run with ID: ").
pub fn queued_id(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Queued a run with ID: "))
        .unwrap_or_else(|| panic!("no run id: {}", show(out)))
        .to_string()
}

/// `crtask run --no-wait -f FILE DIR` against `srv`: the queued run's id.
pub fn run_queued(srv: &Server, dir: &Path, file: &str) -> String {
    let out = srv.cli(&["run", "--no-wait", "-f", file, &dir.to_string_lossy()]);
    queued_id(&out)
}

/// `crtask run -f FILE DIR` against `srv`, following the log: the streamed
/// text, the output and the run id.
pub fn run_followed(srv: &Server, dir: &Path, file: &str) -> (String, Output, String) {
    let out = srv.cli(&["run", "-f", file, &dir.to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let id = queued_id(&out);
    (text, out, id)
}

/// Polls `what` every 100 ms for up to `secs` seconds; its last answer.
pub fn wait_until(secs: u64, what: impl Fn() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while !what() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    what()
}

/// A `sleep` command line that no other test process runs (the duration
/// is `at_least` plus this process's id), so that [`processes`] finds only
/// this test's step, also when two suites run at once.
pub fn own_sleep(at_least: u64) -> String {
    format!("sleep {}", at_least + u64::from(std::process::id()))
}

/// Ids of the processes whose command line is exactly `command`, its
/// program named or given by path: a `cmd` step's process runs as the
/// path found in the image's `PATH` (`/bin/sleep 60`), while a shell's or
/// buildah's command line that merely ends with the same words does not
/// count. `command` is taken literally.
pub fn processes(command: &str) -> String {
    let literal: String = command
        .chars()
        .flat_map(|c| {
            let special = "\\.^$|?*+()[]{}".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect();
    let out = std::process::Command::new("pgrep")
        .args(["-f", &format!("(^|/){literal}$")])
        .output()
        .expect("pgrep (procps) is required");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// stdout and stderr of a command, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes files (path, content) under `dir`.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let path = dir.join(p);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        std::fs::write(&path, c).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// Reads a file out of a pushed image: pulls it into private storage,
/// mounts it, and returns the file's content (`None` when absent).
pub fn read_from_image(image: &str, insecure: &str, path: &str) -> Result<Option<String>> {
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!("[[registry]]\nlocation = \"{insecure}\"\ninsecure = true\n"),
    )?;
    let buildah = |args: &[&str]| -> Result<String> {
        let out = Command::new("buildah")
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("runroot"))
            .args(args)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .output()?;
        if !out.status.success() {
            bail!(
                "buildah {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let ctr = buildah(&["from", "--quiet", image])?;
    let mnt = buildah(&["mount", &ctr])?;
    let content = std::fs::read_to_string(Path::new(&mnt).join(path.trim_start_matches('/'))).ok();
    let _ = buildah(&["umount", &ctr]);
    let _ = buildah(&["rm", &ctr]);
    Ok(content)
}

/// A git repository served over git's own protocol by `git daemon`, with a
/// working clone to commit and push from.
pub struct GitServer {
    child: Child,
    pub port: u16,
    pub root: tempfile::TempDir,
}

impl GitServer {
    /// Starts `git daemon` exporting an empty bare repository `repo.git`.
    pub fn start() -> Result<GitServer> {
        let root = tempfile::tempdir()?;
        git(
            root.path(),
            &["init", "-q", "--bare", "-b", "main", "repo.git"],
        )?;
        git(root.path(), &["clone", "-q", "repo.git", "work"])?;
        let port = free_port();
        let mut child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", root.path().display()),
            ])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start git daemon")?;
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                bail!("git daemon did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(GitServer { child, port, root })
    }

    /// The clone URL users put in a task's context.
    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}/repo.git", self.port)
    }

    /// The working clone.
    pub fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// Writes files in the working clone, commits them on `branch`, pushes,
    /// and returns the new commit.
    pub fn commit(&self, branch: &str, files: &[(&str, &str)], message: &str) -> Result<String> {
        let w = self.work();
        let has_branch = git(
            &w,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{branch}"),
            ],
        )
        .is_ok();
        if has_branch {
            git(&w, &["checkout", "-q", branch])?;
        } else {
            git(&w, &["checkout", "-q", "--orphan", branch])
                .or_else(|_| git(&w, &["checkout", "-q", "-b", branch]))?;
        }
        write_files(&w, files);
        git(&w, &["add", "-A"])?;
        git(&w, &["commit", "-q", "--allow-empty", "-m", message])?;
        git(
            &w,
            &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
        )?;
        git(&w, &["rev-parse", "HEAD"])
    }

    /// Starts `branch` from `from` and pushes it.
    pub fn branch(&self, branch: &str, from: &str) -> Result<()> {
        let w = self.work();
        git(&w, &["checkout", "-q", "-B", branch, from])?;
        git(
            &w,
            &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
        )?;
        Ok(())
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs git in `dir` with a fixed identity; returns trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "crtask test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "crtask test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .output()?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `sha256=<hex>` HMAC of `body` with `secret`, as GitHub signs deliveries.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac, SimpleHmac};
    let mut mac = SimpleHmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("hmac takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts a webhook delivery; returns the status and the JSON answer.
pub fn post_webhook(
    url: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<(u16, serde_json::Value)> {
    let mut req = reqwest::blocking::Client::new()
        .post(url)
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send()?;
    let status = resp.status().as_u16();
    let text = resp.text()?;
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Ok((status, json))
}

/// Pushes a busybox base image index `name` (`repo:tag`) with `arches`
/// (e.g. `amd64,arm64`) to `reg` (`infra/local/seed-multiarch-base.sh`);
/// prints what the script printed.
pub fn seed_multiarch(reg: &Registry, name: &str, arches: &str) -> String {
    let out = Command::new(repo_root().join("infra/local/seed-multiarch-base.sh"))
        .args([&reg.host, name, "multi", arches])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "seed-multiarch-base.sh failed (run infra/local/setup.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An image index's `(architecture, digest)` pairs.
pub fn index_arches(index: &serde_json::Value) -> Vec<(String, String)> {
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index}"))
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
