//! Digest polling for registries that send no events (Docker Hub, MCR, GHCR,
//! Quay, any OCI registry): the pure parts. Its [`TagUpdate`]s skip steps 1
//! and 2 and join a registry push at [`super::decide`] (through
//! [`super::handler::process_update`]).
//!
//! Each round the poller sends one `HEAD` per distinct tracked reference
//! ([`plan_round`]) to [`manifest_url`] with [`MANIFEST_ACCEPT`], reads
//! `Docker-Content-Digest` ([`digest_from_headers`]) and, on a change, builds
//! a [`TagUpdate`] ([`poll_update`]) that goes down the same path as a
//! registry event. A `401` announces the token flow
//! ([`parse_www_authenticate`], [`BearerChallenge::token_url`],
//! [`parse_token_response`]); `429` and `5xx` answers put the registry in
//! [`Backoff`], honouring `Retry-After` ([`parse_retry_after`]). Intervals are
//! spread with [`jittered`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::imageref::{is_digest, ImageRef};
use crate::trigger::registry::event::TagUpdate;
use crate::trigger::request::{header, HeaderLookup};
use crate::{Error, Result};

/// `Accept` header for a manifest `HEAD`. Index and list types come first and
/// all four are listed, so the registry answers with the digest the tag
/// really points to (a multi-arch index, not one platform's manifest; no
/// schema conversion), which is the digest a push event reports.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// The API host of Docker Hub (`docker.io` is only the name in references).
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// Default poll interval per registry.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The longest `Retry-After` honoured (a day); longer values are clamped.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A `WWW-Authenticate: Bearer ...` challenge (the registry token flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BearerChallenge {
    /// Token endpoint URL.
    pub realm: String,
    /// `service` parameter to pass on, if announced.
    pub service: Option<String>,
    /// `scope` parameter to pass on, if announced.
    pub scope: Option<String>,
}

impl BearerChallenge {
    /// The token request URL: `realm` with `service` and each
    /// space-separated scope as query parameters (form-encoded). `scope`
    /// overrides the challenge's own scope (a `/v2/` ping announces none; use
    /// [`pull_scope`]).
    pub fn token_url(&self, scope: Option<&str>) -> String {
        let mut url = self.realm.clone();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        let mut push = |key: &str, value: &str, url: &mut String| {
            url.push(sep);
            url.push_str(key);
            url.push('=');
            url.extend(form_urlencoded::byte_serialize(value.as_bytes()));
            sep = '&';
        };
        if let Some(service) = &self.service {
            push("service", service, &mut url);
        }
        if let Some(scope) = scope.or(self.scope.as_deref()) {
            for s in scope.split_whitespace() {
                push("scope", s, &mut url);
            }
        }
        url
    }
}

/// The pull scope for a repository: `repository:<repo>:pull`.
pub fn pull_scope(image: &ImageRef) -> String {
    format!("repository:{}:pull", image.repository)
}

/// Parses `WWW-Authenticate` and returns its `Bearer` challenge.
///
/// Parameters are `key=value` or `key="quoted value"` (commas and `\"`
/// escapes allowed inside quotes), keys case-insensitive, unknown keys (e.g.
/// `error`) ignored. When the header lists several challenges (`Basic
/// realm=..., Bearer realm=...`) the first `Bearer` one is used. `None` when
/// there is no Bearer challenge, its `realm` is missing or empty, or the
/// header is malformed (an unterminated quote).
pub fn parse_www_authenticate(h: &str) -> Option<BearerChallenge> {
    let mut challenges: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let mut chars = h.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut token = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' || c == ',' || c == '"' {
                break;
            }
            token.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let value = if chars.peek() == Some(&'"') {
                chars.next();
                let mut v = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => v.push(chars.next()?),
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => v.push(c),
                    }
                }
                if !closed {
                    return None;
                }
                v
            } else {
                let mut v = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ',' || c.is_whitespace() {
                        break;
                    }
                    v.push(c);
                    chars.next();
                }
                v
            };
            if let Some((_, params)) = challenges.last_mut() {
                params.entry(token.to_ascii_lowercase()).or_insert(value);
            }
        } else if token.is_empty() {
            // A stray quote or '=' with no key: not a header we understand.
            return None;
        } else {
            challenges.push((token, BTreeMap::new()));
        }
    }
    let (_, params) = challenges
        .into_iter()
        .find(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))?;
    let realm = params.get("realm").filter(|r| !r.is_empty())?.clone();
    Some(BearerChallenge {
        realm,
        service: params.get("service").filter(|s| !s.is_empty()).cloned(),
        scope: params.get("scope").filter(|s| !s.is_empty()).cloned(),
    })
}

