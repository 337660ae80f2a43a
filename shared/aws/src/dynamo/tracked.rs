//! The tracked-image list: one item per image some task depends on, in one
//! partition (`pk=TRACKED`, `sk=IMAGE#<image>`), holding the string set of
//! the tasks that depend on it. The poll tick reads it with a Query whose
//! cost is proportional to the images tracked, where it used to Scan the
//! `by-image` index.
//!
//! `set_dependencies` and `delete_task` keep it: an image gains a task with
//! `ADD tasks`, loses one with `DELETE tasks`, and the item is deleted on
//! condition that no task is left (DynamoDB drops an emptied set), so a task
//! adding the image at the same moment keeps it.

use super::items::{s, str_attr};
use super::DynamoStore;
use crate::error::{Error, Result};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

const TRACKED_PK: &str = "TRACKED";

fn image_sk(image: &str) -> String {
    format!("IMAGE#{image}")
}

impl DynamoStore {
    /// Records that `task` depends on `image`.
    pub(super) async fn track(&self, image: &str, task: &str) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(TRACKED_PK))
            .key("sk", s(&image_sk(image)))
            .update_expression("ADD tasks :t SET image = :i")
            .expression_attribute_values(":t", AttributeValue::Ss(vec![task.to_string()]))
            .expression_attribute_values(":i", s(image))
            .send()
            .await
            .map_err(|e| Error::dynamo("UpdateItem", e))?;
        Ok(())
    }

    /// Records that `task` no longer depends on `image`; forgets the image
    /// when no task is left.
    pub(super) async fn untrack(&self, image: &str, task: &str) -> Result<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(TRACKED_PK))
            .key("sk", s(&image_sk(image)))
            .update_expression("DELETE tasks :t")
            .expression_attribute_values(":t", AttributeValue::Ss(vec![task.to_string()]))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| Error::dynamo("UpdateItem", e))?;
        let left = out
            .attributes
            .as_ref()
            .and_then(|a| a.get("tasks"))
            .is_some_and(|t| t.as_ss().is_ok_and(|ss| !ss.is_empty()));
        if left {
            return Ok(());
        }
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(TRACKED_PK))
            .key("sk", s(&image_sk(image)))
            .condition_expression("attribute_not_exists(tasks)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            // A task started depending on it meanwhile: it stays.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::dynamo("DeleteItem", e)),
        }
    }

    /// Every image at least one task depends on, sorted (one Query, paged).
    pub(super) async fn tracked(&self) -> Result<Vec<String>> {
        let mut images = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(TRACKED_PK))
                .projection_expression("image, tasks")
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| Error::dynamo("Query", e))?;
            for item in page.items.unwrap_or_default() {
                let has_tasks = item
                    .get("tasks")
                    .is_some_and(|t| t.as_ss().is_ok_and(|ss| !ss.is_empty()));
                if let (true, Some(i)) = (has_tasks, str_attr(&item, "image")) {
                    images.push(i.to_string());
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        images.sort();
        Ok(images)
    }
}
