//! Registry credentials on AWS, for the poll tick:
//!
//! - Amazon ECR hosts (`<account>.dkr.ecr.<region>.amazonaws.com`): an
//!   authorization token from `GetAuthorizationToken`, asked in the
//!   registry's region for its account, cached until shortly before it
//!   expires (tokens last 12 hours). The function's role decides which
//!   accounts and regions it may read (template parameter
//!   `PollEcrRepositoryArns`).
//! - Any other registry: a Secrets Manager secret
//!   `<stack>/registries/<host>` holding `{"username", "password"}`
//!   (written by `crtask registry credential add`), cached for five minutes,
//!   a missing one too.
//!
//! Neither value is ever logged; errors name the host or secret only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use crtask_core::ports::{Clock, SystemClock};
use crtask_core::trigger::registry::credentials::{
    self, ecr_registry, secret_name, token_usable, Credential, CredentialSource, StoredCredential,
};

use crate::config::Lazy;
use crate::error::{describe, Error, Result};

/// How long a stored credential (or its absence) is cached.
pub const STORED_CACHE_TTL: Duration = Duration::from_secs(300);

type Stored = (Instant, Option<Credential>);

/// ECR tokens and stored credentials, cached; one per process.
pub struct AwsRegistryCredentials {
    sdk: SdkConfig,
    ecr: Mutex<HashMap<String, aws_sdk_ecr::Client>>,
    tokens: Mutex<HashMap<String, (Credential, DateTime<Utc>)>>,
    secrets: Option<(Lazy<aws_sdk_secretsmanager::Client>, String)>,
    stored: Mutex<HashMap<String, Stored>>,
    clock: Arc<dyn Clock>,
    token_calls: std::sync::atomic::AtomicUsize,
}

impl AwsRegistryCredentials {
    /// ECR tokens only; clients are built from `sdk` (per region).
    pub fn new(sdk: &SdkConfig) -> Self {
        AwsRegistryCredentials {
            sdk: sdk.clone(),
            ecr: Mutex::default(),
            tokens: Mutex::default(),
            secrets: None,
            stored: Mutex::default(),
            clock: Arc::new(SystemClock),
            token_calls: Default::default(),
        }
    }

    /// Reads other registries' credentials from secrets named
    /// `<prefix>/registries/<host>` (the prefix is the stack name).
    pub fn with_stored(
        mut self,
        client: impl Into<Lazy<aws_sdk_secretsmanager::Client>>,
        prefix: impl Into<String>,
    ) -> Self {
        self.secrets = Some((client.into(), prefix.into()));
        self
    }

    /// The time source for token expiry.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many `GetAuthorizationToken` calls were made (for tests of the cache).
    pub fn token_calls(&self) -> usize {
        self.token_calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn ecr_client(&self, region: &str) -> aws_sdk_ecr::Client {
        let mut clients = self.ecr.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = aws_sdk_ecr::config::Builder::from(&self.sdk)
                    .region(aws_sdk_ecr::config::Region::new(region.to_string()))
                    .build();
                aws_sdk_ecr::Client::from_conf(conf)
            })
            .clone()
    }

    /// The ECR token of `host` (account `account`, region `region`).
    async fn ecr_token(&self, host: &str, account: &str, region: &str) -> Result<Credential> {
        let now = self.clock.now();
        if let Some((c, _)) = self
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .filter(|(_, exp)| token_usable(Some(*exp), now))
        {
            return Ok(c.clone());
        }
        self.token_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        #[allow(deprecated)] // registryIds: the token of another account's registry.
        let out = self
            .ecr_client(region)
            .get_authorization_token()
            .registry_ids(account)
            .send()
            .await
            .map_err(|e| {
                Error::Config(format!(
                    "ECR GetAuthorizationToken for {host} failed: {}",
                    describe(&e)
                ))
            })?;
        let data = out.authorization_data().first().ok_or_else(|| {
            Error::Config(format!("ECR returned no authorization data for {host}"))
        })?;
        let token = data
            .authorization_token()
            .ok_or_else(|| Error::Config(format!("ECR returned no token for {host}")))?;
        let cred = Credential::from_ecr_token(token)
            .map_err(|e| Error::Config(format!("ECR token for {host}: {e}")))?;
        let expires = data
            .expires_at()
            .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
        if let Some(exp) = expires.filter(|e| token_usable(Some(*e), now)) {
            self.tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(host.to_string(), (cred.clone(), exp));
        }
        Ok(cred)
    }

    /// The stored credential of `host`, if any.
    async fn stored(&self, host: &str) -> Result<Option<Credential>> {
        let Some((client, prefix)) = &self.secrets else {
            return Ok(None);
        };
        if let Some((at, c)) = self
            .stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
        {
            if at.elapsed() < STORED_CACHE_TTL {
                return Ok(c.clone());
            }
        }
        let name = secret_name(prefix, host);
        let found = match client.get_secret_value().secret_id(&name).send().await {
            Ok(out) => {
                let text = out.secret_string().unwrap_or_default();
                let c = StoredCredential::parse(text).map_err(|e| Error::Secrets {
                    id: name.clone(),
                    message: e.to_string(),
                })?;
                Some(c.credential())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                None
            }
            Err(e) => {
                return Err(Error::Secrets {
                    id: name,
                    message: describe(&e),
                })
            }
        };
        self.stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), (Instant::now(), found.clone()));
        Ok(found)
    }
}