/// A token endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    /// The bearer token (`token`, else `access_token`).
    pub token: String,
    /// Lifetime in seconds, when given.
    pub expires_in: Option<u64>,
}

/// Parses a token endpoint's JSON answer (`{"token": ..., "access_token":
/// ..., "expires_in": ...}`).
pub fn parse_token_response(body: &[u8]) -> Result<TokenResponse> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("registry token response is not valid json: {e}")))?;
    let pick = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let token = pick("token")
        .or_else(|| pick("access_token"))
        .ok_or_else(|| {
            Error::invalid("registry token response has no 'token' or 'access_token'")
        })?;
    Ok(TokenResponse {
        token,
        expires_in: v.get("expires_in").and_then(Value::as_u64),
    })
}

/// Parses `Retry-After`: delay seconds (`120`) or an HTTP date (IMF-fixdate
/// `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 or asctime forms), as a duration
/// from `now`. A date in the past gives zero; values beyond
/// [`MAX_RETRY_AFTER`] are clamped to it. `None` for anything else.
pub fn parse_retry_after(h: &str, now: DateTime<Utc>) -> Option<Duration> {
    let h = h.trim();
    if h.is_empty() {
        return None;
    }
    if h.bytes().all(|b| b.is_ascii_digit()) {
        let secs = h.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = http_date(h)?;
    let delta = at - now;
    let d = delta.to_std().unwrap_or(Duration::ZERO);
    Some(d.min(MAX_RETRY_AFTER))
}

fn http_date(h: &str) -> Option<DateTime<Utc>> {
    httpdate::parse_http_date(h).ok().map(DateTime::<Utc>::from)
}

/// Whether an HTTP status should put the registry in backoff: `429` and
/// every `5xx`.
pub fn is_backoff_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// Per-registry backoff: each `429`/`5xx` doubles the wait (starting at
/// `initial`, capped at `cap`), a `Retry-After` is a floor for the wait
/// (clamped to [`MAX_RETRY_AFTER`], so it may exceed `cap`), and a success
/// resets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    current: Option<Duration>,
    until: Option<DateTime<Utc>>,
    failures: u32,
}

impl Default for Backoff {
    /// 30 s initial wait, 30 min cap.
    fn default() -> Self {
        Backoff::new(Duration::from_secs(30), Duration::from_secs(30 * 60))
    }
}

impl Backoff {
    /// A healthy registry's backoff; `cap` is at least `initial`, and
    /// `initial` at least one second.
    pub fn new(initial: Duration, cap: Duration) -> Self {
        let initial = initial.max(Duration::from_secs(1));
        Backoff {
            initial,
            cap: cap.max(initial),
            current: None,
            until: None,
            failures: 0,
        }
    }

    /// Records a `429`/`5xx` at `now` and returns how long to wait.
    pub fn on_failure(&mut self, now: DateTime<Utc>, retry_after: Option<Duration>) -> Duration {
        let doubled = match self.current {
            None => self.initial,
            Some(c) => c.saturating_mul(2).min(self.cap),
        };
        self.current = Some(doubled);
        self.failures = self.failures.saturating_add(1);
        let wait = match retry_after {
            Some(ra) => doubled.max(ra.min(MAX_RETRY_AFTER)),
            None => doubled,
        };
        let wait_chrono = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::days(1));
        self.until = Some(now + wait_chrono);
        wait
    }

    /// Records a success: back to healthy.
    pub fn on_success(&mut self) {
        self.current = None;
        self.until = None;
        self.failures = 0;
    }

    /// Whether the registry may be asked again at `now`.
    pub fn ready(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|u| now >= u)
    }

    /// Until when the registry is left alone, if it is in backoff.
    pub fn until(&self) -> Option<DateTime<Utc>> {
        self.until
    }

    /// Failures in a row since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The current doubled wait, if in backoff.
    pub fn current(&self) -> Option<Duration> {
        self.current
    }
}

