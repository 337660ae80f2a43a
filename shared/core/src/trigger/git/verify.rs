//! Step 1 of a git webhook: proof that the delivery is genuine, checked on
//! the raw body before anything is parsed. Next: [`super::event`].
//!
//! | provider | header | value |
//! |---|---|---|
//! | GitHub | `X-Hub-Signature-256` | `sha256=<hex HMAC-SHA256(secret, body)>` |
//! | GitLab | `X-Gitlab-Token` | the secret itself |
//! | Gitea | `X-Gitea-Signature` | `<hex HMAC-SHA256(secret, body)>` (no prefix) |
//! | Forgejo | `X-Forgejo-Signature` (else `X-Gitea-Signature`) | as Gitea |
//! | Bitbucket Cloud | `X-Hub-Signature` | `sha256=<hex HMAC-SHA256(secret, body)>` |
//!
//! Several secrets may be valid at once (rotation): a delivery is genuine when
//! any one of them verifies. The MACs and the constant-time comparisons are
//! those of [`crate::signing`] ([`signing::check_signature`] for signatures,
//! [`signing::token_matches_any`] over SHA-256 digests for GitLab tokens, so
//! neither the content nor the length of the secret leaks).
//!
//! Headers are read through [`HeaderLookup`] (see [`crate::trigger::request`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::signing::{self, Secret, SignatureError, SHA256_PREFIX};
use crate::trigger::request::{header, HeaderLookup};

/// A git hosting service that sends webhooks, told by its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// github.com and GitHub Enterprise Server.
    GitHub,
    /// gitlab.com and self-managed GitLab.
    GitLab,
    /// Gitea (and Gogs-compatible headers).
    Gitea,
    /// Forgejo (sends the Gitea headers too).
    Forgejo,
    /// Bitbucket Cloud.
    Bitbucket,
}

impl Provider {
    /// Stable lower-case name (`github`, `gitlab`, `gitea`, `forgejo`, `bitbucket`).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Gitea => "gitea",
            Provider::Forgejo => "forgejo",
            Provider::Bitbucket => "bitbucket",
        }
    }

    /// The header that names the event type for this provider.
    pub fn event_header(self) -> &'static str {
        match self {
            Provider::GitHub => "X-GitHub-Event",
            Provider::GitLab => "X-Gitlab-Event",
            Provider::Gitea => "X-Gitea-Event",
            Provider::Forgejo => "X-Forgejo-Event",
            Provider::Bitbucket => "X-Event-Key",
        }
    }

    /// The header that carries the signature or token for this provider.
    pub fn signature_header(self) -> &'static str {
        match self {
            Provider::GitHub => "X-Hub-Signature-256",
            Provider::GitLab => "X-Gitlab-Token",
            Provider::Gitea => "X-Gitea-Signature",
            Provider::Forgejo => "X-Forgejo-Signature",
            Provider::Bitbucket => "X-Hub-Signature",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a delivery was not accepted as genuine (answer 401).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// The signature or token header is absent or empty.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// The signature header is present but not of the expected form.
    #[error("{0}")]
    Malformed(String),
    /// The header is well-formed but matches none of the configured secrets.
    #[error("signature does not match any configured webhook secret")]
    Mismatch,
    /// No (non-empty) secret is configured, so nothing can be verified.
    #[error(
        "no git webhook secret is configured: give the server a secret (--git-webhook-secret-file)"
    )]
    NoSecretConfigured,
}

/// Tells the provider of a delivery by its event header.
///
/// Gitea and Forgejo also send `X-GitHub-Event` (and Forgejo sends
/// `X-Gitea-Event`), so their own headers are checked first: Forgejo, then
/// Gitea, then GitLab, GitHub and Bitbucket (`X-Event-Key`).
pub fn detect_provider(h: &dyn HeaderLookup) -> Option<Provider> {
    [
        Provider::Forgejo,
        Provider::Gitea,
        Provider::GitLab,
        Provider::GitHub,
        Provider::Bitbucket,
    ]
    .into_iter()
    .find(|p| header(h, p.event_header()).is_some())
}

