//! A CNCF distribution registry (`docker-registry`) that requires one HTTP
//! Basic credential (`htpasswd`, bcrypt by Apache's `htpasswd -B`): the
//! stand-in for a private ECR registry, whose credential is the token
//! `GetAuthorizationToken` returns. Blocking; the process is killed on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A running registry on plain HTTP that only lets `user`/`password` in.
pub struct AuthRegistry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub host: String,
    dir: PathBuf,
    user: String,
    password: String,
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

impl AuthRegistry {
    /// Starts a registry whose `htpasswd` holds `user`/`password`.
    pub fn start(user: &str, password: &str) -> AuthRegistry {
        let dir = std::env::temp_dir().join(super::unique("crtask-authreg"));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("htpasswd")
            .args(["-nbB", user, password])
            .output()
            .expect("htpasswd is not installed (apt-get install apache2-utils; infra/local/setup.sh does)");
        assert!(out.status.success(), "htpasswd failed");
        std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let cfg = format!(
            "version: 0.1\nlog: {{level: info}}\nstorage:\n  filesystem: {{rootdirectory: \"{data}\"}}\nhttp: {{addr: \"{host}\"}}\nauth:\n  htpasswd: {{realm: crtask-test, path: \"{pw}\"}}\n",
            data = dir.join("data").display(),
            pw = dir.join("htpasswd").display(),
        );
        std::fs::write(dir.join("config.yml"), cfg).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start docker-registry (run infra/local/setup.sh)");
        let reg = AuthRegistry {
            child,
            host,
            dir,
            user: user.into(),
            password: password.into(),
        };
        let http = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Up when it asks for the credential.
            if let Ok(r) = http.get(format!("http://{}/v2/", reg.host)).send() {
                if r.status().as_u16() == 401 {
                    return reg;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer: {}",
                reg.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://<host>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// The registry's log (access log included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Pushes a one-layer OCI image as `repo:tag` with the credential;
    /// `content` varies it. Returns the manifest digest.
    pub fn push(&self, repo: &str, tag: &str, content: &str) -> String {
        let http = reqwest::blocking::Client::new();
        let auth =
            |r: reqwest::blocking::RequestBuilder| r.basic_auth(&self.user, Some(&self.password));
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"v":"{content}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let mut descriptors = Vec::new();
        for (media, blob) in [
            (
                "application/vnd.oci.image.config.v1+json",
                config.into_bytes(),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar",
                format!("layer {content}").into_bytes(),
            ),
        ] {
            let digest = sha256(&blob);
            let start = auth(http.post(format!("{}/v2/{repo}/blobs/uploads/", self.url())))
                .send()
                .unwrap();
            assert_eq!(start.status().as_u16(), 202, "start upload");
            let loc = start.headers()["location"].to_str().unwrap().to_string();
            let loc = if loc.starts_with('/') {
                format!("{}{loc}", self.url())
            } else {
                loc
            };
            let sep = if loc.contains('?') { '&' } else { '?' };
            let put = auth(http.put(format!("{loc}{sep}digest={digest}")))
                .header("content-type", "application/octet-stream")
                .body(blob.clone())
                .send()
                .unwrap();
            assert_eq!(put.status().as_u16(), 201, "blob upload");
            descriptors.push(serde_json::json!({
                "mediaType": media, "digest": digest, "size": blob.len()
            }));
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptors[0],
            "layers": [descriptors[1]],
        }))
        .unwrap();
        let put = auth(http.put(format!("{}/v2/{repo}/manifests/{tag}", self.url())))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .unwrap();
        assert_eq!(put.status().as_u16(), 201, "manifest push");
        sha256(&manifest)
    }

    /// How many manifest `HEAD`s were answered `code` (from the access log).
    pub fn manifest_heads(&self, repo: &str, code: u16) -> usize {
        let needle = format!("\"HEAD /v2/{repo}/manifests/");
        self.log()
            .lines()
            .filter(|l| l.contains(&needle) && l.contains(&format!("\" {code} ")))
            .count()
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The token moto's (or AWS's) `GetAuthorizationToken` gives for
/// `account`, decoded: (`AWS`, password).
pub async fn ecr_token(account: &str) -> (String, String) {
    use base64::Engine;
    let sdk = super::sdk_config().await;
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    #[allow(deprecated)]
    let out = ecr
        .get_authorization_token()
        .registry_ids(account)
        .send()
        .await
        .expect("GetAuthorizationToken");
    let token = out.authorization_data()[0].authorization_token().unwrap();
    let text = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap(),
    )
    .unwrap();
    let (u, p) = text.split_once(':').unwrap();
    (u.to_string(), p.to_string())
}

/// Creates ECR repository `repo` (moto or AWS) holding one image tagged
/// with each of `tags` (`PutImage` of a small manifest per tag).
pub async fn ecr_repository_with_tags(repo: &str, tags: &[&str]) {
    let sdk = super::sdk_config().await;
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    ecr.create_repository()
        .repository_name(repo)
        .send()
        .await
        .expect("CreateRepository");
    for (i, tag) in tags.iter().enumerate() {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": 100 + i, "digest": format!("sha256:{:064x}", i + 1)},
            "layers": []
        });
        ecr.put_image()
            .repository_name(repo)
            .image_tag(*tag)
            .image_manifest(manifest.to_string())
            .send()
            .await
            .expect("PutImage");
    }
}
