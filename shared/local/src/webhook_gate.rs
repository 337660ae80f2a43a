//! What a webhook request passes before its body is handled: a credential
//! header must be present (checked before a byte of the body is read), the
//! declared size must fit the limit, and the body must fit the memory budget
//! shared by all requests (bytes of bodies in flight). The signature itself
//! is checked afterwards, by the trigger handlers in core, on the raw bytes.

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::{Bytes, BytesMut};
use crtask_core::domain::model::EventSource;
use crtask_core::trigger::git::verify::{self, Provider};
use crtask_core::trigger::request::HeaderLookup;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a body waits for room in the memory budget before a 503.
pub const BUDGET_WAIT: Duration = Duration::from_secs(10);

/// Why a webhook request was refused before its handler ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

impl Refusal {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            reason: reason.into(),
        }
    }
}

/// Core's header lookup over an `http::HeaderMap`.
struct HttpHeaders<'a>(&'a HeaderMap);

impl HeaderLookup for HttpHeaders<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

fn present(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .any(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace))
}

/// Refuses, from the headers alone, a delivery that could never be
/// accepted: a git delivery naming no provider (400, as core answers it) or
/// lacking its provider's signature or token header, a registry
/// notification with neither `Authorization` nor `X-Crtask-Signature`
/// (401). Blank headers count as absent.
pub fn require_credential(source: EventSource, headers: &HeaderMap) -> Result<(), Refusal> {
    let (names, missing): (Vec<&str>, String) = match source {
        EventSource::Git => {
            let Some(provider) = verify::detect_provider(&HttpHeaders(headers)) else {
                return Err(Refusal::new(
                    400,
                    "unknown sender: expected a GitHub, GitLab, Gitea, Forgejo or Bitbucket event header",
                ));
            };
            let mut names = vec![provider.signature_header()];
            if provider == Provider::Forgejo {
                names.push(Provider::Gitea.signature_header());
            }
            let missing = verify::VerifyError::Missing(provider.signature_header()).to_string();
            (names, missing)
        }
        _ => {
            let names = vec![
                "Authorization",
                crtask_core::trigger::registry::verify::SIGNATURE_HEADER,
            ];
            let missing = format!("missing credential: send {}", names.join(" or "));
            (names, missing)
        }
    };
    if names.iter().any(|n| present(headers, n)) {
        Ok(())
    } else {
        Err(Refusal::new(401, missing))
    }
}

/// The declared `Content-Length`, if any and well-formed.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Bytes of webhook bodies held in memory at once, all requests together.
#[derive(Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: u64,
    wait: Duration,
}

