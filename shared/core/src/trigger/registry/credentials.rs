//! Registry credentials for the digest poller, as decisions: which hosts are
//! Amazon ECR (their credential is an authorization token from
//! `GetAuthorizationToken`), how a credential travels (HTTP Basic, or Basic
//! on a bearer token request), when a cached token must be renewed, which
//! registry names a stored credential may be filed under, and the stored
//! shapes (a Secrets Manager secret's JSON, its name).
//!
//! No I/O here: `crtask-registry` sends the requests, `crtask-aws` and
//! `crtask-local` fetch the credentials.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use regex_lite::Regex;
use serde::{Deserialize, Serialize};

use crate::signing::Secret;
use crate::{Error, Result};

/// A cached ECR token is renewed this long before it expires (tokens last
/// 12 hours; a poll must never go out with one about to lapse).
pub const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The longest registry name a credential is filed under.
pub const MAX_HOST_LEN: usize = 253 + 6;

/// A user name and password for one registry. `Debug` never shows the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user name (`AWS` for ECR tokens).
    pub username: String,
    /// The password or token.
    pub password: Secret,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credential {
    /// A credential from its parts.
    pub fn new(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Credential {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The value of an `Authorization: Basic` header: base64 of
    /// `username:password`.
    pub fn basic(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.username,
            self.password.expose()
        ))
    }

    /// Reads an ECR `authorizationToken` (base64 of `AWS:<password>`).
    pub fn from_ecr_token(token: &str) -> Result<Credential> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .map_err(|_| Error::invalid("the ECR authorization token is not base64"))?;
        let text = String::from_utf8(raw)
            .map_err(|_| Error::invalid("the ECR authorization token is not text"))?;
        match text.split_once(':') {
            Some((user, pass)) if !user.is_empty() && !pass.is_empty() => {
                Ok(Credential::new(user, pass))
            }
            _ => Err(Error::invalid(
                "the ECR authorization token is not 'user:password'",
            )),
        }
    }
}

/// Where the poller gets a registry's credential: ECR tokens and Secrets
/// Manager on AWS, a file locally. Asked only when a registry answers `401`.
#[async_trait::async_trait]
pub trait CredentialSource: Send + Sync {
    /// The credential for `host` (a registry name as image references
    /// write it), `Ok(None)` when none is configured, `Err` with a reason
    /// to record (it must never contain the credential).
    async fn credential(&self, host: &str) -> std::result::Result<Option<Credential>, String>;
}

/// No credentials anywhere (anonymous pulls only).
#[derive(Debug, Clone, Copy, Default)]
pub struct Anonymous;

#[async_trait::async_trait]
impl CredentialSource for Anonymous {
    async fn credential(&self, _host: &str) -> std::result::Result<Option<Credential>, String> {
        Ok(None)
    }
}

/// An Amazon ECR registry host, `<account>.dkr.ecr.<region>.amazonaws.com`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EcrRegistry {
    /// The 12-digit account id (the registry id).
    pub account_id: String,
    /// The region, e.g. `eu-west-1`.
    pub region: String,
}

fn ecr_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // Private ECR only: `<12 digits>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`,
        // no port, no other suffix (so `x.amazonaws.com.evil.example` is not ECR).
        Regex::new(
            r"^([0-9]{12})\.dkr\.ecr(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})\.amazonaws\.com(?:\.cn)?$",
        )
        .unwrap_or_else(|e| panic!("ECR host pattern: {e}"))
    })
}

/// The ECR registry `host` names, when it is one (compared lower-cased).
pub fn ecr_registry(host: &str) -> Option<EcrRegistry> {
    let host = host.to_ascii_lowercase();
    let caps = ecr_pattern().captures(&host)?;
    Some(EcrRegistry {
        account_id: caps[1].to_string(),
        region: caps[2].to_string(),
    })
}

/// Whether a token that expires at `expires_at` may still be used at `now`
/// (it lapses more than [`TOKEN_RENEW_MARGIN`] from now). A token without
/// an expiry is not kept.
pub fn token_usable(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    let margin = chrono::Duration::from_std(TOKEN_RENEW_MARGIN).unwrap_or_default();
    expires_at.is_some_and(|e| e - margin > now)
}

