//! The registry HTTP client: a manifest `HEAD` with the bearer token flow
//! (anonymous, or with the registry's credential), HTTP Basic for
//! registries that ask for it (ECR, `htpasswd`), reading `Docker-Content-Digest`, and telling a registry that
//! asks us to slow down (`429`, `5xx`, `Retry-After`) from one that fails.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use crtask_core::domain::imageref::ImageRef;
use crtask_core::trigger::registry::credentials::{self, Anonymous, Credential, CredentialSource};
use crtask_core::trigger::registry::poll;
use crtask_core::trigger::request::Headers;

/// Connect timeout of every request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Total timeout of every request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest token endpoint answer read.
const TOKEN_BODY_LIMIT: usize = 64 * 1024;
/// The largest image index read (indexes list a few platforms: a few KiB).
const MANIFEST_BODY_LIMIT: usize = 4 * 1024 * 1024;

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
    /// The registry wants credentials crtask lacks, or refused the ones it
    /// sent (the reason names the URL and host, never the credential).
    Unauthorized(String),
    /// Anything else (network error, `404`, a malformed answer); the reason
    /// names the URL.
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

/// An OCI registry client (rustls; 5 s connect, 20 s total): anonymous
/// first, with a registry's credential when it answers `401` (HTTP Basic,
/// or Basic on the bearer token request), from its [`CredentialSource`].
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    insecure: Vec<String>,
    credentials: Arc<dyn CredentialSource>,
    endpoints: BTreeMap<String, String>,
    /// Registries that asked for HTTP Basic: later requests send the
    /// credential at once (one `HEAD` per reference instead of two).
    basic: Arc<Mutex<BTreeSet<String>>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("insecure", &self.insecure)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// How a request is authorised.
enum Auth {
    None,
    Bearer(String),
    Basic(String),
}

