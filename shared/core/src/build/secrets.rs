//! Task-file secrets (`secrets: [{id, keyvault}]`): where each value is,
//! resolving them all before a step runs, and keeping the values out of
//! what a run records.
//!
//! A `keyvault` reference is one of:
//! - `file:///abs/path`: a file read when the run starts, on the machine
//!   that runs the steps (the local server, or the builder on AWS);
//! - `crtask://NAME`: a secret the server holds (`crtask serve
//!   --secret-dir DIR` reads `DIR/NAME`);
//! - `arn:aws:secretsmanager:...`: a Secrets Manager secret, read by the
//!   builder on AWS;
//! - anything else (an Azure Key Vault URL, ...) cannot be resolved here,
//!   and the run fails naming the secret.
//!
//! Errors name the secret's id and reference, never a value. Values are
//! [`Secret`]s (their `Debug` is redacted).

use super::taskfile;
use crate::signing::Secret;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The scheme of secrets the server holds.
pub const SERVER_SCHEME: &str = "crtask://";

/// Where a secret's value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `file:///abs/path`.
    File(PathBuf),
    /// `crtask://NAME`: held by the server.
    Server(String),
    /// A Secrets Manager ARN.
    AwsSecretsManager(String),
    /// Anything else, with why it cannot be used.
    Unsupported(String),
}

/// Reads a `keyvault` reference.
pub fn classify(keyvault: &str) -> SecretRef {
    let k = keyvault.trim();
    if let Some(rest) = k.strip_prefix("file://") {
        return if rest.starts_with('/') && !rest.split('/').any(|c| c == "..") {
            SecretRef::File(PathBuf::from(rest))
        } else {
            SecretRef::Unsupported(
                "a file:// reference needs an absolute path without '..' (file:///path)".into(),
            )
        };
    }
    if let Some(name) = k.strip_prefix(SERVER_SCHEME) {
        return if valid_server_name(name) {
            SecretRef::Server(name.to_string())
        } else {
            SecretRef::Unsupported(
                "a crtask:// name is 1-128 letters, digits, '.', '_' or '-', not starting with '.'"
                    .into(),
            )
        };
    }
    if k.starts_with("arn:aws:secretsmanager:")
        || k.starts_with("arn:aws-") && k.contains(":secretsmanager:")
    {
        return SecretRef::AwsSecretsManager(k.to_string());
    }
    if k.contains(".vault.azure.net") {
        return SecretRef::Unsupported(
            "Azure Key Vault is not reachable from crtask: use file:///path, crtask://NAME or a Secrets Manager ARN".into(),
        );
    }
    SecretRef::Unsupported(
        "unknown reference: use file:///path, crtask://NAME or a Secrets Manager ARN".into(),
    )
}

/// A name of a secret the server holds: it becomes a file name, so only
/// letters, digits, `.`, `_` and `-`, not starting with `.`.
pub fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Reads secret values for a platform.
#[async_trait]
pub trait SecretResolver: Send + Sync {
    /// The value behind `r`, or a one-line reason (without the value).
    async fn resolve(&self, r: &SecretRef) -> Result<Secret, String>;
}

/// Resolves every secret of a task file, in order. The first failure is an
/// error naming the secret's id. An empty value is a failure too: it is
/// almost always a mistake (an empty file), and it could not be masked.
pub async fn resolve_all(
    secrets: &[taskfile::Secret],
    resolver: &dyn SecretResolver,
) -> Result<BTreeMap<String, Secret>, String> {
    let mut out = BTreeMap::new();
    for s in secrets {
        let r = classify(&s.keyvault);
        let value = match &r {
            SecretRef::Unsupported(why) => Err(why.clone()),
            r => resolver.resolve(r).await,
        }
        .and_then(|v| {
            if v.is_empty() {
                Err("its value is empty".to_string())
            } else {
                Ok(v)
            }
        })
        .map_err(|why| {
            format!(
                "cannot resolve secret '{}' ({}): {why}",
                s.id,
                printable(&s.keyvault)
            )
        })?;
        out.insert(s.id.clone(), value);
    }
    Ok(out)
}

/// `.Secrets` for templates: id -> value.
pub fn template_value(values: &BTreeMap<String, Secret>) -> serde_json::Value {
    serde_json::Value::Object(
        values
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.expose().to_string())))
            .collect(),
    )
}

