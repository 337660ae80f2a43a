//! A private `moto_server` (the AWS emulator) for end-to-end tests of what
//! `crtask exec` reads from AWS, with the calls the tests need made over
//! plain HTTP (moto does not check signatures).

use anyhow::{bail, Context, Result};
use std::process::{Child, Command, Stdio};

/// A running `moto_server` on a free loopback port; stopped on drop.
pub struct MotoServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    _dir: tempfile::TempDir,
}

impl MotoServer {
    /// Starts one (`moto_server` must be installed: `infra/local/setup.sh`).
    pub fn start() -> Result<MotoServer> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("moto.log");
        let port = crate::free_port();
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("cannot start moto_server (is it installed?)")?;
        let url = format!("http://127.0.0.1:{port}");
        crate::wait_http(&format!("{url}/moto-api/"), &mut child, "moto_server", &log)?;
        Ok(MotoServer {
            child,
            url,
            _dir: dir,
        })
    }

    /// The environment that points the AWS SDK of a `crtask` process here.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.url.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Creates a Secrets Manager secret `name` holding `value`; its ARN.
    pub fn create_secret(&self, name: &str, value: &str) -> Result<String> {
        let body = serde_json::json!({"Name": name, "SecretString": value});
        let r = reqwest::blocking::Client::new()
            .post(&self.url)
            .header("X-Amz-Target", "secretsmanager.CreateSecret")
            .header("Content-Type", "application/x-amz-json-1.1")
            // moto routes by the credential scope's service.
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()?;
        let status = r.status();
        let text = r.text()?;
        if !status.is_success() {
            bail!("CreateSecret failed ({status}): {text}");
        }
        let v: serde_json::Value = serde_json::from_str(&text)?;
        match v["ARN"].as_str() {
            Some(arn) => Ok(arn.to_string()),
            None => bail!("CreateSecret answered no ARN: {text}"),
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
