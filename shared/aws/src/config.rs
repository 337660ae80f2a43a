//! Building SDK clients: one HTTPS client (rustls with ring) shared by all.

use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_types::sdk_config::SharedCredentialsProvider;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use std::sync::{Arc, LazyLock};

/// Loads the AWS configuration the usual way (environment, profile,
/// container or instance credentials). `endpoint_url` overrides every
/// service's endpoint (an emulator such as `moto_server`); the standard
/// `AWS_ENDPOINT_URL` variable does the same without code.
pub async fn load(endpoint_url: Option<&str>) -> SdkConfig {
    let mut loader = loader();
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The configuration a Lambda function runs with, from what the Lambda
/// runtime puts in its environment: the region (`AWS_REGION`), the
/// function role's credentials (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), and the standard
/// endpoint overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, for
/// emulators). Retries, timeouts and stalled-stream protection are the
/// SDK clients' defaults for the latest behavior version, as [`load`] gives.
///
/// Not [`load`]: aws-config's loader links every provider chain it might
/// fall back to (profile files, SSO, STS web identity, container and
/// instance metadata), about half a megabyte of each function that a
/// Lambda environment never uses, and walking the chains costs about half a
/// millisecond of a cold start (docs/BENCHMARKS.md, "Under 8 MiB, and JSON logs" and
/// "Lambda cold start"). Without credentials in the environment every AWS
/// call fails, naming the missing variable.
pub fn load_for_function() -> SdkConfig {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(var("AWS_REGION").map(aws_config::Region::new))
        .credentials_provider(SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(https())
        .service_config(EndpointsFromEnv);
    if let Some(url) = var("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(url);
    }
    config.build()
}

/// The environment part of the SDK's per-service configuration, as the
/// loader's own version reads it (without the shared config file): the
/// service's variable (`AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`: the service id
/// upper-cased, spaces as underscores), else the global one
/// (`AWS_ENDPOINT_URL`).
#[derive(Debug)]
struct EndpointsFromEnv;

impl EndpointsFromEnv {
    fn lookup(key: &ServiceConfigKey<'_>, var: impl Fn(&str) -> Option<String>) -> Option<String> {
        let service = format!(
            "{}_{}",
            key.env(),
            key.service_id().to_uppercase().replace(' ', "_")
        );
        var(&service).or_else(|| var(key.env()))
    }
}

impl LoadServiceConfig for EndpointsFromEnv {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        Self::lookup(&key, |k| {
            std::env::var(k).ok().filter(|v| !v.trim().is_empty())
        })
    }
}

/// The default loader with crtask's HTTPS client, to adjust before
/// loading (region, credentials, endpoint).
pub fn loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(https())
}

/// crtask's HTTPS client for the SDK: rustls on ring, roots loaded once.
fn https() -> RootsOnce {
    RootsOnce(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https(),
    )
}

/// The HTTPS client all SDK clients of a process share, with its root
/// certificates loaded once.
///
/// The SDK's client builds (and drops) a whole TLS connector each time a
/// service client is constructed, to load the system's root certificates
/// early; a function constructing four clients loaded them five times before
/// its first event (see docs/BENCHMARKS.md, Lambda cold start). This wrapper
/// skips that early check: the shared connector cache loads the roots once,
/// with the first connector a request needs.
#[derive(Debug)]
struct RootsOnce(SharedHttpClient);

impl HttpClient for RootsOnce {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// A service client built the first time it is used.
///
/// Building an SDK client costs 0.2-0.3 ms the first time a process builds
/// one of that service (its endpoint rules, runtime plugins and code pages),
/// which a function pays in its cold start whether or not the event needs
/// that service. The functions hold their clients this way, so an event is
/// only charged for the services it uses. Dereferences to the client; cheap
/// to clone (clones share the client).
pub struct Lazy<C>(Arc<LazyLock<C, Box<dyn FnOnce() -> C + Send>>>);

impl<C: 'static> Lazy<C> {
    /// A client `make` builds from `config` on first use.
    pub fn new(config: &SdkConfig, make: fn(&SdkConfig) -> C) -> Self {
        let config = config.clone();
        Lazy(Arc::new(LazyLock::new(Box::new(move || make(&config)))))
    }

    /// An already built client.
    pub fn ready(client: C) -> Self
    where
        C: Send,
    {
        Lazy(Arc::new(LazyLock::new(Box::new(move || client))))
    }
}

impl<C> Clone for Lazy<C> {
    fn clone(&self) -> Self {
        Lazy(self.0.clone())
    }
}

