//! Secrets, HMAC-SHA256 signatures and token comparison: the one place
//! crtask computes or checks a MAC.
//!
//! Every trigger proves a delivery genuine with these:
//!
//! | trigger | proof | checked by |
//! |---|---|---|
//! | git webhooks (GitHub, Gitea, Forgejo, Bitbucket) | hex HMAC-SHA256 of the body in a header | [`check_signature`] |
//! | GitLab webhooks | the secret itself as a token | [`token_matches_any`] |
//! | registry notifications | `sha256=` HMAC of the body, or a bearer token | [`check_signature`], [`token_matches_any`] |
//! | EventBridge Scheduler payloads | hex HMAC of the task, timer and schedule | [`check_signature`] |
//!
//! Secrets are [`Secret`]s everywhere: their `Debug` is redacted and they
//! have no `Display`, so a secret cannot reach a log line by accident.
//! Several secrets may be valid at once (rotation): a proof is good when any
//! one of them verifies. Empty secrets never verify anything.
//!
//! Every comparison runs in constant time: signatures with
//! [`Mac::verify_slice`], tokens with [`subtle`] over SHA-256 digests of both
//! sides, so neither the content nor the length of a secret leaks.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// Length of a hex-encoded SHA-256 digest (and so of a hex signature).
pub const SHA256_HEX_LEN: usize = 64;

/// The prefix GitHub, Bitbucket and crtask's registry webhook put before
/// a hex signature: `sha256=<64 hex digits>`.
pub const SHA256_PREFIX: &str = "sha256=";

/// A webhook secret, bearer token or signing key. Its `Debug` output is
/// redacted and it has no `Display`, so it cannot end up in a log line by
/// accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value as given.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// Wraps the contents of a secret file: trailing line breaks and spaces
    /// (as editors and `echo` leave them) are not part of the secret.
    pub fn from_file_text(text: &str) -> Self {
        Secret(text.trim_end_matches(['\n', '\r', ' ', '\t']).to_string())
    }

    /// The secret value, for computing a MAC. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is empty (an empty secret is never accepted).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

/// The non-empty secrets of `secrets`, in order: the ones that may verify.
pub fn usable(secrets: &[Secret]) -> Vec<&Secret> {
    secrets.iter().filter(|s| !s.is_empty()).collect()
}

/// The MAC keyed with `secret`. HMAC-SHA256 accepts keys of any length
/// (`new_from_slice` fails only for fixed-size keys), so this is never `None`.
fn keyed(secret: &Secret) -> Option<HmacSha256> {
    <HmacSha256 as KeyInit>::new_from_slice(secret.expose().as_bytes()).ok()
}

