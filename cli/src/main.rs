//! `crtask`: the CLI, the local server (`crtask serve`) and the step
//! executor the builder runs (`crtask exec`).

mod backend;
mod client;
mod commands;
mod config;
mod output;
mod profile;
mod settings;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

#[cfg(test)]
mod help_tests;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "crtask",
    version,
    about = "Automated container image builds: quick builds, triggered tasks, multi-step tasks"
)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

/// The options every command takes.
#[derive(clap::Args)]
struct Globals {
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
    /// or `aws` (the deployed stack, called with your own AWS credentials)
    /// [default: the profile's platform, else local].
    /// Give it before the command: `crtask --platform aws task list`.
    #[arg(long = "platform", env = "CRTASK_CLI_PLATFORM", value_enum)]
    platform: Option<Platform>,
    /// The CLI profile to use (`crtask aws configure` writes them, in
    /// profiles.toml next to the CLI config) [default: default].
    #[arg(long, global = true, env = "CRTASK_PROFILE")]
    profile: Option<String>,
    /// Output format: table (for people), json, yaml, or tsv (values only,
    /// tab-separated, one line per item, as `az -o tsv`).
    #[arg(short = 'o', long = "output", global = true, env = "CRTASK_OUTPUT", value_enum, default_value_t = Format::Table)]
    output: Format,
    /// JMESPath query run on the JSON answer before it is printed, as
    /// `az --query` (e.g. "[?status=='Failed'].runId").
    #[arg(long, global = true, env = "CRTASK_QUERY")]
    query: Option<String>,
    #[command(flatten)]
    aws: settings::AwsSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Local,
    Aws,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
    Tsv,
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
    Task(Box<commands::task::TaskCommand>),
    /// Inbound events (webhooks, registry pushes, timers) and their outcome.
    #[command(subcommand)]
    Events(commands::events::EventsCommand),
    /// Base-image dependencies.
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// The AWS platform's CLI setup.
    #[command(subcommand)]
    Aws(commands::aws::AwsCommand),
    /// Private registries the base-image poller reads (credentials).
    #[command(subcommand)]
    Registry(commands::registry::RegistryCommand),
    /// Open the dashboard (web UI): on AWS, serves it on loopback with your
    /// credentials; locally, says where the server serves it.
    Dashboard(commands::dashboard::DashboardArgs),
    /// Patch an image's OS packages in one new layer, without a rebuild.
    Patch(commands::patch::PatchArgs),
    /// Print a shell completion script: `crtask completion bash > /etc/bash_completion.d/crtask`.
    Completion(commands::completion::CompletionArgs),
    /// Run one build described by CRTASK_* environment variables: the step
    /// executor the builder runs (CodeBuild's buildspec on AWS).
    #[command(hide = true)]
    Exec,
}

/// The command tree as parsed: the `--aws-*` flags are global (accepted
/// after any command) but listed once, under their heading in `crtask
/// --help`, rather than in every command's help. Each subcommand gets a
/// hidden copy, which clap's propagation of globals then leaves alone.
fn command() -> clap::Command {
    let root = Cli::command();
    let aws: Vec<clap::Arg> = root
        .get_arguments()
        .filter(|a| a.get_long().is_some_and(|l| l.starts_with("aws-")))
        .map(|a| a.clone().hide(true))
        .collect();
    let names: Vec<String> = root
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    names.iter().fold(root, |cmd, name| {
        cmd.mut_subcommand(name, |sc| {
            // A command's own argument of the same id wins (`serve
            // --registry`), as it does in clap's propagation.
            let copies: Vec<clap::Arg> = aws
                .iter()
                .filter(|a| sc.get_arguments().all(|own| own.get_id() != a.get_id()))
                .cloned()
                .collect();
            sc.args(copies)
        })
    })
}

// Release builds only: a debug build's mimalloc held 40-50 MiB more at the
// peak of tests/tests/limits.rs's 64 oversized bodies (139-148 MiB, at the
// 150 MiB the issue allows) than the release build's (102-114 MiB; system
// allocator 69-70 MiB), so the debug binary the tests drive keeps glibc's.
#[cfg(all(feature = "mimalloc", not(debug_assertions)))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
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
    let g = cli.globals;
    match cli.command {
        // The local server and the executor read no profile.
        Command::Serve(_) if g.platform == Some(Platform::Aws) => anyhow::bail!(
            "`crtask serve` is the local platform; on AWS the deployed functions serve webhooks"
        ),
        Command::Serve(a) => commands::serve::run(*a).await,
        Command::Exec => commands::exec::run().await,
        Command::Completion(a) => commands::completion::run::<Cli>(a),
        Command::Aws(c) => {
            let g = commands::aws::Globals {
                profile: g.profile,
                cli_config: g.cli_config,
                out: output::Printer::new(g.output, g.query.as_deref())?,
            };
            commands::aws::run(g, c).await
        }
        Command::Build(a) => commands::build::run(&g.ctx()?, a).await,
        Command::Run(a) => commands::run::run(&g.ctx()?, a).await,
        Command::Task(c) => commands::task::run(&g.ctx()?, *c).await,
        Command::Events(c) => commands::events::run(&g.ctx()?, c).await,
        Command::Image(c) => commands::image::run(&g.ctx()?, c).await,
        Command::Registry(c) => commands::registry::run(&g.ctx()?, c).await,
        Command::Patch(a) => commands::patch::run(&g.ctx()?, a).await,
        Command::Dashboard(a) => commands::dashboard::run(&g.ctx()?, a).await,
    }
}

impl Globals {
    /// The client commands' context: flags and their variables, then the
    /// selected profile, then the defaults.
    fn ctx(self) -> Result<commands::Ctx> {
        let chosen = profile::select(
            profile::path(self.cli_config.as_deref()).as_deref(),
            self.profile.as_deref(),
        )?;
        Ok(commands::Ctx {
            server: self.server,
            cli_config: self.cli_config,
            out: output::Printer::new(self.output, self.query.as_deref())?,
            platform: self.platform.or(chosen.platform).unwrap_or(Platform::Local),
            aws: self.aws.over(chosen.aws.unwrap_or_default()),
        })
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
        assert!(cli.globals.platform == Some(Platform::Aws));
        assert_eq!(cli.globals.aws.table.as_deref(), Some("t"));
        assert!(matches!(cli.command, Command::Build(_)));
        // The AWS settings are global; --platform is not.
        let cli = Cli::try_parse_from(["crtask", "task", "list", "--aws-bucket", "b"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.globals.aws.bucket.as_deref(), Some("b"));
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
            cli.globals.aws.log_group.as_deref(),
            Some("/aws/codebuild/crtask-builder")
        );
        assert!(Cli::try_parse_from(["crtask", "task", "list", "--platform", "aws"]).is_err());
    }
}
