//! The per-task marker that closes the upstream race on DynamoDB: at most
//! one `Queued` base-image run per task.
//!
//! Deciders read which runs are under way through an index, which DynamoDB
//! only reads eventually consistently, so two deciders (two function
//! instances handling two upstream pushes at once) could each miss the
//! other's just-recorded run and both record one for the shared downstream
//! task. Every base-image run is therefore written together with the item
//! `QUEUED#<task>`/`IMAGE` (`run_id`, `status`), on condition "absent, or
//! its run is no longer `Queued`": the second writer's transaction fails,
//! and it is handed the queued run instead (the update merges into it).
//! `update_run` copies the run's status to the marker; a marker left stale
//! by a crash between those two writes is repaired by the next writer,
//! which reads the run itself.

use super::items::*;
use super::{DynamoStore, Item};
use crate::error::{Error, Result};
use aws_sdk_dynamodb::types::{AttributeValue, Put};
use crtask_core::domain::model::{Run, RunStatus, Trigger};
use std::collections::HashMap;

const SK: &str = "IMAGE";

fn pk(task: &str) -> String {
    format!("QUEUED#{task}")
}

/// The task whose marker `run` takes: base-image runs of a task only.
pub(super) fn marked_task(run: &Run) -> Option<&str> {
    match run.trigger {
        Trigger::ImageUpdate { .. } => run.task.as_deref(),
        _ => None,
    }
}

/// The marker put for `run`, on condition "absent or not `Queued`".
pub(super) fn put(
    table: &str,
    task: &str,
    run: &Run,
) -> aws_sdk_dynamodb::types::builders::PutBuilder {
    let item: Item = HashMap::from([
        ("pk".to_string(), s(&pk(task))),
        ("sk".to_string(), s(SK)),
        ("run_id".to_string(), s(&run.run_id)),
        ("status".to_string(), s(run.status.as_str())),
    ]);
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk) OR #st <> :queued")
        .expression_attribute_names("#st", "status")
        .expression_attribute_values(":queued", s(RunStatus::Queued.as_str()))
}

impl DynamoStore {
    /// The queued base-image run of `task` that the marker names, if it is
    /// still queued; a stale marker is repaired (best effort).
    pub(super) async fn queued_image_run(&self, task: &str) -> Result<Option<Run>> {
        let Some(m) = self.get(&pk(task), SK).await? else {
            return Ok(None);
        };
        if str_attr(&m, "status") != Some(RunStatus::Queued.as_str()) {
            return Ok(None);
        }
        let id = str_attr(&m, "run_id").unwrap_or_default().to_string();
        let run = self.read_run(&id).await?;
        if let Some(r) = run.as_ref().filter(|r| r.status == RunStatus::Queued) {
            return Ok(Some(r.clone()));
        }
        let actual = run.map(|r| r.status).unwrap_or(RunStatus::Error);
        self.set_marker_status(task, &id, actual, Some(RunStatus::Queued))
            .await
            .ok();
        Ok(None)
    }

    /// Copies `run`'s status to its task's marker, if the marker names it.
    pub(super) async fn sync_task_marker(&self, run: &Run) -> Result<()> {
        let Some(task) = marked_task(run) else {
            return Ok(());
        };
        self.set_marker_status(task, &run.run_id, run.status, None)
            .await
    }

    /// Sets the marker's status when it names `run_id` (and, with `from`,
    /// still has that status).
    async fn set_marker_status(
        &self,
        task: &str,
        run_id: &str,
        status: RunStatus,
        from: Option<RunStatus>,
    ) -> Result<()> {
        let mut cond = "run_id = :id".to_string();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk(task)))
            .key("sk", s(SK))
            .update_expression("SET #st = :st")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", s(status.as_str()))
            .expression_attribute_values(":id", s(run_id));
        if let Some(f) = from {
            cond.push_str(" AND #st = :from");
            req = req.expression_attribute_values(":from", AttributeValue::S(f.as_str().into()));
        }
        match req.condition_expression(cond).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::dynamo("UpdateItem", e)),
        }
    }
}
