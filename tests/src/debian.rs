//! Debian images and apt repositories built on this machine, for the OS
//! patching tests: a `debootstrap --variant=minbase` root file system from
//! the Debian mirror apt is configured with (cached as a tarball, so reruns
//! take seconds), packages made with `dpkg-deb`, and a flat apt repository
//! served over HTTP on a loopback port (`[trusted=yes]`).

use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The Debian mirror and suite of this machine's apt sources (deb822
/// `.sources` files first, then `sources.list`), security and update
/// suites left out.
pub fn debian_mirror() -> Result<(String, String)> {
    let mut stanzas: Vec<(String, String)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "sources"))
        {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            for stanza in text.split("\n\n") {
                let field = |name: &str| {
                    stanza
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_string())
                };
                if let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:")) {
                    for uri in uris.split_whitespace() {
                        for suite in suites.split_whitespace() {
                            stanzas.push((uri.to_string(), suite.to_string()));
                        }
                    }
                }
            }
        }
    }
    let list = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    for l in list.lines() {
        let words: Vec<&str> = l
            .split_whitespace()
            .filter(|w| !w.starts_with('['))
            .collect();
        if let ["deb", uri, suite, ..] = words.as_slice() {
            stanzas.push((uri.to_string(), suite.to_string()));
        }
    }
    stanzas
        .into_iter()
        .find(|(u, s)| u.contains("debian") && !u.contains("security") && !s.contains('-'))
        .ok_or_else(|| anyhow!("no Debian mirror in the apt sources of this machine"))
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} {:?} failed: {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A minbase Debian root file system as a tarball under `cache_dir`, made
/// once with debootstrap (apt's caches and lists left out).
pub fn rootfs_tarball(cache_dir: &Path) -> Result<PathBuf> {
    let (mirror, suite) = debian_mirror()?;
    std::fs::create_dir_all(cache_dir)?;
    let tarball = cache_dir.join(format!("debian-{suite}-minbase.tar"));
    // One test process builds it; the others wait for it.
    let lock = cache_dir.join(format!("debian-{suite}.lock"));
    let start = Instant::now();
    loop {
        if tarball.is_file() {
            return Ok(tarball);
        }
        match std::fs::create_dir(&lock) {
            Ok(()) => break,
            Err(_) if start.elapsed() > Duration::from_secs(900) => {
                let _ = std::fs::remove_dir(&lock);
            }
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
    let res = (|| -> Result<PathBuf> {
        if tarball.is_file() {
            return Ok(tarball.clone());
        }
        let work = tempfile::tempdir_in(cache_dir)?;
        let root = work.path().join("root");
        run(Command::new("debootstrap")
            .args(["--variant=minbase", &suite])
            .arg(&root)
            .arg(&mirror))
        .context("debootstrap (apt-get install debootstrap)")?;
        for d in ["var/cache/apt/archives", "var/lib/apt/lists"] {
            if let Ok(rd) = std::fs::read_dir(root.join(d)) {
                for e in rd.flatten().filter(|e| e.path().is_file()) {
                    std::fs::remove_file(e.path())?;
                }
            }
        }
        let part = work.path().join("rootfs.tar");
        run(Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&part)
            .arg("."))?;
        std::fs::rename(&part, &tarball)?;
        Ok(tarball.clone())
    })();
    let _ = std::fs::remove_dir(&lock);
    res
}

/// Makes `NAME_VERSION_all.deb` in `dir` holding
/// `/usr/share/NAME/version` (the version) with `dpkg-deb`.
pub fn build_deb(dir: &Path, name: &str, version: &str) -> Result<PathBuf> {
    let work = tempfile::tempdir()?;
    let root = work.path();
    std::fs::create_dir_all(root.join("DEBIAN"))?;
    std::fs::create_dir_all(root.join("usr/share").join(name))?;
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: crtask tests <tests@example.invalid>\nDescription: a package of the OS patching tests\n"
        ),
    )?;
    let file = root.join("usr/share").join(name).join("version");
    std::fs::write(&file, format!("{version}\n"))?;
    // Each version gets its own timestamp, as real packages do: vfs
    // storage sees a changed file by its size and modification time.
    let stamp = 1_600_000_000u64
        + version
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
            % 100_000_000;
    run(Command::new("touch")
        .arg("-d")
        .arg(format!("@{stamp}"))
        .arg(&file))?;
    let out = dir.join(format!("{name}_{version}_all.deb"));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(root)
        .arg(&out))
    .context("dpkg-deb (apt-get install dpkg-dev)")?;
    Ok(out)
}

