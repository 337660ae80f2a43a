//! crtask on AWS: the core ports implemented with DynamoDB ([`DynamoStore`]),
//! CodeBuild ([`CodeBuildBuilder`]), S3 ([`S3Contexts`]), Secrets Manager
//! ([`SecretsManagerSecrets`]), EventBridge Scheduler for timers
//! ([`TimerSchedules`]), and CloudWatch Logs for live build logs
//! ([`BuildLogs`]).
//!
//! Clients are built from one [`aws_config::SdkConfig`] ([`config::load`];
//! the functions use [`config::load_for_function`] and build each client on
//! first use, [`config::Lazy`]), which honours `AWS_ENDPOINT_URL`, so the
//! same code runs against AWS and against an emulator such as `moto_server`.

pub mod codebuild;
pub mod config;
pub mod dynamo;
pub mod ecr_tags;
pub mod error;
pub mod events;
pub mod function_log;
pub mod git_tokens;
pub mod logs;
pub mod registry_credentials;
pub mod s3;
pub mod scheduler;
pub mod secrets;
pub mod stack;

pub use codebuild::{start_build_request, CodeBuildBuilder, StartBuildRequest};
pub use dynamo::{create_table, DynamoStore};
pub use error::{Error, Result};
pub use events::RunEventBus;
pub use logs::{BuildLogs, ExecutorWindow};
pub use s3::S3Contexts;
pub use scheduler::{ScheduleSettings, TimerSchedules};
pub use secrets::SecretsManagerSecrets;
