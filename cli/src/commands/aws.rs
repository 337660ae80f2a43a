//! `crtask aws configure`: a CLI profile from a deployed stack's outputs.

use crate::profile::{self, Profile};
use crate::settings::AwsSettings;
use crate::Platform;
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use crtask_aws::stack::{describe_stack, project_registry};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum AwsCommand {
    /// Write a CLI profile from a deployed stack's outputs (CloudFormation
    /// DescribeStacks, with your AWS credentials): afterwards `crtask
    /// --platform aws ...` needs no other flag. The profile is `--profile`
    /// [default: default] in profiles.toml next to the CLI config.
    Configure(ConfigureArgs),
}

#[derive(Args)]
pub struct ConfigureArgs {
    /// The stack's name (or ARN), as deployed (`sam deploy --stack-name`).
    #[arg(long)]
    stack: String,
    /// The stack's region [default: AWS_REGION, else the AWS profile's].
    #[arg(long = "region", id = "stack_region")]
    region: Option<String>,
}

/// What the command needs from the global options.
pub struct Globals {
    /// `--profile` or `CRTASK_PROFILE`.
    pub profile: Option<String>,
    /// `--cli-config` or `CRTASK_CLI_CONFIG`: the profiles file is next to it.
    pub cli_config: Option<PathBuf>,
    pub out: crate::output::Printer,
}

pub async fn run(g: Globals, c: AwsCommand) -> Result<i32> {
    match c {
        AwsCommand::Configure(a) => configure(g, a).await,
    }
}

async fn configure(g: Globals, a: ConfigureArgs) -> Result<i32> {
    // Everything that can be checked here is, before any call.
    let name = g
        .profile
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| profile::DEFAULT_PROFILE.to_string());
    profile::check_name(&name)?;
    crtask_aws::stack::check_stack_name(&a.stack)?;
    let file = profile::path(g.cli_config.as_deref()).ok_or_else(|| {
        anyhow!(
            "no home directory to keep the profile in: set HOME, XDG_CONFIG_HOME or --cli-config"
        )
    })?;
    let conf = crate::backend::sdk_config(a.region.as_deref()).await?;
    let region = conf.region().map(|r| r.to_string()).unwrap_or_default();

    let stack = describe_stack(&crtask_aws::config::cloudformation(&conf), &a.stack).await?;
    let mut settings =
        AwsSettings::from_outputs(|k| stack.get(k).map(str::to_string)).map_err(|missing| {
            anyhow!(
                "stack '{}' lacks the output{} {}: is it crtask's template.yaml, deployed from this version?",
                stack.name,
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            )
        })?;
    if settings.registry.is_none() {
        // A stack deployed before RegistryHost was an output: the builder
        // project's CRTASK_REGISTRY is the same value.
        let project = settings.project.clone().unwrap_or_default();
        settings.registry =
            project_registry(&crtask_aws::config::codebuild(&conf), &project).await?;
        if settings.registry.is_none() {
            eprintln!(
                "warning: stack '{}' names no registry (no RegistryHost output, no CRTASK_REGISTRY on project {project}): image names must name their registry, or pass --aws-registry",
                stack.name
            );
        }
    }
    settings.stack = Some(stack.name.clone());
    settings.region = Some(region.clone()).filter(|r| !r.is_empty());
    let p = Profile {
        platform: Some(Platform::Aws),
        aws: Some(settings),
    };
    profile::write(&file, &name, &p)?;
    eprintln!(
        "Profile '{name}' written to {}: stack {} in {region}",
        file.display(),
        stack.name
    );
    print(&g.out, &name, &file, &p)?;
    Ok(0)
}

fn print(
    out: &crate::output::Printer,
    name: &str,
    file: &std::path::Path,
    p: &Profile,
) -> Result<()> {
    let aws = p.aws.clone().unwrap_or_default();
    let v = serde_json::json!({
        "profile": name,
        "file": file.display().to_string(),
        "platform": "aws",
        "aws": aws,
    });
    let settings = serde_json::to_value(&aws)?;
    let Some(map) = settings.as_object() else {
        bail!("cannot show the profile");
    };
    out.emit(&v, || {
        let width = map.keys().map(String::len).max().unwrap_or(0);
        for (k, v) in map {
            println!(
                "{k:width$}  {}",
                crtask_core::domain::text::inert(v.as_str().unwrap_or_default())
            );
        }
    })
}
