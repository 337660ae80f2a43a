//! Building SDK clients: one HTTPS client (rustls with ring) shared by all.

use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::tls;

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

/// The default loader with crtask's HTTPS client, to adjust before
/// loading (region, credentials, endpoint).
pub fn loader() -> ConfigLoader {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(http)
}

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
pub fn codebuild(config: &SdkConfig) -> aws_sdk_codebuild::Client {
    let conf = aws_sdk_codebuild::config::Builder::from(config)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_codebuild::Client::from_conf(conf)
}

/// A Secrets Manager client for `config`.
pub fn secretsmanager(config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(config)
}
