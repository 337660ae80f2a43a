//! `crtask`: the CLI, the local server (`crtask serve`) and the step
//! executor the builder runs (`crtask exec`).

mod backend;
mod client;
mod commands;
mod config;
mod output;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "crtask",
    version,
    about = "Automated container image builds: quick builds, triggered tasks, multi-step tasks"
)]
struct Cli {
    /// URL of the crtask server's management API (its --api-listen)
    /// [default: the CLI config's `server`, else http://127.0.0.1:7879].
    /// The API token comes from CRTASK_API_TOKEN, else the CLI config.
    #[arg(long, global = true, env = "CRTASK_SERVER")]
    server: Option<String>,
    /// The CLI's TOML config file (`server`, `api-token` or
    /// `api-token-file`) [default: ~/.config/crtask/cli.toml, when it exists].
    #[arg(long, global = true, env = "CRTASK_CLI_CONFIG")]
    cli_config: Option<PathBuf>,
    /// Where tasks and runs live: `local` (the `crtask serve` at --server)
    /// or `aws` (the deployed stack, called with your own AWS credentials).
    /// Give it before the command: `crtask --platform aws task list`.
    #[arg(long = "platform", env = "CRTASK_CLI_PLATFORM", value_enum, default_value_t = Platform::Local)]
    platform: Platform,
    /// AWS: the stack's DynamoDB table (output TableName).
    #[arg(long, global = true, env = "CRTASK_AWS_TABLE")]
    aws_table: Option<String>,
    /// AWS: the stack's bucket for contexts and logs (output BucketName).
    #[arg(long, global = true, env = "CRTASK_AWS_BUCKET")]
    aws_bucket: Option<String>,
    /// AWS: the stack's CodeBuild project (output CodeBuildProject).
    #[arg(long, global = true, env = "CRTASK_AWS_PROJECT")]
    aws_project: Option<String>,
    /// AWS: the registry unqualified image names go to [default: the project's].
    #[arg(long, global = true, env = "CRTASK_AWS_REGISTRY")]
    aws_registry: Option<String>,
    /// AWS: the schedule group timers go to (output ScheduleGroupName).
    #[arg(long, global = true, env = "CRTASK_AWS_SCHEDULE_GROUP")]
    aws_schedule_group: Option<String>,
    /// AWS: the function timers' schedules invoke (output ScheduleTargetArn).
    #[arg(long, global = true, env = "CRTASK_AWS_SCHEDULE_TARGET")]
    aws_schedule_target: Option<String>,
    /// AWS: the role timers' schedules run with (output SchedulerRoleArn).
    #[arg(long, global = true, env = "CRTASK_AWS_SCHEDULER_ROLE")]
    aws_scheduler_role: Option<String>,
    /// AWS: the secret timer payloads are signed with, read with your
    /// credentials (output ScheduleSigningSecretArn).
    #[arg(long, global = true, env = "CRTASK_AWS_SCHEDULE_SECRET")]
    aws_schedule_secret: Option<String>,
    /// AWS: the dead-letter queue for undeliverable timer payloads
    /// (output FailedEventsQueueArn; optional).
    #[arg(long, global = true, env = "CRTASK_AWS_SCHEDULE_DLQ")]
    aws_schedule_dlq: Option<String>,
    /// AWS: the builder's CloudWatch log group (output BuilderLogGroupName);
    /// with it, following a run streams its build log as the build runs.
    #[arg(long, global = true, env = "CRTASK_AWS_LOG_GROUP")]
    aws_log_group: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, env = "CRTASK_OUTPUT", value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Platform {
    Local,
    Aws,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the local server (the embedded platform).
    Serve(Box<commands::serve::ServeArgs>),
    /// Build an image from a context and push it (a quick build).
    Build(commands::build::BuildArgs),
    /// Run an acr-task.yaml file once (a quick multi-step run).
    Run(commands::run::RunArgs),
    /// Manage tasks and their runs.
    #[command(subcommand)]
    Task(commands::task::TaskCommand),
    /// Inbound events (webhooks, registry pushes, timers) and their outcome.
    #[command(subcommand)]
    Events(commands::events::EventsCommand),
    /// Base-image dependencies.
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// Patch an image's OS packages in one new layer, without a rebuild.
    Patch(commands::patch::PatchArgs),
    /// Run one build described by CRTASK_* environment variables: the step
    /// executor the builder runs (CodeBuild's buildspec on AWS).
    Exec,
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async move {
        match run(cli).await {
            Ok(code) => code,
            Err(e) => {
                let msg = format!("{e:#}");
                eprintln!("error: {}", msg.lines().next().unwrap_or("failed"));
                1
            }
        }
    });
    std::process::exit(code);
}

async fn run(cli: Cli) -> Result<i32> {
    let ctx = commands::Ctx {
        server: cli.server,
        cli_config: cli.cli_config,
        format: cli.output,
        platform: cli.platform,
        aws: backend::AwsSettings {
            table: cli.aws_table,
            bucket: cli.aws_bucket,
            project: cli.aws_project,
            registry: cli.aws_registry,
            schedule_group: cli.aws_schedule_group,
            schedule_target: cli.aws_schedule_target,
            scheduler_role: cli.aws_scheduler_role,
            schedule_secret: cli.aws_schedule_secret,
            schedule_dlq: cli.aws_schedule_dlq,
            log_group: cli.aws_log_group,
        },
    };
    match cli.command {
        Command::Serve(_) if ctx.platform == Platform::Aws => anyhow::bail!(
            "`crtask serve` is the local platform; on AWS the deployed functions serve webhooks"
        ),
        Command::Serve(a) => commands::serve::run(*a).await,
        Command::Build(a) => commands::build::run(&ctx, a).await,
        Command::Run(a) => commands::run::run(&ctx, a).await,
        Command::Task(c) => commands::task::run(&ctx, c).await,
        Command::Events(c) => commands::events::run(&ctx, c).await,
        Command::Image(c) => commands::image::run(&ctx, c).await,
        Command::Patch(a) => commands::patch::run(&ctx, a).await,
        Command::Exec => commands::exec::run().await,
    }
}

/// Paths given on the command line, resolved against the current directory.
pub fn absolute(p: &std::path::Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_comes_before_the_command_and_keeps_build_platform() {
        let cli = Cli::try_parse_from([
            "crtask",
            "--platform",
            "aws",
            "--aws-table",
            "t",
            "build",
            "--platform",
            "linux/arm64",
            ".",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(cli.platform == Platform::Aws);
        assert_eq!(cli.aws_table.as_deref(), Some("t"));
        assert!(matches!(cli.command, Command::Build(_)));
        // The AWS settings are global; --platform is not.
        let cli = Cli::try_parse_from(["crtask", "task", "list", "--aws-bucket", "b"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.aws_bucket.as_deref(), Some("b"));
        let cli = Cli::try_parse_from([
            "crtask",
            "task",
            "logs",
            "--run-id",
            "ca1",
            "--aws-log-group",
            "/aws/codebuild/crtask-builder",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cli.aws_log_group.as_deref(),
            Some("/aws/codebuild/crtask-builder")
        );
        assert!(Cli::try_parse_from(["crtask", "task", "list", "--platform", "aws"]).is_err());
    }
}