/// Whether a `WWW-Authenticate` header asks for HTTP Basic (ECR, a
/// distribution registry with `htpasswd`).
pub fn wants_basic(www_authenticate: &str) -> bool {
    www_authenticate
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == ',')
        .next()
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("basic"))
}

/// The registry name a credential is filed under: a host with an optional
/// port, lower-cased (`docker.io` for Docker Hub, as image references name
/// it). Anything else (a scheme, a path, a user, spaces, control
/// characters) is refused, naming the input inertly.
pub fn normalize_host(host: &str) -> Result<String> {
    let shown = crate::domain::text::inert(host);
    let h = host.trim().to_ascii_lowercase();
    let bad = |why: &str| Error::invalid(format!("registry '{shown}' {why}"));
    if h.is_empty() {
        return Err(Error::invalid("a registry name is required"));
    }
    if h.len() > MAX_HOST_LEN {
        return Err(bad("is too long"));
    }
    if h.contains("://") || h.contains('/') || h.contains('@') {
        return Err(bad("must be a host name with an optional port, like ghcr.io or registry.example.com:5000 (no scheme, path or user)"));
    }
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (h.as_str(), None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("has a port that is not a number"));
        }
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !name.split('.').all(label_ok) {
        return Err(bad("is not a valid host name"));
    }
    Ok(match h.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => h,
    })
}

/// What a registry credential secret holds (JSON), and the local file's
/// entries.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCredential {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCredential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl StoredCredential {
    /// Checks the parts: a user name without `:` or control characters, a
    /// non-empty password without line breaks.
    pub fn validate(&self) -> Result<()> {
        if self.username.is_empty() || self.username.contains(':') {
            return Err(Error::invalid(
                "the user name must be non-empty and must not contain ':'",
            ));
        }
        if self.username.chars().any(char::is_control) {
            return Err(Error::invalid(
                "the user name must not contain control characters",
            ));
        }
        if self.password.is_empty() {
            return Err(Error::invalid("the password is empty"));
        }
        if self.password.contains(['\n', '\r', '\0']) {
            return Err(Error::invalid(
                "the password must be one line (no line breaks or NUL)",
            ));
        }
        Ok(())
    }

    /// The credential to send.
    pub fn credential(&self) -> Credential {
        Credential::new(self.username.clone(), self.password.clone())
    }

    /// Reads a secret's JSON (`{"username": ..., "password": ...}`); the
    /// error never repeats the text.
    pub fn parse(json: &str) -> Result<StoredCredential> {
        let c: StoredCredential = serde_json::from_str(json).map_err(|_| {
            Error::invalid(
                "a registry credential must be JSON {\"username\": ..., \"password\": ...}",
            )
        })?;
        c.validate()?;
        Ok(c)
    }
}

/// The password text as given on stdin or in a file: one trailing line
/// break (as `echo` and editors leave it) is not part of it.
pub fn password_from_text(text: &str) -> String {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
        .to_string()
}

/// The Secrets Manager name of `host`'s credential under `prefix` (the
/// stack name): `<prefix>/registries/<host>`, with a port's `:` written
/// `+` (Secrets Manager names allow letters, digits and `/_+=.@-`; host
/// names never hold a `+`).
pub fn secret_name(prefix: &str, host: &str) -> String {
    format!(
        "{}/registries/{}",
        prefix.trim_end_matches('/'),
        host.replace(':', "+")
    )
}