/// Room in the budget, given back when dropped.
pub struct Reserved(#[allow(dead_code)] OwnedSemaphorePermit);

impl BodyBudget {
    /// `total` bytes; a body waits up to `wait` for room.
    pub fn new(total: u64, wait: Duration) -> Self {
        let total = total.clamp(1, Semaphore::MAX_PERMITS as u64);
        BodyBudget {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
            wait,
        }
    }

    /// Reserves room for a body of the declared length (`limit` when none is
    /// declared), waiting up to 10 s; 413 when the declared length is over
    /// `limit`, 503 when no room frees.
    pub async fn reserve(&self, headers: &HeaderMap, limit: usize) -> Result<Reserved, Refusal> {
        let declared = declared_length(headers);
        if let Some(n) = declared.filter(|n| *n > limit as u64) {
            return Err(Refusal::new(
                413,
                format!("body of {n} bytes is over the limit of {limit} bytes"),
            ));
        }
        // One body larger than the whole budget may still go alone.
        let want = declared.unwrap_or(limit as u64).min(self.total).max(1);
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        match tokio::time::timeout(self.wait, self.bytes.clone().acquire_many_owned(want)).await {
            Ok(Ok(p)) => Ok(Reserved(p)),
            _ => Err(Refusal::new(
                503,
                "the server is receiving too many request bodies at once; retry shortly",
            )),
        }
    }
}

/// Reads a body of at most `limit` bytes: 413 past the limit, 408 when the
/// body deadline passes, 400 when the client breaks off.
pub async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, Refusal> {
    let capacity = declared_length(headers).unwrap_or(0).min(limit as u64) as usize;
    let mut buf = BytesMut::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            if crate::listener::is_body_timeout(&e) {
                Refusal::new(408, e.to_string())
            } else {
                Refusal::new(400, format!("the request body broke off: {e}"))
            }
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(Refusal::new(
                413,
                format!("body is over the limit of {limit} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.append(*k, v);
            }
        }
        h
    }

    #[test]
    fn a_credential_header_is_required() {
        let gh = ("x-github-event", "push");
        for (source, h, want) in [
            (
                EventSource::Git,
                headers(&[gh, ("x-hub-signature-256", "sha256=00")]),
                None,
            ),
            (
                EventSource::Git,
                headers(&[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", "t")]),
                None,
            ),
            (
                EventSource::Git,
                headers(&[("x-forgejo-event", "push"), ("x-gitea-signature", "ab")]),
                None,
            ),
            (
                EventSource::Git,
                headers(&[("x-event-key", "repo:push"), ("x-hub-signature", "s")]),
                None,
            ),
            (
                EventSource::Git,
                headers(&[gh]),
                Some((401, "missing X-Hub-Signature-256 header")),
            ),
            (
                EventSource::Git,
                headers(&[gh, ("x-hub-signature-256", "  ")]),
                Some((401, "missing X-Hub-Signature-256")),
            ),
            (
                EventSource::Git,
                headers(&[gh, ("x-gitlab-token", "t")]),
                Some((401, "missing X-Hub-Signature-256")),
            ),
            (
                EventSource::Git,
                headers(&[("x-hub-signature-256", "sha256=00")]),
                Some((400, "unknown sender")),
            ),
            (
                EventSource::Git,
                HeaderMap::new(),
                Some((400, "unknown sender")),
            ),
            (
                EventSource::Registry,
                headers(&[("authorization", "Bearer t")]),
                None,
            ),
            (
                EventSource::Registry,
                headers(&[("x-crtask-signature", "sha256=0")]),
                None,
            ),
            (
                EventSource::Registry,
                headers(&[("x-hub-signature-256", "sha256=0")]),
                Some((401, "missing credential")),
            ),
            (
                EventSource::Registry,
                HeaderMap::new(),
                Some((401, "missing credential")),
            ),
        ] {
            let got = require_credential(source, &h);
            match (want, got) {
                (None, Ok(())) => {}
                (Some((code, text)), Err(r)) => {
                    assert_eq!(r.status, code, "{h:?}: {}", r.reason);
                    assert!(r.reason.contains(text), "{h:?}: {}", r.reason);
                }
                (want, got) => panic!("{source:?} {h:?}: expected {want:?}, got {got:?}"),
            }
        }
    }

    #[tokio::test]
    async fn the_budget_bounds_bodies_in_flight() {
        let budget = BodyBudget::new(100, BUDGET_WAIT);
        let h = headers(&[("content-length", "60")]);
        let first = budget.reserve(&h, 1000).await;
        assert!(first.is_ok());
        // The second waits for room; it gets it once the first is done.
        let b2 = budget.clone();
        let h2 = h.clone();
        let second = tokio::spawn(async move { b2.reserve(&h2, 1000).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished());
        drop(first);
        assert!(second.await.unwrap_or(false));
        // Declared over the limit: 413 before anything is read.
        let big = headers(&[("content-length", "1001")]);
        assert_eq!(
            budget.reserve(&big, 1000).await.err().map(|r| r.status),
            Some(413)
        );
        // Nothing declared: the whole limit (capped at the budget) is reserved.
        assert!(budget.reserve(&HeaderMap::new(), 1000).await.is_ok());
    }

    #[tokio::test]
    async fn a_full_budget_answers_503_after_waiting() {
        let budget = BodyBudget::new(10, Duration::from_millis(50));
        let h = headers(&[("content-length", "10")]);
        let _held = budget.reserve(&h, 100).await;
        let r = budget.reserve(&h, 100).await;
        assert_eq!(r.err().map(|r| r.status), Some(503));
    }

    #[tokio::test]
    async fn bodies_past_the_limit_are_413() {
        let h = HeaderMap::new();
        let ok = read_body(Body::from("12345"), &h, 5).await;
        assert_eq!(ok.ok().as_deref(), Some(&b"12345"[..]));
        let over = read_body(Body::from("123456"), &h, 5).await;
        assert_eq!(over.err().map(|r| r.status), Some(413));
    }
}
