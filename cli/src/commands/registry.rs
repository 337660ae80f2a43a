//! `crtask registry credential add|list|remove`: credentials the base-image
//! poller uses for private registries (in the spirit of `az acr task
//! credential`). Locally they live in the server's data directory
//! (`registry-credentials.json`, mode 0600); on AWS in Secrets Manager
//! (`<stack>/registries/<host>`). The password is read from stdin or a
//! file, never from the command line, and never printed.
//!
//! ECR registries need no stored credential on AWS: the poller asks ECR for
//! a token with the stack's role.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use crtask_core::domain::text::inert;
use crtask_core::trigger::registry::credentials::{
    ecr_registry, normalize_host, password_from_text, StoredCredential,
};
use crtask_local::registry_credentials::FileCredentials;

use super::Ctx;
use crate::Platform;

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Credentials the base-image poller uses for private registries.
    #[command(subcommand)]
    Credential(CredentialCommand),
}

#[derive(Subcommand)]
pub enum CredentialCommand {
    /// Store (or replace) the credential of a registry.
    Add(AddArgs),
    /// List the registries with a stored credential (never the passwords).
    List(Place),
    /// Delete the credential of a registry.
    Remove {
        /// Registry host, e.g. ghcr.io or registry.example.com:5000.
        host: String,
        #[command(flatten)]
        place: Place,
    },
}

/// Where the credentials live.
#[derive(Args)]
pub struct Place {
    /// Local: the server's data directory, which holds the credentials file
    /// [default: ./.crtask].
    #[arg(long, env = "CRTASK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// AWS: the stack's name (credentials are the secrets
    /// <stack>/registries/<host>).
    #[arg(long, env = "CRTASK_AWS_STACK")]
    stack: Option<String>,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("password").required(true).args(["password_stdin", "password_file"])))]
pub struct AddArgs {
    /// Registry host, e.g. ghcr.io or registry.example.com:5000.
    host: String,
    /// User name.
    #[arg(short = 'u', long)]
    username: String,
    /// Read the password (or token) from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Read the password (or token) from a file.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    #[command(flatten)]
    place: Place,
}

/// Runs a `crtask registry ...` command.
pub async fn run(ctx: &Ctx, cmd: RegistryCommand) -> Result<i32> {
    let RegistryCommand::Credential(cmd) = cmd;
    match cmd {
        CredentialCommand::Add(a) => add(ctx, a).await,
        CredentialCommand::List(p) => list(ctx, &p).await,
        CredentialCommand::Remove { host, place } => remove(ctx, &host, &place).await,
    }
}

fn file(place: &Place) -> FileCredentials {
    FileCredentials::in_data_dir(
        &place
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(".crtask")),
    )
}

/// The stack's stored credentials (Secrets Manager).
async fn aws(place: &Place) -> Result<crtask_aws::registry_credentials::StoredCredentials> {
    let stack = place
        .stack
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            anyhow!("--platform aws needs the stack's name: set --stack or CRTASK_AWS_STACK")
        })?;
    let conf = crtask_aws::config::load(None).await;
    if conf.region().is_none() {
        bail!("no AWS region: set AWS_REGION (or AWS_PROFILE with a region)");
    }
    Ok(crtask_aws::registry_credentials::StoredCredentials::new(
        &conf, stack,
    ))
}

fn read_password(a: &AddArgs) -> Result<String> {
    let text = match &a.password_file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read password file {}", f.display()))?,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the password from standard input")?;
            s
        }
    };
    Ok(password_from_text(&text))
}

async fn add(ctx: &Ctx, a: AddArgs) -> Result<i32> {
    let host = normalize_host(&a.host)?;
    if ctx.platform == Platform::Aws && ecr_registry(&host).is_some() {
        bail!(
            "{host} is an ECR registry: the poller asks ECR for a token with the stack's role (template parameter PollEcrRepositoryArns); no stored credential is needed"
        );
    }
    let cred = StoredCredential {
        username: a.username.clone(),
        password: read_password(&a)?,
    };
    cred.validate()?;
    let place = match ctx.platform {
        Platform::Local => {
            let f = file(&a.place);
            f.add(&host, &cred)?;
            f.path().display().to_string()
        }
        Platform::Aws => aws(&a.place).await?.put(&host, &cred).await?,
    };
    ctx.out.emit(
        &serde_json::json!({
            "registry": host, "username": cred.username, "stored": place,
        }),
        || {
            println!(
                "credential for {host} (user {}) stored in {}",
                inert(&cred.username),
                inert(&place)
            )
        },
    )?;
    Ok(0)
}

async fn list(ctx: &Ctx, place: &Place) -> Result<i32> {
    // (registry, user name when known: Secrets Manager values are not read)
    let rows: Vec<(String, Option<String>)> = match ctx.platform {
        Platform::Local => file(place)
            .list()?
            .into_iter()
            .map(|(h, u)| (h, Some(u)))
            .collect(),
        Platform::Aws => aws(place)
            .await?
            .list()
            .await?
            .into_iter()
            .map(|h| (h, None))
            .collect(),
    };
    let data: Vec<_> = rows
        .iter()
        .map(|(h, u)| serde_json::json!({"registry": h, "username": u}))
        .collect();
    ctx.out.emit(&data, || {
        crate::output::table(
            &["REGISTRY", "USERNAME"],
            &rows
                .iter()
                .map(|(h, u)| {
                    vec![
                        inert(h).into_owned(),
                        u.as_deref()
                            .map(|u| inert(u).into_owned())
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect::<Vec<_>>(),
        )
    })?;
    Ok(0)
}

async fn remove(ctx: &Ctx, host: &str, place: &Place) -> Result<i32> {
    let host = normalize_host(host)?;
    let removed = match ctx.platform {
        Platform::Local => file(place).remove(&host)?,
        Platform::Aws => aws(place).await?.remove(&host).await?,
    };
    if !removed {
        eprintln!("error: no credential is stored for {host}");
        return Ok(1);
    }
    ctx.out.emit(
        &serde_json::json!({"registry": host, "removed": true}),
        || println!("credential for {host} removed"),
    )?;
    Ok(0)
}
