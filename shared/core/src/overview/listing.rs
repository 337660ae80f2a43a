//! The listings of the API (`GET /api/v1/runs`, `GET /api/v1/events`), as
//! the local server and `crtask dashboard` both answer them.

use crate::domain::model::{EventRecord, EventSource, RunFilter, RunStatus, Task};
use crate::ports::Store;
use crate::Result;
use serde::Deserialize;

/// Events listed when the query names no `top`.
pub const DEFAULT_EVENTS: usize = 50;

/// `?task=&status=&top=` of `GET /api/v1/runs`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunsQuery {
    pub task: Option<String>,
    pub status: Option<String>,
    pub top: Option<usize>,
}

/// `?source=&top=` of `GET /api/v1/events`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventsQuery {
    pub source: Option<String>,
    pub top: Option<usize>,
}

/// Runs newest first, in the API's shape; an unknown status is `Invalid`.
pub async fn runs(store: &dyn Store, q: RunsQuery) -> Result<Vec<serde_json::Value>> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<RunStatus>)
        .transpose()?;
    let runs = store
        .list_runs(&RunFilter {
            task: q.task,
            status,
            top: q.top,
        })
        .await?;
    Ok(runs.iter().map(crate::service::run_json).collect())
}

/// Events newest first; an unknown source is `Invalid`.
pub async fn events(store: &dyn Store, q: EventsQuery) -> Result<Vec<EventRecord>> {
    let source = q
        .source
        .as_deref()
        .map(str::parse::<EventSource>)
        .transpose()?;
    store
        .list_events(source, q.top.unwrap_or(DEFAULT_EVENTS))
        .await
}

/// Every task, secret build-argument values masked.
pub async fn tasks(store: &dyn Store) -> Result<Vec<Task>> {
    Ok(store
        .list_tasks()
        .await?
        .iter()
        .map(Task::redacted)
        .collect())
}
