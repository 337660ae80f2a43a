//! Who may use the management API (`/api/v1/`, on `--api-listen`).
//!
//! The API is served on its own listener, apart from the public webhook
//! listener. Without `--api-token-file` it is open, and so it must be bound
//! to a loopback address ([`check_exposure`] refuses anything else at
//! start-up). With one or more token files, every API request must carry
//! `Authorization: Bearer <token>` matching one of them, on loopback too.
//!
//! The files are read at each request (like the webhook secrets), so a
//! token is rotated by editing a file, or by adding a second file, moving
//! the clients over and dropping the first, without a restart. A file that
//! turns unreadable or empty while the server runs verifies nothing: the
//! API then refuses every call rather than opening up.
//!
//! Tokens are compared in constant time by [`crtask_core::signing`].
//!
//! An open API also checks the `Host` header: only an IP address or
//! `localhost` is served, so a web page cannot reach it through DNS
//! rebinding (a name of the attacker's that resolves to 127.0.0.1 makes the
//! browser send that name as the host).

use crate::{Error, Result};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use crtask_core::domain::api::ErrorBody;
use crtask_core::domain::host::is_ip_or_localhost;
use crtask_core::signing::{token_matches_any, usable, Secret};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The API's credentials: the token files, read at each request.
#[derive(Clone, Debug, Default)]
pub struct ApiAuth {
    token_files: Arc<Vec<PathBuf>>,
}

impl ApiAuth {
    /// Checks that each file is readable and holds a token now (a typo in a
    /// path must stop the server, not leave the API refusing everyone).
    pub fn from_files(files: Vec<PathBuf>) -> Result<ApiAuth> {
        for f in &files {
            let text = std::fs::read_to_string(f).map_err(|e| {
                Error::Config(format!("cannot read API token file {}: {e}", f.display()))
            })?;
            if Secret::from_file_text(&text).is_empty() {
                return Err(Error::Config(format!(
                    "API token file {} is empty",
                    f.display()
                )));
            }
        }
        Ok(ApiAuth {
            token_files: Arc::new(files),
        })
    }

    /// True when calls must carry a token.
    pub fn required(&self) -> bool {
        !self.token_files.is_empty()
    }

    fn tokens(&self) -> Vec<Secret> {
        self.token_files
            .iter()
            .filter_map(|p| match std::fs::read_to_string(p) {
                Ok(t) => Some(Secret::from_file_text(&t)),
                Err(e) => {
                    tracing::warn!("cannot read API token file {}: {e}", p.display());
                    None
                }
            })
            .collect()
    }

    /// Whether a request with these headers may use the API.
    pub fn allows(&self, headers: &HeaderMap) -> Verdict {
        if !self.required() {
            return match headers.get(header::HOST).map(|h| h.to_str()) {
                // No Host (HTTP/1.0): no browser sends that.
                None => Verdict::Allowed,
                Some(Ok(h)) if is_ip_or_localhost(h) => Verdict::Allowed,
                Some(_) => Verdict::ForeignHost,
            };
        }
        let Some(token) = bearer(headers) else {
            return Verdict::Missing;
        };
        let tokens = self.tokens();
        if token_matches_any(token, &usable(&tokens)) {
            Verdict::Allowed
        } else {
            Verdict::Wrong
        }
    }
}

/// What [`ApiAuth::allows`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token that none of the files holds.
    Wrong,
    /// An open API called under a host name other than `localhost`.
    ForeignHost,
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is
/// case-insensitive, as RFC 7235 says).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Refuses to expose an unauthenticated API: without a token, the API may
/// only be bound to a loopback address.
pub fn check_exposure(api_listen: SocketAddr, auth: &ApiAuth) -> Result<()> {
    if auth.required() || api_listen.ip().is_loopback() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "--api-listen {api_listen} is not a loopback address: the management API can \
         create tasks and start builds, so it needs --api-token-file there \
         (or bind it to 127.0.0.1)"
    )))
}