impl<C> std::ops::Deref for Lazy<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.0
    }
}

impl<C> std::fmt::Debug for Lazy<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lazy(..)")
    }
}

macro_rules! lazy_from_client {
    ($($client:ty),*) => {$(
        impl From<$client> for Lazy<$client> {
            fn from(client: $client) -> Self {
                Lazy::ready(client)
            }
        }
    )*};
}

lazy_from_client!(
    aws_sdk_dynamodb::Client,
    aws_sdk_codebuild::Client,
    aws_sdk_s3::Client,
    aws_sdk_secretsmanager::Client,
    aws_sdk_eventbridge::Client
);

/// A DynamoDB client for `config`.
pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

/// An S3 client for `config`; path-style addressing when the endpoint is
/// overridden (emulators do not serve virtual-hosted buckets).
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A CodeBuild client for `config` with the SDK's own retries off:
/// [`crate::codebuild::CodeBuildBuilder`] retries throttling itself, with a
/// bounded number of attempts.
/// The EventBridge client (run state change events).
pub fn eventbridge(config: &SdkConfig) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(config)
}

pub fn codebuild(config: &SdkConfig) -> aws_sdk_codebuild::Client {
    let conf = aws_sdk_codebuild::config::Builder::from(config)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_codebuild::Client::from_conf(conf)
}

/// A CloudWatch Logs client for `config` (reading builds' logs,
/// [`crate::logs::BuildLogs`]).
pub fn cloudwatchlogs(config: &SdkConfig) -> aws_sdk_cloudwatchlogs::Client {
    aws_sdk_cloudwatchlogs::Client::new(config)
}

/// An EventBridge Scheduler client for `config`.
pub fn scheduler(config: &SdkConfig) -> aws_sdk_scheduler::Client {
    aws_sdk_scheduler::Client::new(config)
}

/// A CloudFormation client for `config` (reading a stack's outputs,
/// [`crate::stack::describe_stack`]).
#[cfg(feature = "stack")]
pub fn cloudformation(config: &SdkConfig) -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(config)
}

/// A Secrets Manager client for `config`.
pub fn secretsmanager(config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(config)
}

/// The settings every crtask function reads from its environment (the
/// template's `Globals`): see docs/AWS.md, "Function environment".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionEnv {
    /// `CRTASK_TABLE`
    pub table: String,
    /// `CRTASK_BUCKET`
    pub bucket: String,
    /// `CRTASK_BUILDER_PROJECT`
    pub project: String,
    /// `CRTASK_REGISTRY_HOST` (optional)
    pub registry_host: Option<String>,
    /// `CRTASK_RETENTION_DAYS` (whole days; default 90): events and
    /// delivery ids expire this long after they were recorded.
    pub retention: std::time::Duration,
    /// `CRTASK_TASK_ROLE_PATH` (optional): the IAM path task roles
    /// (`--assign-identity`) must be under.
    pub task_role_path: Option<String>,
}

impl FunctionEnv {
    /// Reads the settings from the process environment.
    pub fn from_env() -> crate::Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> crate::Result<Self> {
        Ok(FunctionEnv {
            table: required(&get, "CRTASK_TABLE")?,
            bucket: required(&get, "CRTASK_BUCKET")?,
            project: required(&get, "CRTASK_BUILDER_PROJECT")?,
            registry_host: get("CRTASK_REGISTRY_HOST").filter(|v| !v.is_empty()),
            retention: retention_days(&get)?,
            task_role_path: get("CRTASK_TASK_ROLE_PATH").filter(|v| !v.is_empty()),
        })
    }
}

impl FunctionEnv {
    /// The store and builder every function dispatches runs with: the
    /// stack's table, and CodeBuild on the stack's project (uploaded
    /// contexts in the bucket, unqualified images on the registry host).
    pub fn ports(
        &self,
        sdk: &SdkConfig,
    ) -> (
        std::sync::Arc<dyn crtask_core::ports::Store>,
        std::sync::Arc<dyn crtask_core::ports::Builder>,
    ) {
        let store: std::sync::Arc<dyn crtask_core::ports::Store> = std::sync::Arc::new(
            crate::DynamoStore::new(Lazy::new(sdk, dynamodb), self.table.clone())
                .with_retention(self.retention),
        );
        let builder = self.codebuild_builder(sdk, store.clone());
        (store, std::sync::Arc::new(builder))
    }

