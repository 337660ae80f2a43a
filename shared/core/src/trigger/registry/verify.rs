//! Step 1 of a registry notification: is it genuine? Checked on the raw
//! body, before anything in it is parsed.
//!
//! A sender proves itself with either a bearer token
//! (`Authorization: Bearer <token>`) or an HMAC-SHA256 signature of the body
//! in [`SIGNATURE_HEADER`] (`sha256=<64 hex digits>`). Several tokens and
//! secrets may be valid at once (rotation). The comparisons are those of
//! [`crate::signing`], in constant time. Next: [`super::event`] parses the
//! body.

use thiserror::Error;

use crate::signing::{self, Secret, SignatureError, SHA256_PREFIX};
use crate::trigger::request::{header, HeaderLookup};

/// Header carrying an HMAC-SHA256 of the raw body: `sha256=<64 hex digits>`.
pub const SIGNATURE_HEADER: &str = "X-Crtask-Signature";

/// Why a registry notification was not accepted as genuine (answer 401).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryAuthError {
    /// No (non-empty) token or secret is configured, so nothing can verify.
    #[error(
        "no registry webhook token or secret is configured: give the server one \
         (--registry-webhook-token-file)"
    )]
    NotConfigured,
    /// Neither an `Authorization` nor an `X-Crtask-Signature` header was sent.
    #[error(
        "missing credentials: send 'Authorization: Bearer <token>' or \
         'X-Crtask-Signature: sha256=<hex hmac-sha256 of the body>'"
    )]
    Missing,
    /// A credential header is present but not of the expected form.
    #[error("{0}")]
    Malformed(String),
    /// The bearer token matches none of the configured tokens.
    #[error("bearer token does not match any configured registry webhook token")]
    WrongToken,
    /// The signature matches the body with none of the configured secrets.
    #[error(
        "x-crtask-signature does not match the body with any configured registry webhook secret"
    )]
    WrongSignature,
}

impl RegistryAuthError {
    /// True when the request carried no credentials at all (as opposed to
    /// wrong or malformed ones); useful to word the log line.
    pub fn is_missing(&self) -> bool {
        matches!(self, RegistryAuthError::Missing)
    }
}

/// Authenticates a registry notification.
///
/// Accepted when either
/// - `Authorization: Bearer <token>` equals any configured token (the scheme
///   name is case-insensitive; compared in constant time over SHA-256 digests,
///   so neither content nor length leaks), or
/// - `X-Crtask-Signature: sha256=<hex>` is the HMAC-SHA256 of the raw `body`
///   under any configured secret (checked in constant time by
///   [`signing::check_signature`]; a sender computes it with
///   [`signing::sign_sha256`]).
///
/// Headers are read through [`HeaderLookup`]; for `(name, value)` pairs use
/// [`crate::trigger::request::Headers::new`]. Empty tokens and secrets are skipped. When
/// both headers are sent, either one verifying is enough; when both fail, the
/// signature's error is reported.
pub fn verify_registry(
    headers: &dyn HeaderLookup,
    body: &[u8],
    tokens: &[Secret],
    hmac_secrets: &[Secret],
) -> std::result::Result<(), RegistryAuthError> {
    let tokens = signing::usable(tokens);
    let secrets = signing::usable(hmac_secrets);
    if tokens.is_empty() && secrets.is_empty() {
        return Err(RegistryAuthError::NotConfigured);
    }
    let auth = header(headers, "Authorization");
    let signature = header(headers, SIGNATURE_HEADER);
    let mut first_error = None;
    if let Some(sig) = signature {
        match check_signature(sig, body, &secrets) {
            Ok(()) => return Ok(()),
            Err(e) => first_error = Some(e),
        }
    }
    if let Some(auth) = auth {
        match check_bearer(auth, &tokens) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(RegistryAuthError::Missing))
}

fn check_signature(
    value: &str,
    body: &[u8],
    secrets: &[&Secret],
) -> std::result::Result<(), RegistryAuthError> {
    signing::check_signature(value, Some(SHA256_PREFIX), body, secrets).map_err(|e| match e {
        SignatureError::Malformed(why) => RegistryAuthError::Malformed(format!(
            "malformed {SIGNATURE_HEADER} header: {why}; expected {}",
            signing::expected_form(Some(SHA256_PREFIX))
        )),
        SignatureError::Mismatch => RegistryAuthError::WrongSignature,
    })
}