/// A flat apt repository (`deb [trusted=yes] URL ./`) served over HTTP.
pub struct AptRepo {
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT/`
    pub url: String,
}

impl AptRepo {
    pub fn start() -> Result<AptRepo> {
        let dir = tempfile::tempdir()?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/", listener.local_addr()?);
        let root = dir.path().to_path_buf();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let root = root.clone();
                std::thread::spawn(move || serve_file(conn, &root));
            }
        });
        let repo = AptRepo { dir, url };
        repo.index()?;
        Ok(repo)
    }

    /// Adds a package version and rewrites the index.
    pub fn add(&self, name: &str, version: &str) -> Result<()> {
        build_deb(self.dir.path(), name, version)?;
        self.index()
    }

    fn index(&self) -> Result<()> {
        let packages = run(Command::new("dpkg-scanpackages")
            .args(["--multiversion", ".", "/dev/null"])
            .current_dir(self.dir.path()))
        .context("dpkg-scanpackages (apt-get install dpkg-dev)")?;
        std::fs::write(self.dir.path().join("Packages"), format!("{packages}\n"))?;
        Ok(())
    }

    /// The apt source line of the repository.
    pub fn source_line(&self) -> String {
        format!("deb [trusted=yes] {} ./\n", self.url)
    }
}

/// Answers one HTTP/1.1 GET with a file under `root` (or 404), then closes.
fn serve_file(mut conn: std::net::TcpStream, root: &Path) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let path = path
        .split('?')
        .next()
        .unwrap_or("/")
        .trim_start_matches('/');
    let file = (!path.split('/').any(|c| c == "..")).then(|| root.join(path));
    let body = file
        .filter(|f| f.is_file())
        .and_then(|f| std::fs::read(f).ok());
    let resp = match &body {
        Some(b) => format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            b.len()
        ),
        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    };
    let _ = conn.write_all(resp.as_bytes());
    if let (Some(b), "GET") = (&body, method) {
        let _ = conn.write_all(b);
    }
}

/// A buildah store of the test's own (vfs), talking plain HTTP to `registry`.
pub struct Buildah {
    dir: tempfile::TempDir,
}

impl Buildah {
    pub fn new(registry: &str) -> Result<Buildah> {
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("registries.conf"),
            format!("[[registry]]\nlocation = \"{registry}\"\ninsecure = true\n"),
        )?;
        Ok(Buildah { dir })
    }

    pub fn run(&self, args: &[&str]) -> Result<String> {
        let d = self.dir.path();
        run(Command::new("buildah")
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .args(args)
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env("BUILDAH_ISOLATION", "chroot"))
    }
}

/// What goes into a test image besides the Debian root.
pub struct ImageSpec<'a> {
    /// `registry/repo:tag` to push.
    pub image: &'a str,
    /// The apt source line of the image (`/etc/apt/sources.list.d/local.list`).
    pub source: &'a str,
    /// .deb files installed with dpkg (the outdated packages).
    pub debs: &'a [PathBuf],
}

/// Builds a Debian image of two layers (the debootstrap root; the apt
/// source and the packages) with an entrypoint, an environment variable,
/// a label and a non-root user, and pushes it.
pub fn push_debian_image(b: &Buildah, rootfs: &Path, spec: &ImageSpec) -> Result<()> {
    let base = "localhost/crtask-test-debian:base";
    if b.run(&["inspect", "--type", "image", base]).is_err() {
        let ctr = b.run(&["from", "scratch"])?;
        b.run(&["add", &ctr, &rootfs.display().to_string(), "/"])?;
        b.run(&["commit", "--quiet", "--identity-label=false", &ctr, base])?;
        b.run(&["rm", &ctr])?;
    }
    let ctr = b.run(&["from", base])?;
    let mnt = PathBuf::from(b.run(&["mount", &ctr])?);
    for f in [
        "etc/apt/sources.list",
        "etc/apt/sources.list.d/debian.sources",
    ] {
        let _ = std::fs::remove_file(mnt.join(f));
    }
    std::fs::write(mnt.join("etc/apt/sources.list.d/local.list"), spec.source)?;
    let mut inside = Vec::new();
    for d in spec.debs {
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        std::fs::copy(d, mnt.join("tmp").join(&name))?;
        inside.push(format!("/tmp/{name}"));
    }
    let mut argv = vec!["run", &ctr, "--", "dpkg", "-i"];
    argv.extend(inside.iter().map(String::as_str));
    b.run(&argv)?;
    for f in &inside {
        std::fs::remove_file(mnt.join(f.trim_start_matches('/')))?;
    }
    b.run(&[
        "config",
        "--entrypoint",
        "[\"/bin/cat\"]",
        "--cmd",
        "/usr/share/crtask-demo/version",
        "--env",
        "DEMO=1",
        "--label",
        "org.example.team=patching",
        "--user",
        "nobody",
        &ctr,
    ])?;
    b.run(&[
        "commit",
        "--quiet",
        "--identity-label=false",
        &ctr,
        spec.image,
    ])?;
    b.run(&["rm", &ctr])?;
    b.run(&[
        "push",
        "--quiet",
        spec.image,
        &format!("docker://{}", spec.image),
    ])?;
    Ok(())
}

/// The manifest and config of `repo:tag` in a plain-HTTP registry.
pub fn manifest_and_config(
    registry: &str,
    repo: &str,
    tag: &str,
) -> Result<(serde_json::Value, serde_json::Value)> {
    let http = reqwest::blocking::Client::new();
    let manifest: serde_json::Value = http
        .get(format!("http://{registry}/v2/{repo}/manifests/{tag}"))
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()?
        .error_for_status()?
        .json()?;
    let cfg = manifest["config"]["digest"]
        .as_str()
        .ok_or_else(|| anyhow!("manifest without config: {manifest}"))?;
    let config = http
        .get(format!("http://{registry}/v2/{repo}/blobs/{cfg}"))
        .send()?
        .error_for_status()?
        .json()?;
    Ok((manifest, config))
}

/// The layer digests of a manifest.
pub fn layers(manifest: &serde_json::Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["digest"].as_str().map(str::to_string))
        .collect()
}

/// The paths in a (gzip-compressed) layer blob.
pub fn layer_paths(registry: &str, repo: &str, digest: &str) -> Result<Vec<String>> {
    let bytes = reqwest::blocking::get(format!("http://{registry}/v2/{repo}/blobs/{digest}"))?
        .error_for_status()?
        .bytes()?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut out = Vec::new();
    for e in archive.entries()? {
        out.push(e?.path()?.display().to_string());
    }
    Ok(out)
}

/// The tags of a repository.
pub fn tags(registry: &str, repo: &str) -> Result<Vec<String>> {
    let v: serde_json::Value =
        reqwest::blocking::get(format!("http://{registry}/v2/{repo}/tags/list"))?.json()?;
    let mut t: Vec<String> = v["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    t.sort();
    Ok(t)
}