/// The host a secret name made by [`secret_name`] is for.
pub fn host_of_secret(prefix: &str, name: &str) -> Option<String> {
    name.strip_prefix(&format!("{}/registries/", prefix.trim_end_matches('/')))
        .filter(|h| !h.is_empty())
        .map(|h| h.replace('+', ":"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ecr_hosts_and_look_alikes() {
        let r = ecr_registry("123456789012.dkr.ecr.eu-west-1.amazonaws.com").unwrap();
        assert_eq!(r.account_id, "123456789012");
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(
            ecr_registry("123456789012.DKR.ECR.us-gov-west-1.amazonaws.com")
                .unwrap()
                .region,
            "us-gov-west-1"
        );
        assert!(ecr_registry("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com").is_some());
        assert!(ecr_registry("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn").is_some());
        for not in [
            "",
            "ghcr.io",
            "public.ecr.aws",
            "12345678901.dkr.ecr.eu-west-1.amazonaws.com",
            "1234567890123.dkr.ecr.eu-west-1.amazonaws.com",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com:443",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example",
            "x.123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "123456789012.dkr.ecr..amazonaws.com",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.co",
            "127.0.0.1:5000",
        ] {
            assert_eq!(ecr_registry(not), None, "{not}");
        }
    }

    #[test]
    fn basic_values_and_ecr_tokens() {
        let c = Credential::new("AWS", "pa:ss");
        assert_eq!(c.basic(), "QVdTOnBhOnNz");
        let back = Credential::from_ecr_token("QVdTOnBhOnNz").unwrap();
        assert_eq!(back, c);
        assert_eq!(
            format!("{c:?}"),
            "Credential { username: \"AWS\", password: \"<redacted>\" }"
        );
        for bad in ["***", "bm9jb2xvbg==", "OnA=", "QVdTOg=="] {
            assert!(Credential::from_ecr_token(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_are_renewed_before_they_lapse() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        assert!(token_usable(Some(now + chrono::Duration::hours(12)), now));
        assert!(token_usable(
            Some(now + chrono::Duration::seconds(301)),
            now
        ));
        assert!(!token_usable(
            Some(now + chrono::Duration::seconds(300)),
            now
        ));
        assert!(!token_usable(Some(now - chrono::Duration::days(1)), now));
        assert!(!token_usable(None, now));
    }

    #[test]
    fn basic_challenges() {
        assert!(wants_basic(
            r#"Basic realm="https://1.dkr.ecr.x.amazonaws.com/",service="ecr.amazonaws.com""#
        ));
        assert!(wants_basic(r#"basic realm="Registry Realm""#));
        assert!(!wants_basic(
            r#"Bearer realm="https://auth.docker.io/token""#
        ));
        assert!(!wants_basic(""));
        assert!(!wants_basic("Basicish realm=x"));
    }

    #[test]
    fn hosts_credentials_are_filed_under() {
        assert_eq!(normalize_host(" GHCR.io ").unwrap(), "ghcr.io");
        assert_eq!(
            normalize_host("registry.example.com:5000").unwrap(),
            "registry.example.com:5000"
        );
        assert_eq!(normalize_host("index.docker.io").unwrap(), "docker.io");
        for bad in [
            "",
            "https://ghcr.io",
            "ghcr.io/org",
            "user@ghcr.io",
            "ghcr.io:",
            "ghcr.io:http",
            "gh cr.io",
            "-x.io",
            "a..b",
            "evil\u{1b}]0;x\u{7}.io",
        ] {
            let e = normalize_host(bad).unwrap_err().to_string();
            assert!(!e.contains('\u{1b}'), "{e}");
        }
        assert!(normalize_host(&"a".repeat(300)).is_err());
    }

    #[test]
    fn stored_credentials_and_secret_names() {
        let c = StoredCredential::parse(r#"{"username":"bot","password":"s3cret"}"#).unwrap();
        assert_eq!(
            c.credential().basic(),
            Credential::new("bot", "s3cret").basic()
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        for bad in [
            "s3cret",
            r#"{"username":"bot"}"#,
            r#"{"username":"b:t","password":"x"}"#,
            r#"{"username":"bot","password":""}"#,
            r#"{"username":"bot","password":"a\nb"}"#,
        ] {
            let e = StoredCredential::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert_eq!(password_from_text("pw\n"), "pw");
        assert_eq!(password_from_text("pw\r\n"), "pw");
        assert_eq!(password_from_text("pw \n\n"), "pw \n");
        let n = secret_name("crtask/", "registry.example.com:5000");
        assert_eq!(n, "crtask/registries/registry.example.com+5000");
        assert_eq!(
            host_of_secret("crtask", &n).as_deref(),
            Some("registry.example.com:5000")
        );
        assert_eq!(host_of_secret("crtask", "crtask/git/x"), None);
    }
}