/// Checks the delivery's signature (or GitLab token) against every configured
/// secret; `Ok` when any one of them matches. Empty secrets are skipped, so an
/// empty secret never makes a delivery genuine.
pub fn verify(
    provider: Provider,
    headers: &dyn HeaderLookup,
    body: &[u8],
    secrets: &[Secret],
) -> Result<(), VerifyError> {
    let secrets = signing::usable(secrets);
    if secrets.is_empty() {
        return Err(VerifyError::NoSecretConfigured);
    }
    match provider {
        Provider::GitHub => verify_hmac(
            headers,
            "X-Hub-Signature-256",
            Some(SHA256_PREFIX),
            body,
            &secrets,
        ),
        Provider::Bitbucket => verify_hmac(
            headers,
            "X-Hub-Signature",
            Some(SHA256_PREFIX),
            body,
            &secrets,
        ),
        Provider::Gitea => verify_hmac(headers, "X-Gitea-Signature", None, body, &secrets),
        Provider::Forgejo => {
            let name = if header(headers, "X-Forgejo-Signature").is_some() {
                "X-Forgejo-Signature"
            } else if header(headers, "X-Gitea-Signature").is_some() {
                "X-Gitea-Signature"
            } else {
                return Err(VerifyError::Missing("X-Forgejo-Signature"));
            };
            verify_hmac(headers, name, None, body, &secrets)
        }
        Provider::GitLab => verify_token(headers, &secrets),
    }
}

fn verify_hmac(
    headers: &dyn HeaderLookup,
    name: &'static str,
    prefix: Option<&'static str>,
    body: &[u8],
    secrets: &[&Secret],
) -> Result<(), VerifyError> {
    let value = header(headers, name).ok_or(VerifyError::Missing(name))?;
    signing::check_signature(value, prefix, body, secrets).map_err(|e| match e {
        SignatureError::Malformed(why) => VerifyError::Malformed(format!(
            "malformed {name} header: {why}; expected {}",
            signing::expected_form(prefix)
        )),
        SignatureError::Mismatch => VerifyError::Mismatch,
    })
}