impl RegistryClient {
    /// A client speaking plain HTTP to the registries in `insecure`, HTTPS
    /// to the others, without credentials.
    pub fn new(insecure: Vec<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "registry client settings refused; using defaults");
                reqwest::Client::new()
            });
        RegistryClient {
            http,
            insecure,
            credentials: Arc::new(Anonymous),
            endpoints: BTreeMap::new(),
            basic: Arc::default(),
        }
    }

    /// Uses `source` for registries that answer `401`.
    pub fn with_credentials(mut self, source: Arc<dyn CredentialSource>) -> Self {
        self.credentials = source;
        self
    }

    /// FOR TESTS ONLY: sends the requests for registry `host` (the key) to
    /// another base URL (`http://127.0.0.1:5000`), so a test can stand a
    /// local registry in for a name such as
    /// `123456789012.dkr.ecr.us-east-1.amazonaws.com` that it cannot serve.
    /// Which credential is used still follows the image's own registry
    /// name; nothing about matching ECR hosts changes.
    pub fn with_endpoints(mut self, endpoints: BTreeMap<String, String>) -> Self {
        self.endpoints = endpoints
            .into_iter()
            .map(|(h, u)| (h.to_ascii_lowercase(), u))
            .collect();
        self
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

    fn url(&self, image: &ImageRef) -> String {
        match self.endpoints.get(&image.registry.to_ascii_lowercase()) {
            Some(base) => poll::manifest_url_on(base, image),
            None => poll::manifest_url(image, &self.insecure),
        }
    }

    fn knows_basic(&self, host: &str) -> bool {
        self.basic.lock().is_ok_and(|b| b.contains(host))
    }

    /// The credential for `host`, or the reason to record.
    async fn credential(&self, host: &str) -> std::result::Result<Option<Credential>, String> {
        self.credentials
            .credential(host)
            .await
            .map_err(|why| format!("credentials for {host}: {why}"))
    }

    /// [`RegistryClient::head_manifest`] for a parsed reference.
    pub async fn head(&self, image: &ImageRef, now: DateTime<Utc>) -> Head {
        self.manifest(image, now, false).await.0
    }

    /// The platforms of the image index `image` (a reference, usually by
    /// digest) with their manifest digests: `GET` with the same credentials
    /// as [`RegistryClient::head`]. `None` when the manifest is not an
    /// index or cannot be read (the caller then knows nothing more).
    pub async fn index_platforms(
        &self,
        image: &ImageRef,
        now: DateTime<Utc>,
    ) -> Option<Vec<crtask_core::domain::model::PlatformImage>> {
        let (head, body) = self.manifest(image, now, true).await;
        if !matches!(head.probe, Probe::Digest { .. }) {
            return None;
        }
        let doc: serde_json::Value = serde_json::from_slice(&body?).ok()?;
        crtask_core::domain::platform::index_platforms(&doc)
    }

    /// `HEAD` (or `GET`, returning the body) of `image`'s manifest.
    async fn manifest(
        &self,
        image: &ImageRef,
        now: DateTime<Utc>,
        get: bool,
    ) -> (Head, Option<Vec<u8>>) {
        let url = self.url(image);
        let host = image.registry.to_ascii_lowercase();
        let mut requests = 0;
        let done = |probe, requests| (Head { probe, requests }, None);
        let mut auth = Auth::None;
        // With a credential sent (directly or for the token) a 401 means it
        // was refused.
        let mut credentialed = false;
        if self.knows_basic(&host) {
            match self.credential(&host).await {
                Ok(Some(c)) => {
                    auth = Auth::Basic(c.basic());
                    credentialed = true;
                }
                Ok(None) => {}
                Err(why) => return done(Probe::Unauthorized(why), requests),
            }
        }
        for _ in 0..3 {
            let mut req = if get {
                self.http.get(&url)
            } else {
                self.http.head(&url)
            }
            .header("Accept", poll::MANIFEST_ACCEPT);
            match &auth {
                Auth::None => {}
                Auth::Bearer(t) => req = req.bearer_auth(t),
                Auth::Basic(b) => req = req.header("Authorization", format!("Basic {b}")),
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
                if !get {
                    return done(probe, requests);
                }
                let bytes = match resp.bytes().await {
                    Ok(b) if b.len() <= MANIFEST_BODY_LIMIT => Some(b.to_vec()),
                    _ => None,
                };
                return (Head { probe, requests }, bytes);
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
            if status == 401 && credentialed {
                return done(
                    Probe::Unauthorized(format!(
                        "{url} refused the credential crtask has for {host} (401): renew it, or check the role may read the repository"
                    )),
                    requests,
                );
            }
            if status == 401 && matches!(auth, Auth::Bearer(_)) {
                return done(
                    Probe::Failed(format!("{url} refused the anonymous token")),
                    requests,
                );
            }
            if status == 401 {
                let challenge = header("www-authenticate").unwrap_or_default();
                if credentials::wants_basic(&challenge) {
                    if let Ok(mut b) = self.basic.lock() {
                        b.insert(host.clone());
                    }
                    match self.credential(&host).await {
                        Ok(Some(c)) => {
                            auth = Auth::Basic(c.basic());
                            credentialed = true;
                            continue;
                        }
                        Ok(None) => {
                            return done(
                                Probe::Unauthorized(format!(
                                    "{url} wants credentials and none are configured for {host}"
                                )),
                                requests,
                            )
                        }
                        Err(why) => return done(Probe::Unauthorized(why), requests),
                    }
                }
                let Some(challenge) = poll::parse_www_authenticate(&challenge) else {
                    return done(
                        Probe::Failed(format!("{url} wants credentials crtask does not have")),
                        requests,
                    );
                };
                let cred = match self.credential(&host).await {
                    Ok(c) => c,
                    Err(why) => return done(Probe::Unauthorized(why), requests),
                };
                credentialed = cred.is_some();
                match self.token(&challenge, image, &url, cred.as_ref()).await {
                    Ok(t) => auth = Auth::Bearer(t),
                    Err(why) if credentialed => return done(Probe::Unauthorized(why), requests),
                    Err(why) => return done(Probe::Failed(why), requests),
                }
                continue;
            }
            return done(Probe::Failed(format!("{url} answered {status}")), requests);
        }
        done(Probe::Failed(format!("{url} kept answering 401")), requests)
    }

    /// Fetches a pull token for `image`, anonymous or with `cred` (HTTP
    /// Basic on the token request); the error names `url`.
    async fn token(
        &self,
        challenge: &poll::BearerChallenge,
        image: &ImageRef,
        url: &str,
        cred: Option<&Credential>,
    ) -> std::result::Result<String, String> {
        let scope = poll::pull_scope(image);
        let kind = if cred.is_some() {
            "token with the configured credential"
        } else {
            "anonymous token"
        };
        let mut req = self.http.get(challenge.token_url(Some(&scope)));
        if let Some(c) = cred {
            req = req.header("Authorization", format!("Basic {}", c.basic()));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{kind} for {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{kind} for {url} refused ({})", resp.status()));
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