    /// The CodeBuild builder of this stack on `store` (what [`Self::ports`]
    /// hands out as a [`crtask_core::ports::Builder`]).
    pub fn codebuild_builder(
        &self,
        sdk: &SdkConfig,
        store: std::sync::Arc<dyn crtask_core::ports::Store>,
    ) -> crate::CodeBuildBuilder {
        let mut builder =
            crate::CodeBuildBuilder::new(Lazy::new(sdk, codebuild), store, &self.project)
                .with_contexts_bucket(self.bucket.clone());
        if let Some(r) = &self.registry_host {
            builder = builder.with_registry(r.clone());
        }
        if let Some(p) = &self.task_role_path {
            builder = builder.with_task_role_path(p.clone());
        }
        builder
    }
}

/// `CRTASK_RETENTION_DAYS`: a whole number of days, at least 1 (unset or
/// empty: [`crate::dynamo::DEFAULT_RETENTION`]).
fn retention_days(get: impl Fn(&str) -> Option<String>) -> crate::Result<std::time::Duration> {
    const VAR: &str = "CRTASK_RETENTION_DAYS";
    match get(VAR).filter(|v| !v.trim().is_empty()) {
        None => Ok(crate::dynamo::DEFAULT_RETENTION),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(d) if (1..=36_500).contains(&d) => Ok(std::time::Duration::from_secs(d * 86_400)),
            _ => Err(crate::Error::Config(format!(
                "{VAR} is '{}': expected a whole number of days from 1 to 36500",
                crtask_core::domain::text::inert(&v)
            ))),
        },
    }
}

/// A variable that must be set and not empty.
pub fn required(get: impl Fn(&str) -> Option<String>, name: &str) -> crate::Result<String> {
    get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
        crate::Error::Config(format!(
            "{name} is not set: the function reads its settings from the environment the template gives it (see docs/AWS.md)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    static BUILT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn counted(config: &SdkConfig) -> String {
        BUILT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!("client for {:?}", config.region().map(|r| r.as_ref()))
    }

    #[test]
    fn a_services_own_endpoint_variable_beats_the_global_one() {
        let key = |service| {
            ServiceConfigKey::builder()
                .service_id(service)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .unwrap()
        };
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let both = env(&[
            ("AWS_ENDPOINT_URL", "http://all"),
            ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "http://logs"),
        ]);
        assert_eq!(
            EndpointsFromEnv::lookup(&key("CloudWatch Logs"), both).as_deref(),
            Some("http://logs")
        );
        assert_eq!(
            EndpointsFromEnv::lookup(&key("DynamoDB"), both).as_deref(),
            Some("http://all")
        );
        assert_eq!(EndpointsFromEnv::lookup(&key("DynamoDB"), env(&[])), None);
    }

    #[test]
    fn lazy_clients_are_built_once_on_first_use_and_shared_by_clones() {
        let sdk = SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let lazy = Lazy::new(&sdk, counted);
        let copy = lazy.clone();
        assert_eq!(BUILT.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(copy.as_str(), "client for Some(\"eu-west-1\")");
        assert_eq!(lazy.len(), copy.len());
        assert_eq!(BUILT.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(&*Lazy::ready(7_u8), &7);
    }

    #[test]
    fn function_env_names_the_missing_variable() {
        let vars = [
            ("CRTASK_TABLE", "t"),
            ("CRTASK_BUCKET", "b"),
            ("CRTASK_BUILDER_PROJECT", "p"),
            ("CRTASK_REGISTRY_HOST", ""),
        ];
        let get = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let env = FunctionEnv::from_lookup(get).unwrap();
        assert_eq!(env.table, "t");
        assert_eq!(env.registry_host, None);
        let e = FunctionEnv::from_lookup(|k| get(k).filter(|_| k != "CRTASK_BUCKET")).unwrap_err();
        assert!(e.to_string().starts_with("CRTASK_BUCKET is not set"), "{e}");
        assert_eq!(env.retention, crate::dynamo::DEFAULT_RETENTION);
        let with = |v: &'static str| {
            FunctionEnv::from_lookup(move |k| {
                if k == "CRTASK_RETENTION_DAYS" {
                    Some(v.to_string())
                } else {
                    get(k)
                }
            })
        };
        assert_eq!(
            with(" 30 ").unwrap().retention,
            std::time::Duration::from_secs(30 * 86_400)
        );
        for bad in ["0", "-1", "soon", "1.5", "36501"] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.starts_with("CRTASK_RETENTION_DAYS is '"), "{e}");
        }
    }
}