#[async_trait::async_trait]
impl CredentialSource for AwsRegistryCredentials {
    async fn credential(&self, host: &str) -> std::result::Result<Option<Credential>, String> {
        let host = host.to_ascii_lowercase();
        let r = match ecr_registry(&host) {
            Some(ecr) => self
                .ecr_token(&host, &ecr.account_id, &ecr.region)
                .await
                .map(Some),
            None => self.stored(&host).await,
        };
        r.map_err(|e| e.to_string())
    }
}

/// The stored credentials of one stack, for `crtask registry credential`.
pub struct StoredCredentials {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
}

impl StoredCredentials {
    /// The secrets `<prefix>/registries/*` (the prefix is the stack name).
    pub fn new(sdk: &SdkConfig, prefix: impl Into<String>) -> Self {
        StoredCredentials {
            client: crate::config::secretsmanager(sdk),
            prefix: prefix.into(),
        }
    }

    /// Creates or updates the secret of `host`; returns its name.
    pub async fn put(&self, host: &str, cred: &StoredCredential) -> Result<String> {
        put_stored(&self.client, &self.prefix, host, cred).await
    }

    /// The hosts with a secret (values are not read).
    pub async fn list(&self) -> Result<Vec<String>> {
        list_stored(&self.client, &self.prefix).await
    }

    /// Deletes the secret of `host`; `false` when there was none.
    pub async fn remove(&self, host: &str) -> Result<bool> {
        remove_stored(&self.client, &self.prefix, host).await
    }
}

/// `crtask registry credential add` on AWS: creates or updates the secret
/// `<prefix>/registries/<host>`; returns its name.
pub async fn put_stored(
    client: &aws_sdk_secretsmanager::Client,
    prefix: &str,
    host: &str,
    cred: &StoredCredential,
) -> Result<String> {
    let host = credentials::normalize_host(host)?;
    cred.validate()?;
    let name = secret_name(prefix, &host);
    let value = serde_json::to_string(cred).map_err(|e| Error::Config(e.to_string()))?;
    crate::secrets::put_named(
        client,
        &name,
        &format!("crtask: credential for registry {host}"),
        &value,
    )
    .await?;
    Ok(name)
}

/// `crtask registry credential list` on AWS: the hosts with a secret under
/// `prefix` (values are not read).
pub async fn list_stored(
    client: &aws_sdk_secretsmanager::Client,
    prefix: &str,
) -> Result<Vec<String>> {
    let start = secret_name(prefix, "");
    let mut hosts = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .list_secrets()
            .filters(
                aws_sdk_secretsmanager::types::Filter::builder()
                    .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                    .values(&start)
                    .build(),
            )
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| Error::Secrets {
                id: start.clone(),
                message: describe(&e),
            })?;
        hosts.extend(
            out.secret_list()
                .iter()
                .filter_map(|s| s.name())
                .filter_map(|n| credentials::host_of_secret(prefix, n)),
        );
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    hosts.sort();
    hosts.dedup();
    Ok(hosts)
}

/// `crtask registry credential remove` on AWS: deletes the secret at once
/// (no recovery window, so the host can be added again); `false` when
/// there was none.
pub async fn remove_stored(
    client: &aws_sdk_secretsmanager::Client,
    prefix: &str,
    host: &str,
) -> Result<bool> {
    let host = credentials::normalize_host(host)?;
    crate::secrets::delete_named(client, &secret_name(prefix, &host)).await
}