/// Middleware: the API's routes answer `401 {"error"}` to calls without
/// the right bearer token.
pub async fn require_token(State(auth): State<ApiAuth>, req: Request, next: Next) -> Response {
    let error = match auth.allows(req.headers()) {
        Verdict::Allowed => return next.run(req).await,
        Verdict::ForeignHost => {
            return crate::json_errors::error_response(
                StatusCode::FORBIDDEN,
                "without --api-token-file the API answers only requests addressed to \
                 localhost or an IP address",
            )
        }
        Verdict::Missing => "this API needs a token: send Authorization: Bearer <token>",
        Verdict::Wrong => "the API token is wrong",
    };
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        Json(ErrorBody {
            error: error.to_string(),
        }),
    )
        .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"crtask\""),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth_with(token: &str) -> (tempfile::TempDir, ApiAuth) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, format!("{token}\n")).unwrap();
        let auth = ApiAuth::from_files(vec![f]).unwrap();
        (dir, auth)
    }

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn an_open_api_must_be_on_loopback() {
        let open = ApiAuth::default();
        assert!(check_exposure("127.0.0.1:7879".parse().unwrap(), &open).is_ok());
        assert!(check_exposure("127.0.0.2:7879".parse().unwrap(), &open).is_ok());
        assert!(check_exposure("[::1]:7879".parse().unwrap(), &open).is_ok());
        for addr in [
            "0.0.0.0:7879",
            "[::]:7879",
            "10.0.0.5:7879",
            "[::ffff:127.0.0.1]:1",
        ] {
            let e = check_exposure(addr.parse().unwrap(), &open).unwrap_err();
            assert!(e.to_string().contains("--api-token-file"), "{addr}: {e}");
        }
        let (_d, auth) = auth_with("t0ken");
        assert!(check_exposure("0.0.0.0:7879".parse().unwrap(), &auth).is_ok());
    }

    fn host(h: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::HOST, HeaderValue::from_str(h).unwrap());
        m
    }

    #[test]
    fn an_open_api_serves_only_ip_and_localhost_hosts() {
        let open = ApiAuth::default();
        for h in [
            "127.0.0.1:7879",
            "127.0.0.1",
            "[::1]:7879",
            "[::1]",
            "localhost",
            "LocalHost:7879",
            "10.1.2.3:80",
        ] {
            assert_eq!(open.allows(&host(h)), Verdict::Allowed, "{h}");
        }
        for h in [
            "evil.example:7879",
            "evil.example",
            "localhost.evil.example:7879",
            "[::1",
            "127.0.0.1.nip.io:7879",
            "",
        ] {
            assert_eq!(open.allows(&host(h)), Verdict::ForeignHost, "{h}");
        }
        // With a token the name does not matter: the token does.
        let (_d, auth) = auth_with("t0ken");
        let mut h = host("evil.example");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0ken"),
        );
        assert_eq!(auth.allows(&h), Verdict::Allowed);
    }

    #[test]
    fn tokens_are_checked_when_configured() {
        assert_eq!(
            ApiAuth::default().allows(&HeaderMap::new()),
            Verdict::Allowed
        );
        let (_d, auth) = auth_with("t0ken");
        assert_eq!(auth.allows(&HeaderMap::new()), Verdict::Missing);
        assert_eq!(auth.allows(&headers("Bearer t0ken")), Verdict::Allowed);
        assert_eq!(auth.allows(&headers("bearer  t0ken ")), Verdict::Allowed);
        assert_eq!(auth.allows(&headers("Bearer t0ke")), Verdict::Wrong);
        assert_eq!(auth.allows(&headers("Bearer t0ken2")), Verdict::Wrong);
        assert_eq!(auth.allows(&headers("Basic t0ken")), Verdict::Missing);
        assert_eq!(auth.allows(&headers("Bearer ")), Verdict::Missing);
        assert_eq!(auth.allows(&headers("t0ken")), Verdict::Missing);
    }

    #[test]
    fn a_token_file_is_reread_and_fails_closed() {
        let (dir, auth) = auth_with("old");
        let f = dir.path().join("token");
        std::fs::write(&f, "new\n").unwrap();
        assert_eq!(auth.allows(&headers("Bearer new")), Verdict::Allowed);
        assert_eq!(auth.allows(&headers("Bearer old")), Verdict::Wrong);
        // Emptied or removed: nothing verifies, not even an empty token.
        std::fs::write(&f, "\n").unwrap();
        assert_eq!(auth.allows(&headers("Bearer new")), Verdict::Wrong);
        std::fs::remove_file(&f).unwrap();
        assert_eq!(auth.allows(&headers("Bearer new")), Verdict::Wrong);
    }

    #[test]
    fn unusable_token_files_stop_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = ApiAuth::from_files(vec![missing]).unwrap_err();
        assert!(e.to_string().contains("cannot read API token file"), "{e}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, " \n").unwrap();
        let e = ApiAuth::from_files(vec![empty]).unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
    }
}