/// `base` spread by up to ±10 %, from a caller-supplied random number
/// (`0` -> 90 %, `u32::MAX` -> 110 %, linear in between).
pub fn jittered(base: Duration, rnd: u32) -> Duration {
    let nanos = base.as_nanos();
    let tenth = nanos / 10;
    let offset = (2 * tenth) * u128::from(rnd) / u128::from(u32::MAX);
    let total = nanos - tenth + offset;
    let secs = total / 1_000_000_000;
    let sub = (total % 1_000_000_000) as u32;
    match u64::try_from(secs) {
        Ok(s) => Duration::new(s, sub),
        Err(_) => Duration::MAX,
    }
}

/// The distinct references to `HEAD` this round, grouped per registry (the
/// normalised registry name, `docker.io` for Docker Hub), each list sorted
/// and unique in normalised tagged form. References pinned by digest never
/// move and are left out, as are references that do not parse.
pub fn plan_round(tracked: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut plan: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in tracked {
        let Ok(r) = ImageRef::parse(t.trim()) else {
            continue;
        };
        if r.digest.is_some() {
            continue;
        }
        plan.entry(r.registry.clone())
            .or_default()
            .insert(r.tagged());
    }
    plan.into_iter()
        .map(|(reg, refs)| (reg, refs.into_iter().collect()))
        .collect()
}

/// The host the registry API is served on: [`DOCKER_HUB_API_HOST`] for
/// Docker Hub, else the registry itself.
pub fn api_host(image: &ImageRef) -> &str {
    if image.is_docker_hub() {
        DOCKER_HUB_API_HOST
    } else {
        &image.registry
    }
}

/// Whether `registry` is in the insecure (plain HTTP) list. Entries are
/// compared case-insensitively; a scheme and trailing `/` are tolerated.
pub fn is_insecure(registry: &str, insecure: &[String]) -> bool {
    insecure.iter().any(|i| {
        let t = i.trim();
        let t = t
            .strip_prefix("http://")
            .or_else(|| t.strip_prefix("https://"))
            .unwrap_or(t)
            .trim_end_matches('/');
        t.eq_ignore_ascii_case(registry)
    })
}

/// The manifest URL for a `HEAD`: `http` for registries in `insecure`, else
/// `https`; `/v2/<repository>/manifests/<tag>` (the digest when there is no
/// tag); Docker Hub is served by [`DOCKER_HUB_API_HOST`].
pub fn manifest_url(image: &ImageRef, insecure: &[String]) -> String {
    let scheme = if is_insecure(&image.registry, insecure) {
        "http"
    } else {
        "https"
    };
    manifest_url_on(&format!("{scheme}://{}", api_host(image)), image)
}

/// [`manifest_url`] on another base URL (`scheme://host[:port]`): the
/// endpoint override tests use to stand a local registry in for a host
/// name they cannot serve (see `crtask_registry::RegistryClient::with_endpoints`).
pub fn manifest_url_on(base: &str, image: &ImageRef) -> String {
    let reference = image
        .tag
        .as_deref()
        .or(image.digest.as_deref())
        .unwrap_or("latest");
    format!(
        "{}/v2/{}/manifests/{reference}",
        base.trim_end_matches('/'),
        image.repository
    )
}

/// The `Docker-Content-Digest` of a manifest answer, when it is a valid
/// digest.
pub fn digest_from_headers(headers: &dyn HeaderLookup) -> Option<String> {
    header(headers, "Docker-Content-Digest")
        .filter(|d| is_digest(d))
        .map(str::to_string)
}

