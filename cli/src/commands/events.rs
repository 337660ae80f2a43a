//! `crtask events list`: every inbound event and what crtask did with it.

use super::Ctx;
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum EventsCommand {
    /// List inbound events, newest first, with their outcome and reason.
    List(ListArgs),
}

#[derive(Args)]
pub struct ListArgs {
    /// git, registry, timer or poll.
    #[arg(long)]
    source: Option<String>,
    /// How many events to list.
    #[arg(long, default_value_t = 20)]
    top: usize,
}

pub async fn run(ctx: &Ctx, cmd: EventsCommand) -> Result<i32> {
    let EventsCommand::List(a) = cmd;
    if let Some(s) = &a.source {
        s.parse::<crtask_core::domain::model::EventSource>()?;
    }
    let events = ctx
        .client()
        .await?
        .events(a.source.as_deref(), a.top)
        .await?;
    ctx.out.emit(&events, || table(&events))?;
    Ok(0)
}

fn table(events: &[crtask_core::domain::model::EventRecord]) {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.source.as_str().to_string(),
                crtask_core::domain::time::rfc3339(e.received_at),
                e.outcome.as_str().to_string(),
                if e.runs.is_empty() {
                    "-".into()
                } else {
                    e.runs.join(",")
                },
                e.reason.clone(),
            ]
        })
        .collect();
    output::table(
        &["ID", "SOURCE", "RECEIVED", "OUTCOME", "RUNS", "REASON"],
        &rows,
    );
}
