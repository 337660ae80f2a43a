//! `crtask image dependents IMAGE`: which tasks rebuild when IMAGE changes.

use super::Ctx;
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum ImageCommand {
    /// List the tasks that depend on IMAGE (runtime or build-time base).
    Dependents(DependentsArgs),
}

#[derive(Args)]
pub struct DependentsArgs {
    /// An image reference, e.g. 127.0.0.1:5000/base:1 or alpine.
    image: String,
}

pub async fn run(ctx: &Ctx, cmd: ImageCommand) -> Result<i32> {
    let ImageCommand::Dependents(a) = cmd;
    let v = ctx.client().await?.dependents(&a.image).await?;
    ctx.out.emit(&v, || table(&v, &a.image))?;
    Ok(0)
}

fn table(v: &serde_json::Value, image: &str) {
    let rows: Vec<Vec<String>> = v["dependents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let trigger = match (d["triggerEnabled"].as_bool(), d["triggerType"].as_str()) {
                (Some(true), Some(t)) => t.to_string(),
                (Some(false), _) => "Disabled".into(),
                _ => "-".into(),
            };
            vec![
                d["task"].as_str().unwrap_or("?").to_string(),
                if d["runtime"] == true {
                    "runtime"
                } else {
                    "build-time"
                }
                .to_string(),
                d["digest"]
                    .as_str()
                    .unwrap_or("(not built yet)")
                    .to_string(),
                trigger,
            ]
        })
        .collect();
    println!(
        "Tasks that depend on {}:",
        v["image"].as_str().unwrap_or(image)
    );
    output::table(&["TASK", "USE", "DIGEST LAST BUILT ON", "TRIGGER"], &rows);
}