fn verify_token(headers: &dyn HeaderLookup, secrets: &[&Secret]) -> Result<(), VerifyError> {
    let name = "X-Gitlab-Token";
    // Not trimmed beyond what `header` does: a token is compared as sent.
    let token = header(headers, name).ok_or(VerifyError::Missing(name))?;
    if signing::token_matches_any(token, secrets) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::request::Headers;

    const VECTOR_SECRET: &str = "It's a Secret to Everybody";
    const VECTOR_BODY: &[u8] = b"Hello, World!";
    const VECTOR_SIG: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    type Hdrs<'a> = Vec<(&'a str, &'a str)>;
    type Case<'a> = (
        &'a str,
        Hdrs<'a>,
        &'a [u8],
        Vec<&'a str>,
        Result<(), &'a str>,
    );

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn hex_hmac(secret: &str, body: &[u8]) -> String {
        signing::sign_hex(&Secret::new(secret), body)
    }

    fn check(
        provider: Provider,
        hdrs: &[(&str, &str)],
        body: &[u8],
        secrets: &[&str],
    ) -> Result<(), VerifyError> {
        let p = pairs(hdrs);
        let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        verify(provider, &Headers::new(&p), body, &secrets)
    }

    #[test]
    fn github_documented_test_vector_verifies() {
        assert_eq!(
            check(
                Provider::GitHub,
                &[("X-Hub-Signature-256", VECTOR_SIG)],
                VECTOR_BODY,
                &[VECTOR_SECRET]
            ),
            Ok(())
        );
        assert_eq!(
            format!("sha256={}", hex_hmac(VECTOR_SECRET, VECTOR_BODY)),
            VECTOR_SIG
        );
    }

    #[test]
    fn github_signature_table() {
        let good = VECTOR_SIG;
        let upper_hex = format!("sha256={}", &VECTOR_SIG[7..].to_ascii_uppercase());
        let truncated = &VECTOR_SIG[..VECTOR_SIG.len() - 2];
        let too_long = format!("{VECTOR_SIG}00");
        let non_hex = format!("sha256={}zz", &VECTOR_SIG[7..69]);
        let multibyte = format!("sha256={}é", &VECTOR_SIG[7..70]);
        let cases: Vec<Case> = vec![
            (
                "valid",
                vec![("x-hub-signature-256", good)],
                VECTOR_BODY,
                vec![VECTOR_SECRET],
                Ok(()),
            ),
            (
                "upper-case hex digits",
                vec![("X-Hub-Signature-256", &upper_hex)],
                VECTOR_BODY,
                vec![VECTOR_SECRET],
                Ok(()),
            ),
            (
                "rotation: second secret",
                vec![("X-Hub-Signature-256", good)],
                VECTOR_BODY,
                vec!["old", VECTOR_SECRET],
                Ok(()),
            ),
            (
                "empty secret skipped",
                vec![("X-Hub-Signature-256", good)],
                VECTOR_BODY,
                vec!["", VECTOR_SECRET],
                Ok(()),
            ),
            (
                "wrong secret",
                vec![("X-Hub-Signature-256", good)],
                VECTOR_BODY,
                vec!["nope"],
                Err("mismatch"),
            ),
            (
                "altered body",
                vec![("X-Hub-Signature-256", good)],
                b"Hello, World?",
                vec![VECTOR_SECRET],
                Err("mismatch"),
            ),
            (
                "truncated",
                vec![("X-Hub-Signature-256", truncated)],
                VECTOR_BODY,
                vec![VECTOR_SECRET],
                Err("malformed"),
            ),
            (
                "too long",
                vec![("X-Hub-Signature-256", &too_long)],
                VECTOR_BODY,
                vec![VECTOR_SECRET],
                Err("malformed"),
            ),
            (
                "non-hex",
                vec![("X-Hub-Signature-256", &non_hex)],
                VECTOR_BODY,
                vec![VECTOR_SECRET],
                Err("malformed"),
            ),
            (
                "multibyte char",
                vec![("X-Hub-Signature-256", &multibyte)],
                VECTOR_BODY,
                vec![VECTOR_SECRET],
                Err("malformed"),
            ),
            (
                "upper-case prefix",
                vec![(
                    "X-Hub-Signature-256",
                    "SHA256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                )],
                VECTOR_BODY,
                vec![VECTOR_SECRET],
                Err("malformed"),
            ),
            (
                "sha1 prefix",
                vec![(
                    "X-Hub-Signature-256",
                    "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                )],
                VECTOR_BODY,
                vec![VECTOR_SECRET],
                Err("malformed"),
            ),
            (
                "prefix only",
                vec![("X-Hub-Signature-256", "sha256=")],
                VECTOR_BODY,
                vec![VECTOR_SECRET],
                Err("malformed"),
            ),
            (
                "empty value",
                vec![("X-Hub-Signature-256", "")],
                VECTOR_BODY,
                vec![VECTOR_SECRET],
                Err("missing"),
            ),
            (
                "only the sha1 header",
                vec![("X-Hub-Signature", "sha1=0000")],
                VECTOR_BODY,
                vec![VECTOR_SECRET],
                Err("missing"),
            ),
            (
                "no header",
                vec![],
                VECTOR_BODY,
                vec![VECTOR_SECRET],
                Err("missing"),
            ),
            (
                "no secrets",
                vec![("X-Hub-Signature-256", good)],
                VECTOR_BODY,
                vec![],
                Err("nosecret"),
            ),
            (
                "only empty secrets",
                vec![("X-Hub-Signature-256", good)],
                VECTOR_BODY,
                vec![""],
                Err("nosecret"),
            ),
        ];
        for (name, hdrs, body, secrets, want) in cases {
            let got = check(Provider::GitHub, &hdrs, body, &secrets);
            let kind = match &got {
                Ok(()) => Ok(()),
                Err(VerifyError::Missing(h)) => {
                    assert_eq!(*h, "X-Hub-Signature-256", "{name}");
                    Err("missing")
                }
                Err(VerifyError::Malformed(m)) => {
                    assert!(m.contains("X-Hub-Signature-256"), "{name}: {m}");
                    Err("malformed")
                }
                Err(VerifyError::Mismatch) => Err("mismatch"),
                Err(VerifyError::NoSecretConfigured) => Err("nosecret"),
            };
            assert_eq!(kind, want, "{name}: {got:?}");
        }
    }

    #[test]
    fn gitlab_token() {
        let cases: Vec<(Hdrs, Vec<&str>, Result<(), VerifyError>)> = vec![
            (vec![("X-Gitlab-Token", "s3cret")], vec!["s3cret"], Ok(())),
            (
                vec![("x-gitlab-token", "s3cret")],
                vec!["old", "s3cret"],
                Ok(()),
            ),
            (
                vec![("X-Gitlab-Token", "s3cre")],
                vec!["s3cret"],
                Err(VerifyError::Mismatch),
            ),
            (
                vec![("X-Gitlab-Token", "s3cretX")],
                vec!["s3cret"],
                Err(VerifyError::Mismatch),
            ),
            (
                vec![("X-Gitlab-Token", "S3CRET")],
                vec!["s3cret"],
                Err(VerifyError::Mismatch),
            ),
            (
                vec![("X-Gitlab-Token", "")],
                vec!["s3cret"],
                Err(VerifyError::Missing("X-Gitlab-Token")),
            ),
            (
                vec![("X-Hub-Signature-256", VECTOR_SIG)],
                vec!["s3cret"],
                Err(VerifyError::Missing("X-Gitlab-Token")),
            ),
            (
                vec![("X-Gitlab-Token", "s3cret")],
                vec![],
                Err(VerifyError::NoSecretConfigured),
            ),
        ];
        for (hdrs, secrets, want) in cases {
            assert_eq!(
                check(Provider::GitLab, &hdrs, b"{}", &secrets),
                want,
                "{hdrs:?} {secrets:?}"
            );
        }
    }

    #[test]
    fn gitea_and_forgejo_signatures() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let sig = hex_hmac("k", body);
        let other = hex_hmac("other", body);
        let prefixed = format!("sha256={sig}");
        assert_eq!(
            check(
                Provider::Gitea,
                &[("X-Gitea-Signature", &sig)],
                body,
                &["k"]
            ),
            Ok(())
        );
        assert_eq!(
            check(
                Provider::Gitea,
                &[("X-Gitea-Signature", &sig)],
                b"{}",
                &["k"]
            ),
            Err(VerifyError::Mismatch)
        );
        assert!(
            matches!(check(Provider::Gitea, &[("X-Gitea-Signature", &prefixed)], body, &["k"]), Err(VerifyError::Malformed(m)) if m.contains("X-Gitea-Signature"))
        );
        assert_eq!(
            check(
                Provider::Gitea,
                &[("X-Forgejo-Signature", &sig)],
                body,
                &["k"]
            ),
            Err(VerifyError::Missing("X-Gitea-Signature"))
        );
        // Forgejo prefers its own header, falls back to the Gitea one.
        assert_eq!(
            check(
                Provider::Forgejo,
                &[("X-Forgejo-Signature", &sig), ("X-Gitea-Signature", &other)],
                body,
                &["k"]
            ),
            Ok(())
        );
        assert_eq!(
            check(
                Provider::Forgejo,
                &[("X-Forgejo-Signature", &other), ("X-Gitea-Signature", &sig)],
                body,
                &["k"]
            ),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(
                Provider::Forgejo,
                &[("X-Gitea-Signature", &sig)],
                body,
                &["k"]
            ),
            Ok(())
        );
        assert_eq!(
            check(Provider::Forgejo, &[], body, &["k"]),
            Err(VerifyError::Missing("X-Forgejo-Signature"))
        );
    }

    #[test]
    fn bitbucket_signature() {
        let body = br#"{"push":{"changes":[]}}"#;
        let sig = format!("sha256={}", hex_hmac("bb", body));
        assert_eq!(
            check(
                Provider::Bitbucket,
                &[("X-Hub-Signature", &sig)],
                body,
                &["x", "bb"]
            ),
            Ok(())
        );
        assert_eq!(
            check(
                Provider::Bitbucket,
                &[("X-Hub-Signature", &sig)],
                body,
                &["x"]
            ),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(
                Provider::Bitbucket,
                &[("X-Hub-Signature-256", &sig)],
                body,
                &["bb"]
            ),
            Err(VerifyError::Missing("X-Hub-Signature"))
        );
        let bare = hex_hmac("bb", body);
        assert!(matches!(
            check(
                Provider::Bitbucket,
                &[("X-Hub-Signature", &bare)],
                body,
                &["bb"]
            ),
            Err(VerifyError::Malformed(_))
        ));
    }

    #[test]
    fn provider_detection() {
        let cases: Vec<(Hdrs, Option<Provider>)> = vec![
            (vec![("X-GitHub-Event", "push")], Some(Provider::GitHub)),
            (vec![("x-github-event", "ping")], Some(Provider::GitHub)),
            (
                vec![("X-Gitlab-Event", "Push Hook")],
                Some(Provider::GitLab),
            ),
            (
                vec![("X-GitHub-Event", "push"), ("X-Gitea-Event", "push")],
                Some(Provider::Gitea),
            ),
            (
                vec![
                    ("X-GitHub-Event", "push"),
                    ("X-Gitea-Event", "push"),
                    ("X-Forgejo-Event", "push"),
                ],
                Some(Provider::Forgejo),
            ),
            (
                vec![("X-Event-Key", "repo:push")],
                Some(Provider::Bitbucket),
            ),
            (vec![("X-GitHub-Event", "  ")], None),
            (vec![("Content-Type", "application/json")], None),
            (vec![], None),
        ];
        for (hdrs, want) in cases {
            let p = pairs(&hdrs);
            assert_eq!(detect_provider(&Headers::new(&p)), want, "{hdrs:?}");
        }
    }

    #[test]
    fn error_messages_name_the_header() {
        assert_eq!(
            VerifyError::Missing("X-Hub-Signature-256").to_string(),
            "missing X-Hub-Signature-256 header"
        );
        let e = check(
            Provider::GitHub,
            &[("X-Hub-Signature-256", "sha256=abc")],
            b"",
            &["k"],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed X-Hub-Signature-256 header: the digest has 3 characters; expected 'sha256=' followed by 64 hex digits"
        );
        for e in [VerifyError::Mismatch, VerifyError::NoSecretConfigured, e] {
            let m = e.to_string();
            assert!(m.starts_with(|c: char| c.is_ascii_lowercase()), "{m}");
        }
    }
}
