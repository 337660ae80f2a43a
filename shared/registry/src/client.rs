//! The registry HTTP client: a manifest `HEAD` with the anonymous bearer
//! token flow, reading `Docker-Content-Digest`, and telling a registry that
//! asks us to slow down (`429`, `5xx`, `Retry-After`) from one that fails.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crtask_core::domain::imageref::ImageRef;
use crtask_core::trigger::registry::poll;
use crtask_core::trigger::request::Headers;

/// Connect timeout of every request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Total timeout of every request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest token endpoint answer read.
const TOKEN_BODY_LIMIT: usize = 64 * 1024;

/// What a manifest `HEAD` told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The tag points to `digest` (with the manifest's media type when the
    /// registry said it).
    Digest {
        /// The `Docker-Content-Digest`.
        digest: String,
        /// The answer's `Content-Type`.
        media_type: Option<String>,
    },
    /// The registry asks us to slow down (`429`/`5xx`), with the
    /// `Retry-After` it sent, if any.
    Backoff {
        /// The parsed `Retry-After`.
        retry_after: Option<Duration>,
        /// Which URL answered what.
        reason: String,
    },
    /// Anything else (network error, `404`, credentials needed, a malformed
    /// answer); the reason names the URL.
    Failed(String),
}

/// A [`Probe`] and how many `HEAD` requests it took (two with the token
/// flow, zero when the reference does not parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The result.
    pub probe: Probe,
    /// `HEAD` requests sent.
    pub requests: usize,
}

/// An anonymous OCI registry client (rustls; 5 s connect, 20 s total).
#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    insecure: Vec<String>,
}

impl RegistryClient {
    /// A client speaking plain HTTP to the registries in `insecure`, HTTPS
    /// to the others.
    pub fn new(insecure: Vec<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "registry client settings refused; using defaults");
                reqwest::Client::new()
            });
        RegistryClient { http, insecure }
    }

    /// `HEAD`s the manifest `image` (a reference as users write it) points
    /// to. `now` is used to read an HTTP-date `Retry-After`.
    pub async fn head_manifest(&self, image: &str, now: DateTime<Utc>) -> Head {
        match ImageRef::parse(image) {
            Ok(r) => self.head(&r, now).await,
            Err(e) => Head {
                probe: Probe::Failed(format!("image reference '{image}' is not valid: {e}")),
                requests: 0,
            },
        }
    }

    /// [`RegistryClient::head_manifest`] for a parsed reference.
    pub async fn head(&self, image: &ImageRef, now: DateTime<Utc>) -> Head {
        let url = poll::manifest_url(image, &self.insecure);
        let mut token: Option<String> = None;
        let mut requests = 0;
        let done = |probe, requests| Head { probe, requests };
        for _ in 0..2 {
            let mut req = self.http.head(&url).header("Accept", poll::MANIFEST_ACCEPT);
            if let Some(t) = &token {
                req = req.bearer_auth(t);
            }
            requests += 1;
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => return done(Probe::Failed(format!("HEAD {url} failed: {e}")), requests),
            };
            let status = resp.status().as_u16();
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            if resp.status().is_success() {
                let pairs: Vec<(String, String)> = header("docker-content-digest")
                    .map(|d| vec![("docker-content-digest".to_string(), d)])
                    .unwrap_or_default();
                let probe = match poll::digest_from_headers(&Headers::new(&pairs)) {
                    Some(digest) => Probe::Digest {
                        digest,
                        media_type: header("content-type"),
                    },
                    None => Probe::Failed(format!(
                        "{url} answered without a valid Docker-Content-Digest"
                    )),
                };
                return done(probe, requests);
            }
            if poll::is_backoff_status(status) {
                let retry_after =
                    header("retry-after").and_then(|v| poll::parse_retry_after(&v, now));
                return done(
                    Probe::Backoff {
                        retry_after,
                        reason: format!("{url} answered {status}"),
                    },
                    requests,
                );
            }
            if status == 401 && token.is_some() {
                return done(
                    Probe::Failed(format!("{url} refused the anonymous token")),
                    requests,
                );
            }
            if status == 401 {
                let Some(challenge) = header("www-authenticate")
                    .as_deref()
                    .and_then(poll::parse_www_authenticate)
                else {
                    return done(
                        Probe::Failed(format!("{url} wants credentials crtask does not have")),
                        requests,
                    );
                };
                match self.token(&challenge, image, &url).await {
                    Ok(t) => token = Some(t),
                    Err(why) => return done(Probe::Failed(why), requests),
                }
                continue;
            }
            return done(Probe::Failed(format!("{url} answered {status}")), requests);
        }
        done(
            Probe::Failed(format!("{url} refused the anonymous token")),
            requests,
        )
    }

    /// Fetches an anonymous pull token for `image`; the error names `url`.
    async fn token(
        &self,
        challenge: &poll::BearerChallenge,
        image: &ImageRef,
        url: &str,
    ) -> std::result::Result<String, String> {
        let scope = poll::pull_scope(image);
        let resp = self
            .http
            .get(challenge.token_url(Some(&scope)))
            .send()
            .await
            .map_err(|e| format!("anonymous token for {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!(
                "anonymous token for {url} refused ({})",
                resp.status()
            ));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > TOKEN_BODY_LIMIT as u64)
        {
            return Err(format!(
                "token for {url}: answer larger than {TOKEN_BODY_LIMIT} bytes"
            ));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("token for {url}: {e}"))?;
        if body.len() > TOKEN_BODY_LIMIT {
            return Err(format!(
                "token for {url}: answer larger than {TOKEN_BODY_LIMIT} bytes"
            ));
        }
        poll::parse_token_response(&body)
            .map(|t| t.token)
            .map_err(|e| format!("token for {url}: {e}"))
    }
}
