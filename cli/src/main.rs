//! `crtask`: the CLI, the local server (`crtask serve`) and the step
//! executor the builder runs (`crtask exec`).

mod client;
mod commands;
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
    /// URL of the crtask server.
    #[arg(
        long,
        global = true,
        env = "CRTASK_SERVER",
        default_value = "http://127.0.0.1:7878"
    )]
    server: String,
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, env = "CRTASK_OUTPUT", value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the local server (the embedded platform).
    Serve(commands::serve::ServeArgs),
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
        format: cli.output,
    };
    match cli.command {
        Command::Serve(a) => commands::serve::run(a).await,
        Command::Build(a) => commands::build::run(&ctx, a).await,
        Command::Run(a) => commands::run::run(&ctx, a).await,
        Command::Task(c) => commands::task::run(&ctx, c).await,
        Command::Events(c) => commands::events::run(&ctx, c).await,
        Command::Image(c) => commands::image::run(&ctx, c).await,
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