/// The [`TagUpdate`] for a polled digest, to go down the event path.
pub fn poll_update(image: &ImageRef, digest: &str, media_type: Option<&str>) -> TagUpdate {
    TagUpdate {
        image: image.tagged(),
        digest: digest.to_string(),
        media_type: media_type.map(str::to_string),
        event_id: None,
        first_sighting: false,
        platforms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::registry::event::{
        MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
    };
    use crate::trigger::request::Headers;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn ch(realm: &str, service: Option<&str>, scope: Option<&str>) -> Option<BearerChallenge> {
        Some(BearerChallenge {
            realm: realm.to_string(),
            service: service.map(str::to_string),
            scope: scope.map(str::to_string),
        })
    }

    #[test]
    fn www_authenticate_table() {
        let cases: Vec<(&str, Option<BearerChallenge>)> = vec![
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
                ch(
                    "https://auth.docker.io/token",
                    Some("registry.docker.io"),
                    Some("repository:library/alpine:pull"),
                ),
            ),
            // several actions: a comma inside quotes
            (
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/app:pull,push""#,
                ch(
                    "https://ghcr.io/token",
                    Some("ghcr.io"),
                    Some("repository:user/app:pull,push"),
                ),
            ),
            // spaces around separators, case-insensitive scheme and keys, error param
            (
                r#"bearer  Realm = "https://r.io/t" , SERVICE="r.io", error="insufficient_scope""#,
                ch("https://r.io/t", Some("r.io"), None),
            ),
            // unquoted values
            (
                "Bearer realm=https://r.io/t,service=r.io",
                ch("https://r.io/t", Some("r.io"), None),
            ),
            // escaped quote
            (
                r#"Bearer realm="https://r.io/t?a=\"b\"""#,
                ch(r#"https://r.io/t?a="b""#, None, None),
            ),
            // Basic first, then Bearer
            (
                r#"Basic realm="Registry Realm", Bearer realm="https://r.io/t",service="r.io""#,
                ch("https://r.io/t", Some("r.io"), None),
            ),
            // an empty service counts as absent
            (
                r#"Bearer realm="https://r.io/t",service="""#,
                ch("https://r.io/t", None, None),
            ),
            (r#"Basic realm="Registry Realm""#, None),
            ("Bearer", None),
            (r#"Bearer service="r.io""#, None),
            (r#"Bearer realm="""#, None),
            (r#"Bearer realm="https://r.io/t"#, None),
            (r#"Bearer realm="x\"#, None),
            ("", None),
            ("   ", None),
            ("=", None),
            (r#""""#, None),
            ("Bearer ,,,, realm=x", ch("x", None, None)),
        ];
        for (h, want) in cases {
            assert_eq!(parse_www_authenticate(h), want, "{h}");
        }
    }

    #[test]
    fn token_url_encodes() {
        let c = ch(
            "https://auth.docker.io/token",
            Some("registry.docker.io"),
            Some("repository:library/alpine:pull"),
        )
        .unwrap();
        assert_eq!(
            c.token_url(None),
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Falpine%3Apull"
        );
        let image = ImageRef::parse("ghcr.io/o/app:1").unwrap();
        let c = ch("https://r.io/t?x=1", None, None).unwrap();
        assert_eq!(
            c.token_url(Some(&pull_scope(&image))),
            "https://r.io/t?x=1&scope=repository%3Ao%2Fapp%3Apull"
        );
        let c = ch("https://r.io/t", Some("a b"), Some("s1 s2")).unwrap();
        assert_eq!(
            c.token_url(None),
            "https://r.io/t?service=a+b&scope=s1&scope=s2"
        );
    }

    #[test]
    fn token_response() {
        let ok = [
            (r#"{"token":"abc","expires_in":300}"#, "abc", Some(300)),
            (r#"{"access_token":"xyz"}"#, "xyz", None),
            (
                r#"{"token":"","access_token":"xyz","expires_in":"300"}"#,
                "xyz",
                None,
            ),
        ];
        for (body, token, exp) in ok {
            let got = parse_token_response(body.as_bytes()).unwrap();
            assert_eq!((got.token.as_str(), got.expires_in), (token, exp), "{body}");
        }
        for (body, want) in [
            ("", "not valid json"),
            ("{}", "has no 'token' or 'access_token'"),
            (r#"{"token": 5}"#, "has no 'token'"),
        ] {
            let e = parse_token_response(body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn retry_after_table() {
        let now = at("1994-11-06T08:49:00Z");
        let s = Duration::from_secs;
        let cases: Vec<(&str, Option<Duration>)> = vec![
            ("120", Some(s(120))),
            (" 0 ", Some(s(0))),
            ("99999999999999999999999", Some(MAX_RETRY_AFTER)),
            ("86401", Some(MAX_RETRY_AFTER)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(s(37))),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(s(37))),
            ("Sun Nov  6 08:49:37 1994", Some(s(37))),
            ("Sun, 06 Nov 1994 08:48:00 GMT", Some(s(0))),
            ("Mon, 07 Nov 1994 08:49:00 GMT", Some(s(86_400))),
            ("Tue, 08 Nov 1994 08:49:00 GMT", Some(MAX_RETRY_AFTER)),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
            ("Sun, 32 Nov 1994 08:49:37 GMT", None),
        ];
        for (h, want) in cases {
            assert_eq!(parse_retry_after(h, now), want, "{h:?}");
        }
    }

    #[test]
    fn backoff_doubles_caps_floors_and_resets() {
        let now = at("2026-01-01T00:00:00Z");
        let s = Duration::from_secs;
        let mut b = Backoff::new(s(10), s(60));
        assert!(b.ready(now));
        assert_eq!(b.until(), None);
        let waits: Vec<Duration> = (0..5).map(|_| b.on_failure(now, None)).collect();
        assert_eq!(waits, [s(10), s(20), s(40), s(60), s(60)]);
        assert_eq!(b.failures(), 5);
        assert_eq!(b.current(), Some(s(60)));
        assert!(!b.ready(now + chrono::Duration::seconds(59)));
        assert!(b.ready(now + chrono::Duration::seconds(60)));
        // Retry-After is a floor, even above the cap
        assert_eq!(b.on_failure(now, Some(s(600))), s(600));
        assert_eq!(b.until(), Some(now + chrono::Duration::seconds(600)));
        // a short Retry-After does not shorten the doubled wait
        assert_eq!(b.on_failure(now, Some(s(1))), s(60));
        // clamped to a day
        assert_eq!(b.on_failure(now, Some(s(10 * 86_400))), MAX_RETRY_AFTER);
        b.on_success();
        assert!(b.ready(now));
        assert_eq!((b.failures(), b.current(), b.until()), (0, None, None));
        assert_eq!(b.on_failure(now, None), s(10));
        // degenerate settings
        let mut z = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(z.on_failure(now, None), s(1));
        assert_eq!(z.on_failure(now, None), s(1));
        assert_eq!(Backoff::default().on_failure(now, None), s(30));
        for (code, want) in [
            (429, true),
            (500, true),
            (503, true),
            (599, true),
            (200, false),
            (401, false),
            (404, false),
            (600, false),
        ] {
            assert_eq!(is_backoff_status(code), want, "{code}");
        }
    }

    #[test]
    fn jitter_bounds() {
        let base = Duration::from_secs(60);
        assert_eq!(jittered(base, 0), Duration::from_secs(54));
        assert_eq!(jittered(base, u32::MAX), Duration::from_secs(66));
        let mid = jittered(base, u32::MAX / 2);
        assert!(
            mid > Duration::from_millis(59_990) && mid < Duration::from_millis(60_010),
            "{mid:?}"
        );
        for rnd in [1, 7, 1 << 20, 3_000_000_000] {
            let j = jittered(base, rnd);
            assert!(
                j >= Duration::from_secs(54) && j <= Duration::from_secs(66),
                "{j:?}"
            );
        }
        assert_eq!(jittered(Duration::ZERO, 12345), Duration::ZERO);
        assert!(jittered(Duration::MAX, u32::MAX) == Duration::MAX);
        assert!(jittered(Duration::MAX, 0) < Duration::MAX);
    }

    #[test]
    fn plan_round_dedupes_per_registry() {
        let tracked: Vec<String> = [
            "alpine",
            "docker.io/library/alpine:latest",
            "index.docker.io/library/alpine",
            "alpine:3.19",
            "mcr.microsoft.com/dotnet/sdk:8.0",
            "mcr.microsoft.com/dotnet/sdk:8.0",
            "127.0.0.1:5000/base:1",
            " 127.0.0.1:5000/base:1 ",
            "alpine@sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "ghcr.io/o/app:1@sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "Not A Ref",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let plan = plan_round(&tracked);
        let want: BTreeMap<String, Vec<String>> = [
            ("127.0.0.1:5000", vec!["127.0.0.1:5000/base:1"]),
            (
                "docker.io",
                vec![
                    "docker.io/library/alpine:3.19",
                    "docker.io/library/alpine:latest",
                ],
            ),
            (
                "mcr.microsoft.com",
                vec!["mcr.microsoft.com/dotnet/sdk:8.0"],
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
        .collect();
        assert_eq!(plan, want);
        let requests: usize = plan.values().map(Vec::len).sum();
        assert_eq!(requests, 4);
        assert!(plan_round(&[]).is_empty());
    }

    #[test]
    fn manifest_urls() {
        let insecure = vec![
            "127.0.0.1:5000".to_string(),
            "http://Local.Test:5001/".to_string(),
        ];
        let cases = [
            ("alpine:3.19", "https://registry-1.docker.io/v2/library/alpine/manifests/3.19"),
            ("user/app", "https://registry-1.docker.io/v2/user/app/manifests/latest"),
            ("127.0.0.1:5000/base:1", "http://127.0.0.1:5000/v2/base/manifests/1"),
            ("local.test:5001/a/b:c", "http://local.test:5001/v2/a/b/manifests/c"),
            ("127.0.0.1:5001/base:1", "https://127.0.0.1:5001/v2/base/manifests/1"),
            ("mcr.microsoft.com/dotnet/sdk:8.0", "https://mcr.microsoft.com/v2/dotnet/sdk/manifests/8.0"),
            (
                "ghcr.io/o/app@sha256:1111111111111111111111111111111111111111111111111111111111111111",
                "https://ghcr.io/v2/o/app/manifests/sha256:1111111111111111111111111111111111111111111111111111111111111111",
            ),
        ];
        for (r, want) in cases {
            let image = ImageRef::parse(r).unwrap();
            assert_eq!(manifest_url(&image, &insecure), want, "{r}");
        }
        let no_tag = ImageRef {
            registry: "r.io".into(),
            repository: "x".into(),
            tag: None,
            digest: None,
        };
        assert_eq!(
            manifest_url(&no_tag, &[]),
            "https://r.io/v2/x/manifests/latest"
        );
        for m in [
            MEDIA_OCI_INDEX,
            MEDIA_DOCKER_LIST,
            MEDIA_OCI_MANIFEST,
            MEDIA_DOCKER_MANIFEST,
        ] {
            assert!(MANIFEST_ACCEPT.split(", ").any(|a| a == m), "{m}");
        }
        assert_eq!(DEFAULT_INTERVAL, Duration::from_secs(60));
    }

    #[test]
    fn digest_headers_and_update() {
        let h = |v: &str| vec![("docker-content-digest".to_string(), v.to_string())];
        assert_eq!(
            digest_from_headers(&Headers::new(&h(D1))),
            Some(D1.to_string())
        );
        assert_eq!(
            digest_from_headers(&Headers::new(&h(&format!(" {D1} ")))),
            Some(D1.to_string())
        );
        assert_eq!(digest_from_headers(&Headers::new(&h("sha256:abc"))), None);
        assert_eq!(digest_from_headers(&Headers::new(&[])), None);
        let image = ImageRef::parse("alpine").unwrap();
        let u = poll_update(&image, D1, Some(MEDIA_OCI_INDEX));
        assert_eq!(u.image, "docker.io/library/alpine:latest");
        assert_eq!(u.digest, D1);
        assert_eq!(u.media_type.as_deref(), Some(MEDIA_OCI_INDEX));
        assert_eq!(u.event_id, None);
    }

    #[test]
    fn poll_parsers_never_panic() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet: Vec<char> = "Bearer realm=\"\\,; =GMTSun0123456789:-éx\t"
            .chars()
            .collect();
        let now = Utc::now();
        for _ in 0..10_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let s: String = (0..len)
                .map(|i| alphabet[((seed >> (i % 50)) as usize + i * 7) % alphabet.len()])
                .collect();
            let _ = parse_www_authenticate(&s);
            let _ = parse_retry_after(&s, now);
            let _ = parse_token_response(s.as_bytes());
            let _ = plan_round(std::slice::from_ref(&s));
            let _ = jittered(Duration::from_nanos(seed), seed as u32);
        }
    }
}