/// Lower-case hex HMAC-SHA256 of `body` under `secret` (64 digits): the
/// signature Gitea sends and schedule payloads carry.
pub fn sign_hex(secret: &Secret, body: &[u8]) -> String {
    keyed(secret)
        .map(|mut m| {
            m.update(body);
            hex::encode(m.finalize().into_bytes())
        })
        .unwrap_or_default()
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`: the value GitHub puts in
/// `X-Hub-Signature-256` and a registry sender in `X-Crtask-Signature`.
pub fn sign_sha256(secret: &Secret, body: &[u8]) -> String {
    format!("{SHA256_PREFIX}{}", sign_hex(secret, body))
}

/// Why a signature value is not `[prefix]<64 hex digits>`. The messages
/// complete `malformed ... header: <message>; expected ...`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureForm {
    /// The value does not start with the expected prefix.
    #[error("it does not start with '{0}'")]
    NoPrefix(&'static str),
    /// The digest part is not 64 characters long (count in characters).
    #[error("the digest has {0} characters")]
    Length(usize),
    /// The digest part has a character that is not a hex digit.
    #[error("the digest is not hexadecimal")]
    NotHex,
}

/// Why [`check_signature`] refused a signature.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The value is not of the expected form.
    #[error("{0}")]
    Malformed(SignatureForm),
    /// Well-formed, but no configured (non-empty) secret gives it.
    #[error("signature does not match")]
    Mismatch,
}

/// How a signature of the form `[prefix]<64 hex digits>` is described in
/// messages: `'sha256=' followed by 64 hex digits` or `64 hex digits`.
pub fn expected_form(prefix: Option<&str>) -> String {
    match prefix {
        Some(p) => format!("'{p}' followed by {SHA256_HEX_LEN} hex digits"),
        None => format!("{SHA256_HEX_LEN} hex digits"),
    }
}

/// Reads `[prefix]<64 hex digits>` (hex in either case; the prefix is
/// case-sensitive) into the 32 digest bytes.
pub fn parse_signature(
    value: &str,
    prefix: Option<&'static str>,
) -> Result<[u8; 32], SignatureForm> {
    let hex_part = match prefix {
        Some(p) => value.strip_prefix(p).ok_or(SignatureForm::NoPrefix(p))?,
        None => value,
    };
    if hex_part.len() != SHA256_HEX_LEN {
        return Err(SignatureForm::Length(hex_part.chars().count()));
    }
    let mut digest = [0u8; SHA256_HEX_LEN / 2];
    hex::decode_to_slice(hex_part, &mut digest).map_err(|_| SignatureForm::NotHex)?;
    Ok(digest)
}

/// Whether `digest` is the HMAC-SHA256 of `body` under any non-empty secret
/// of `secrets`, each compared in constant time ([`Mac::verify_slice`]).
pub fn verify_digest(digest: &[u8], body: &[u8], secrets: &[&Secret]) -> bool {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| keyed(s))
        .any(|mut m| {
            m.update(body);
            m.verify_slice(digest).is_ok()
        })
}

/// Checks a signature `value` of the form `[prefix]<64 hex digits>` against
/// the HMAC-SHA256 of `body` under each of `secrets` (see
/// [`parse_signature`] and [`verify_digest`]).
pub fn check_signature(
    value: &str,
    prefix: Option<&'static str>,
    body: &[u8],
    secrets: &[&Secret],
) -> Result<(), SignatureError> {
    let digest = parse_signature(value, prefix).map_err(SignatureError::Malformed)?;
    if verify_digest(&digest, body, secrets) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Whether `token` equals any non-empty secret of `secrets`. Compares
/// SHA-256 digests of both sides in constant time and checks every secret,
/// so neither the content nor the length of a secret, nor which one
/// matched, shows in the timing.
pub fn token_matches_any(token: &str, secrets: &[&Secret]) -> bool {
    let got = Sha256::digest(token.as_bytes());
    let mut ok = subtle::Choice::from(0u8);
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let want = Sha256::digest(secret.expose().as_bytes());
        ok |= got.as_slice().ct_eq(want.as_slice());
    }
    bool::from(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's documented X-Hub-Signature-256 test vector.
    const VECTOR_SECRET: &str = "It's a Secret to Everybody";
    const VECTOR_BODY: &[u8] = b"Hello, World!";
    const VECTOR_HEX: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn s(v: &str) -> Secret {
        Secret::new(v)
    }

    #[test]
    fn signs_the_documented_vector() {
        let k = s(VECTOR_SECRET);
        assert_eq!(sign_hex(&k, VECTOR_BODY), VECTOR_HEX);
        assert_eq!(sign_sha256(&k, VECTOR_BODY), format!("sha256={VECTOR_HEX}"));
    }

    #[test]
    fn signature_forms() {
        let upper = VECTOR_HEX.to_ascii_uppercase();
        let prefixed = format!("sha256={VECTOR_HEX}");
        assert!(parse_signature(VECTOR_HEX, None).is_ok());
        assert!(parse_signature(&upper, None).is_ok());
        assert!(parse_signature(&prefixed, Some(SHA256_PREFIX)).is_ok());
        let cases: Vec<(String, Option<&'static str>, SignatureForm)> = vec![
            (
                VECTOR_HEX.to_string(),
                Some(SHA256_PREFIX),
                SignatureForm::NoPrefix("sha256="),
            ),
            (
                format!("SHA256={VECTOR_HEX}"),
                Some(SHA256_PREFIX),
                SignatureForm::NoPrefix("sha256="),
            ),
            ("abc".into(), None, SignatureForm::Length(3)),
            (prefixed.clone(), None, SignatureForm::Length(71)),
            (
                format!("{}é", &VECTOR_HEX[..63]),
                None,
                SignatureForm::Length(64),
            ),
            (
                format!("{}zz", &VECTOR_HEX[..62]),
                None,
                SignatureForm::NotHex,
            ),
        ];
        for (value, prefix, want) in cases {
            assert_eq!(parse_signature(&value, prefix), Err(want), "{value}");
        }
        assert_eq!(
            SignatureForm::NoPrefix("sha256=").to_string(),
            "it does not start with 'sha256='"
        );
        assert_eq!(
            expected_form(Some("sha256=")),
            "'sha256=' followed by 64 hex digits"
        );
        assert_eq!(expected_form(None), "64 hex digits");
    }

    #[test]
    fn verifies_with_any_non_empty_secret() {
        let (k, old, empty) = (s(VECTOR_SECRET), s("old"), s(""));
        assert_eq!(
            check_signature(VECTOR_HEX, None, VECTOR_BODY, &[&old, &k]),
            Ok(())
        );
        assert_eq!(
            check_signature(VECTOR_HEX, None, VECTOR_BODY, &[&old]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check_signature(VECTOR_HEX, None, b"Hello, World?", &[&k]),
            Err(SignatureError::Mismatch)
        );
        // An empty secret never verifies, not even its own MAC.
        let by_empty = sign_hex(&empty, VECTOR_BODY);
        assert_eq!(
            check_signature(&by_empty, None, VECTOR_BODY, &[&empty]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(usable(&[empty, k.clone()]), vec![&k]);
    }

    #[test]
    fn tokens_compare_exactly() {
        let (a, b, empty) = (s("s3cret"), s("other"), s(""));
        assert!(token_matches_any("s3cret", &[&b, &a]));
        for wrong in ["s3cre", "s3cretX", "S3CRET", ""] {
            assert!(!token_matches_any(wrong, &[&a, &b]), "{wrong}");
        }
        assert!(!token_matches_any("", &[&empty]));
        assert!(!token_matches_any("s3cret", &[]));
    }

    #[test]
    fn secrets_never_print() {
        let k = s("hunter2");
        assert_eq!(format!("{k:?}"), "Secret([redacted])");
        assert_eq!(format!("{:?}", vec![k.clone()]), "[Secret([redacted])]");
        assert_eq!(Secret::from_file_text("hunter2\r\n").expose(), "hunter2");
        assert_eq!(Secret::from_file_text(" a b \n").expose(), " a b");
    }
}