/// `text` with every secret value replaced by `mask` (longest values first,
/// so a value containing another is replaced whole). For messages that are
/// stored with a run.
pub fn redact(text: &str, values: &BTreeMap<String, Secret>, mask: &str) -> String {
    let mut vals: Vec<&str> = values
        .values()
        .map(Secret::expose)
        .filter(|v| !v.is_empty())
        .collect();
    vals.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_string();
    for v in vals {
        if out.contains(v) {
            out = out.replace(v, mask);
        }
    }
    out
}

/// A reference as it may be shown: control characters replaced.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn references_are_classified() {
        assert_eq!(
            classify("file:///run/secrets/token"),
            SecretRef::File(PathBuf::from("/run/secrets/token"))
        );
        assert_eq!(
            classify("crtask://db-pass"),
            SecretRef::Server("db-pass".into())
        );
        assert_eq!(
            classify("arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf"),
            SecretRef::AwsSecretsManager(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf".into()
            )
        );
        for bad in [
            "file://relative/x",
            "file:///a/../etc/shadow",
            "crtask://../x",
            "crtask://a/b",
            "crtask://",
            "crtask://.hidden",
            "https://myvault.vault.azure.net/secrets/x",
            "plain",
            "arn:aws:s3:::bucket",
        ] {
            assert!(
                matches!(classify(bad), SecretRef::Unsupported(_)),
                "{bad}: {:?}",
                classify(bad)
            );
        }
    }

    /// Answers from a map; records what it was asked.
    struct Fixed(
        BTreeMap<String, Result<String, String>>,
        Mutex<Vec<SecretRef>>,
    );

    #[async_trait]
    impl SecretResolver for Fixed {
        async fn resolve(&self, r: &SecretRef) -> Result<Secret, String> {
            self.1.lock().unwrap().push(r.clone());
            let key = match r {
                SecretRef::File(p) => p.display().to_string(),
                SecretRef::Server(n) | SecretRef::AwsSecretsManager(n) => n.clone(),
                SecretRef::Unsupported(w) => w.clone(),
            };
            self.0
                .get(&key)
                .cloned()
                .unwrap_or_else(|| Err("not found".into()))
                .map(Secret::new)
        }
    }

    fn secret(id: &str, kv: &str) -> taskfile::Secret {
        taskfile::Secret {
            id: id.into(),
            keyvault: kv.into(),
            client_id: None,
        }
    }

    #[tokio::test]
    async fn every_secret_resolves_or_the_error_names_it() {
        let r = Fixed(
            [
                ("/s/a".to_string(), Ok("alpha".to_string())),
                ("b".to_string(), Ok("beta".to_string())),
                ("empty".to_string(), Ok(String::new())),
            ]
            .into_iter()
            .collect(),
            Mutex::new(Vec::new()),
        );
        let got = resolve_all(&[secret("a", "file:///s/a"), secret("b", "crtask://b")], &r)
            .await
            .unwrap();
        assert_eq!(got["a"].expose(), "alpha");
        assert_eq!(got["b"].expose(), "beta");
        assert_eq!(template_value(&got)["b"], "beta");

        let err = resolve_all(&[secret("tok", "crtask://missing")], &r)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            "cannot resolve secret 'tok' (crtask://missing): not found"
        );
        let err = resolve_all(&[secret("e", "crtask://empty")], &r)
            .await
            .unwrap_err();
        assert!(err.contains("'e'") && err.contains("empty"), "{err}");
        // An unusable reference is refused without asking the platform.
        let before = r.1.lock().unwrap().len();
        let err = resolve_all(
            &[secret("kv", "https://v.vault.azure.net/secrets/x\u{1b}[2J")],
            &r,
        )
        .await
        .unwrap_err();
        assert!(
            err.contains("'kv'") && err.contains("Azure Key Vault"),
            "{err}"
        );
        assert!(
            !err.contains('\u{1b}'),
            "control characters are not echoed: {err:?}"
        );
        assert_eq!(r.1.lock().unwrap().len(), before);
    }

    #[test]
    fn redact_replaces_every_value_longest_first() {
        let values: BTreeMap<String, Secret> = [
            ("a".to_string(), Secret::new("abc")),
            ("b".to_string(), Secret::new("abcdef")),
            ("e".to_string(), Secret::new("")),
        ]
        .into_iter()
        .collect();
        assert_eq!(redact("x abcdef y abc z", &values, "***"), "x *** y *** z");
        assert_eq!(redact("nothing", &values, "***"), "nothing");
    }
}
