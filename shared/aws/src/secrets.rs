//! Secrets Manager: webhook secrets, git tokens and task-file secrets
//! (`keyvault: arn:aws:secretsmanager:...`), cached.
//!
//! During a rotation more than one value is valid: the current one
//! (`AWSCURRENT`), the one being rotated in (`AWSPENDING`) and the one just
//! rotated out (`AWSPREVIOUS`), so a sender still signing with the old
//! secret, or already with the new one, is accepted. Values are cached for
//! a short time (default 5 minutes) so a busy function does not call
//! Secrets Manager per event.

use crate::config::Lazy;
use crate::error::{Error, Result};
use aws_sdk_secretsmanager::Client;
use crtask_core::build::secrets::{SecretRef, SecretResolver};
use crtask_core::signing::Secret;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The version stages read, in order of preference.
pub const STAGES: [&str; 3] = ["AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"];

/// How long values are cached by default.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

/// Reads secrets, caching each secret's valid values.
pub struct SecretsManagerSecrets {
    client: Lazy<Client>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Vec<Secret>)>>,
}

impl SecretsManagerSecrets {
    pub fn new(client: impl Into<Lazy<Client>>) -> Self {
        SecretsManagerSecrets {
            client: client.into(),
            ttl: DEFAULT_CACHE_TTL,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Caches values for `ttl` (zero: no cache).
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Every currently valid value of the secret `id` (name or ARN),
    /// current first, without repeats. Text secrets only; a trailing line
    /// break is not part of the value.
    pub async fn valid_values(&self, id: &str) -> Result<Vec<Secret>> {
        if let Some(v) = self.cached(id) {
            return Ok(v);
        }
        let mut values: Vec<Secret> = Vec::new();
        for stage in STAGES {
            let r = self
                .client
                .get_secret_value()
                .secret_id(id)
                .version_stage(stage)
                .send()
                .await;
            let out = match r {
                Ok(o) => o,
                // No version in this stage (no rotation going on).
                Err(e)
                    if stage != "AWSCURRENT"
                        && e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    continue
                }
                Err(e) => {
                    return Err(Error::Secrets {
                        id: id.to_string(),
                        message: crate::error::describe(&e),
                    })
                }
            };
            let Some(text) = out.secret_string() else {
                continue;
            };
            let s = Secret::from_file_text(text);
            if !values.contains(&s) {
                values.push(s);
            }
        }
        if values.is_empty() {
            return Err(Error::Secrets {
                id: id.to_string(),
                message: "it has no text value: store the secret as a string".into(),
            });
        }
        if !self.ttl.is_zero() {
            if let Ok(mut c) = self.cache.lock() {
                c.insert(id.to_string(), (Instant::now(), values.clone()));
            }
        }
        Ok(values)
    }

    /// The current value only (a git token, say).
    pub async fn current(&self, id: &str) -> Result<Secret> {
        let mut v = self.valid_values(id).await?;
        Ok(v.swap_remove(0))
    }

    /// Forgets cached values (after a rotation this process made itself).
    pub fn invalidate(&self, id: &str) {
        if let Ok(mut c) = self.cache.lock() {
            c.remove(id);
        }
    }

    fn cached(&self, id: &str) -> Option<Vec<Secret>> {
        let c = self.cache.lock().ok()?;
        let (at, v) = c.get(id)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }
}

/// Task-file secrets whose `keyvault` is a Secrets Manager ARN: the
/// current value, read by `crtask exec` in the builder.
#[async_trait::async_trait]
impl SecretResolver for SecretsManagerSecrets {
    async fn resolve(&self, r: &SecretRef) -> std::result::Result<Secret, String> {
        match r {
            SecretRef::AwsSecretsManager(arn) => self.current(arn).await.map_err(|e| match e {
                Error::Secrets { message, .. } => message,
                other => other.to_string(),
            }),
            _ => Err("not a Secrets Manager secret".to_string()),
        }
    }
}

/// Creates secret `name` with `value`, or puts `value` as its new version
/// when it exists.
pub async fn put_named(client: &Client, name: &str, description: &str, value: &str) -> Result<()> {
    let created = client
        .create_secret()
        .name(name)
        .description(description)
        .secret_string(value)
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_exists_exception()) =>
        {
            client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .map_err(|e| Error::Secrets {
                    id: name.to_string(),
                    message: crate::error::describe(&e),
                })?;
            Ok(())
        }
        Err(e) => Err(Error::Secrets {
            id: name.to_string(),
            message: crate::error::describe(&e),
        }),
    }
}

/// Deletes secret `name` at once (no recovery window); `false` when there
/// was none.
pub async fn delete_named(client: &Client, name: &str) -> Result<bool> {
    match client
        .delete_secret()
        .secret_id(name)
        .force_delete_without_recovery(true)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(Error::Secrets {
            id: name.to_string(),
            message: crate::error::describe(&e),
        }),
    }
}