fn check_bearer(value: &str, tokens: &[&Secret]) -> std::result::Result<(), RegistryAuthError> {
    let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Name the scheme only when it looks like one, so a bare credential
        // never ends up in an error message or log line.
        let plain = scheme.len() <= 20 && scheme.bytes().all(|b| b.is_ascii_alphabetic());
        return Err(RegistryAuthError::Malformed(if plain && !rest.is_empty() {
            format!(
                "authorization header uses the '{}' scheme: expected 'Authorization: Bearer <token>'",
                scheme.to_ascii_lowercase()
            )
        } else {
            "authorization header is not of the form 'Bearer <token>'".to_string()
        }));
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(RegistryAuthError::Malformed(
            "authorization header has an empty bearer token".to_string(),
        ));
    }
    if signing::token_matches_any(token, tokens) {
        Ok(())
    } else {
        Err(RegistryAuthError::WrongToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::request::Headers;

    type Want = std::result::Result<(), RegistryAuthError>;
    /// (name, headers, expected result)
    type AuthCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, Want);

    fn pairs(h: &[(&str, &str)]) -> Vec<(String, String)> {
        h.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn secrets(v: &[&str]) -> Vec<Secret> {
        v.iter().map(|s| Secret::new(*s)).collect()
    }

    fn sign(secret: &str, body: &[u8]) -> String {
        signing::sign_sha256(&Secret::new(secret), body)
    }

    #[test]
    fn verify_registry_table() {
        let body = br#"{"events":[]}"#;
        let good_sig = sign("s3cret", body);
        let other_sig = sign("other", body);
        let not_hex = format!("sha256={}", "z".repeat(64));
        let tokens = secrets(&["tok-one", "tok-two"]);
        let hmac_secrets = secrets(&["", "s3cret"]);
        let malformed = |s: &str| Err(RegistryAuthError::Malformed(s.to_string()));
        let cases: Vec<AuthCase> = vec![
            ("first token", vec![("Authorization", "Bearer tok-one")], Ok(())),
            ("second token", vec![("Authorization", "Bearer tok-two")], Ok(())),
            ("scheme case", vec![("authorization", "bearer tok-two")], Ok(())),
            ("extra spaces", vec![("Authorization", "Bearer   tok-one  ")], Ok(())),
            (
                "wrong token",
                vec![("Authorization", "Bearer tok-three")],
                Err(RegistryAuthError::WrongToken),
            ),
            (
                "token prefix",
                vec![("Authorization", "Bearer tok-on")],
                Err(RegistryAuthError::WrongToken),
            ),
            ("missing", vec![], Err(RegistryAuthError::Missing)),
            ("empty header", vec![("Authorization", "  ")], Err(RegistryAuthError::Missing)),
            (
                "basic scheme",
                vec![("Authorization", "Basic dG9rLW9uZQ==")],
                malformed("authorization header uses the 'basic' scheme: expected 'Authorization: Bearer <token>'"),
            ),
            (
                "bare token, no scheme",
                vec![("Authorization", "tok-one")],
                malformed("authorization header is not of the form 'Bearer <token>'"),
            ),
            (
                "tab after scheme",
                vec![("Authorization", "Bearer\ttok-one")],
                Ok(()),
            ),
            (
                "bearer without token",
                vec![("Authorization", "Bearer")],
                malformed("authorization header has an empty bearer token"),
            ),
            ("hmac ok", vec![("X-Crtask-Signature", good_sig.as_str())], Ok(())),
            (
                "hmac other secret",
                vec![("x-crtask-signature", other_sig.as_str())],
                Err(RegistryAuthError::WrongSignature),
            ),
            (
                "hmac no prefix",
                vec![("X-Crtask-Signature", good_sig.trim_start_matches("sha256="))],
                malformed("malformed X-Crtask-Signature header: it does not start with 'sha256='; expected 'sha256=' followed by 64 hex digits"),
            ),
            (
                "hmac short",
                vec![("X-Crtask-Signature", "sha256=abcd")],
                malformed("malformed X-Crtask-Signature header: the digest has 4 characters; expected 'sha256=' followed by 64 hex digits"),
            ),
            (
                "hmac not hex",
                vec![("X-Crtask-Signature", not_hex.as_str())],
                malformed("malformed X-Crtask-Signature header: the digest is not hexadecimal; expected 'sha256=' followed by 64 hex digits"),
            ),
            (
                "bad hmac, good token",
                vec![("X-Crtask-Signature", other_sig.as_str()), ("Authorization", "Bearer tok-one")],
                Ok(()),
            ),
            (
                "good hmac, bad token",
                vec![("X-Crtask-Signature", good_sig.as_str()), ("Authorization", "Bearer nope")],
                Ok(()),
            ),
            (
                "both bad: signature reported",
                vec![("X-Crtask-Signature", other_sig.as_str()), ("Authorization", "Bearer nope")],
                Err(RegistryAuthError::WrongSignature),
            ),
        ];
        for (name, h, want) in cases {
            let p = pairs(&h);
            let got = verify_registry(&Headers::new(&p), body, &tokens, &hmac_secrets);
            assert_eq!(got, want, "{name}");
        }
        // The body is covered: one byte changed fails.
        let p = pairs(&[("X-Crtask-Signature", good_sig.as_str())]);
        assert_eq!(
            verify_registry(
                &Headers::new(&p),
                br#"{"events":[ ]}"#,
                &tokens,
                &hmac_secrets
            ),
            Err(RegistryAuthError::WrongSignature)
        );
        // Nothing configured, or only empty values.
        let p = pairs(&[("Authorization", "Bearer ")]);
        for (t, s) in [(vec![], vec![]), (secrets(&[""]), secrets(&[""]))] {
            assert_eq!(
                verify_registry(&Headers::new(&p), body, &t, &s),
                Err(RegistryAuthError::NotConfigured)
            );
        }
        // An empty configured token never matches an empty bearer.
        let p = pairs(&[("Authorization", "Bearer x")]);
        assert_eq!(
            verify_registry(&Headers::new(&p), body, &secrets(&[""]), &secrets(&["k"])),
            Err(RegistryAuthError::WrongToken)
        );
        // Only secrets configured: a token is wrong, a signature works.
        let p = pairs(&[("Authorization", "Bearer tok-one")]);
        assert_eq!(
            verify_registry(&Headers::new(&p), body, &[], &hmac_secrets),
            Err(RegistryAuthError::WrongToken)
        );
        assert!(RegistryAuthError::Missing.is_missing());
        assert!(!RegistryAuthError::WrongToken.is_missing());
        for e in [
            RegistryAuthError::NotConfigured,
            RegistryAuthError::Missing,
            RegistryAuthError::WrongToken,
            RegistryAuthError::WrongSignature,
        ] {
            let m = e.to_string();
            assert_eq!(
                m.chars().next().map(|c| c.is_lowercase()),
                Some(true),
                "{m}"
            );
        }
    }

    #[test]
    fn sign_matches_github_vector() {
        // Same construction as GitHub's documented X-Hub-Signature-256 vector.
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
