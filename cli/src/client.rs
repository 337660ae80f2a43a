//! The HTTP client of the local server's `/api/v1/`.

use anyhow::{anyhow, bail, Context, Result};
use crtask_core::domain::api::{ErrorBody, QuickBuildRequest, TaskRunRequest, UploadResponse};
use crtask_core::domain::model::Task;
use crtask_core::signing::Secret;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::io::Write;

/// A run as the API answers it (`-o json` prints it as is).
pub type RunJson = Value;

pub struct Client {
    base: String,
    http: reqwest::Client,
    /// The API's bearer token, sent with every call when set.
    token: Option<Secret>,
}

fn reach_error(base: &str, e: reqwest::Error) -> anyhow::Error {
    use std::error::Error as _;
    let mut cause = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    anyhow!("cannot reach the crtask server at {base}: {cause} (is `crtask serve` running? set --server or CRTASK_SERVER)")
}

impl Client {
    pub fn new(server: &str, token: Option<Secret>) -> Result<Client> {
        let base = server.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--server '{server}' must be an http:// or https:// URL");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()?;
        Ok(Client { base, http, token })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t.expose()),
            None => req,
        };
        let resp = req.send().await.map_err(|e| reach_error(&self.base, e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let error = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => b.error,
            Err(_) => format!("server answered {status}: {}", text.trim()),
        };
        match status {
            StatusCode::UNAUTHORIZED => bail!(
                "{error} (the CLI sends the token in {} or its config file's api-token)",
                crate::config::TOKEN_ENV
            ),
            StatusCode::NOT_FOUND if error.contains("--api-listen") => {
                bail!("{error}: point --server or CRTASK_SERVER there")
            }
            _ => bail!("{error}"),
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> Result<T> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = self.send(req).await?;
        resp.json::<T>()
            .await
            .context("the server's answer could not be read")
    }

    /// Uploads a tar.gz context file, reporting progress.
    pub async fn upload(
        &self,
        file: std::fs::File,
        len: u64,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<UploadResponse> {
        let file = tokio::fs::File::from_std(file);
        let mut sent = 0u64;
        let stream = read_chunks(file).map(move |chunk| {
            if let Ok(c) = &chunk {
                sent += c.len() as u64;
                progress(sent);
            }
            chunk
        });
        let req = self
            .http
            .post(self.url("/contexts"))
            .header("content-type", "application/gzip")
            .header("content-length", len)
            .body(reqwest::Body::wrap_stream(stream));
        let resp = self.send(req).await?;
        Ok(resp.json().await?)
    }

    pub async fn quick_build(&self, req: &QuickBuildRequest) -> Result<RunJson> {
        self.json(Method::POST, "/builds", Some(req)).await
    }

    pub async fn patch(&self, req: &crtask_core::domain::api::PatchApiRequest) -> Result<RunJson> {
        self.json(Method::POST, "/patches", Some(req)).await
    }

    pub async fn set_patch_config(
        &self,
        req: &crtask_core::domain::api::PatchConfigRequest,
    ) -> Result<serde_json::Value> {
        self.json(Method::PUT, "/patch-config", Some(req)).await
    }

    pub async fn patch_config(&self) -> Result<serde_json::Value> {
        self.json(Method::GET, "/patch-config", None::<&()>).await
    }

    pub async fn delete_patch_config(&self) -> Result<serde_json::Value> {
        self.json(Method::DELETE, "/patch-config", None::<&()>)
            .await
    }

    pub async fn run(&self, id: &str) -> Result<RunJson> {
        self.json(Method::GET, &format!("/runs/{}", enc(id)), None::<&()>)
            .await
    }

    /// A run's notifications and their delivery attempts.
    pub async fn notifications(
        &self,
        id: &str,
    ) -> Result<Vec<crtask_core::notify::NotificationRecord>> {
        self.json(
            Method::GET,
            &format!("/runs/{}/notifications", enc(id)),
            None::<&()>,
        )
        .await
    }

    pub async fn runs(
        &self,
        task: Option<&str>,
        status: Option<&str>,
        top: Option<usize>,
    ) -> Result<Vec<RunJson>> {
        let mut q: Vec<(&str, String)> = Vec::new();
        if let Some(t) = task {
            q.push(("task", t.to_string()));
        }
        if let Some(s) = status {
            q.push(("status", s.to_string()));
        }
        if let Some(t) = top {
            q.push(("top", t.to_string()));
        }
        let resp = self
            .send(self.http.get(self.url("/runs")).query(&q))
            .await?;
        Ok(resp.json().await?)
    }

    pub async fn cancel(&self, id: &str) -> Result<RunJson> {
        self.json(
            Method::POST,
            &format!("/runs/{}/cancel", enc(id)),
            None::<&()>,
        )
        .await
    }

    /// Copies the run's log to `out`; with `follow`, until the run ends.
    pub async fn log(&self, id: &str, follow: bool, out: &mut (dyn Write + Send)) -> Result<()> {
        let req = self
            .http
            .get(self.url(&format!("/runs/{}/log", enc(id))))
            .query(&[("follow", follow)]);
        let resp = self.send(req).await?;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| anyhow!("the log stream broke off: {e}"))?;
            out.write_all(&chunk)?;
            out.flush()?;
        }
        Ok(())
    }

    pub async fn events(
        &self,
        source: Option<&str>,
        top: usize,
    ) -> Result<Vec<crtask_core::domain::model::EventRecord>> {
        let mut q: Vec<(&str, String)> = vec![("top", top.to_string())];
        if let Some(s) = source {
            q.push(("source", s.to_string()));
        }
        let resp = self
            .send(self.http.get(self.url("/events")).query(&q))
            .await?;
        Ok(resp.json().await?)
    }

    pub async fn dependents(&self, image: &str) -> Result<Value> {
        let resp = self
            .send(
                self.http
                    .get(self.url("/images/dependents"))
                    .query(&[("image", image)]),
            )
            .await?;
        Ok(resp.json().await?)
    }

    pub async fn task_dependencies(
        &self,
        name: &str,
    ) -> Result<Vec<crtask_core::domain::model::BaseDependency>> {
        self.json(
            Method::GET,
            &format!("/tasks/{}/dependencies", enc(name)),
            None::<&()>,
        )
        .await
    }

    pub async fn tasks(&self) -> Result<Vec<Task>> {
        self.json(Method::GET, "/tasks", None::<&()>).await
    }

    pub async fn task(&self, name: &str) -> Result<Task> {
        self.json(Method::GET, &format!("/tasks/{}", enc(name)), None::<&()>)
            .await
    }

    pub async fn create_task(&self, t: &Task) -> Result<Task> {
        self.json(Method::POST, "/tasks", Some(t)).await
    }

    pub async fn update_task(&self, t: &Task) -> Result<Task> {
        self.json(Method::PUT, &format!("/tasks/{}", enc(&t.name)), Some(t))
            .await
    }

    pub async fn delete_task(&self, name: &str) -> Result<()> {
        let resp = self
            .send(self.http.delete(self.url(&format!("/tasks/{}", enc(name)))))
            .await?;
        if resp.status() != StatusCode::NO_CONTENT && !resp.status().is_success() {
            bail!("unexpected answer {}", resp.status());
        }
        Ok(())
    }

    pub async fn run_task(&self, name: &str, req: &TaskRunRequest) -> Result<RunJson> {
        self.json(
            Method::POST,
            &format!("/tasks/{}/runs", enc(name)),
            Some(req),
        )
        .await
    }
}

/// Everything but RFC 3986 unreserved characters is escaped in a path segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a path segment.
fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

fn read_chunks(f: tokio::fs::File) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> {
    futures_util::stream::unfold(f, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_escape_all_but_unreserved() {
        assert_eq!(super::enc("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(super::enc("a/b c%é"), "a%2Fb%20c%25%C3%A9");
    }
}
