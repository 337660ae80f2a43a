//! The continuous-patching configuration on DynamoDB: one item,
//! `CONFIG`/`CONTINUOUS-PATCH`, whose `body` is the
//! [`PatchSchedule`] as JSON (what `crtask patch config set` stored). Its
//! occurrences are fired by an EventBridge Scheduler schedule
//! ([`crate::scheduler::PATCH_SCHEDULE_NAME`]); the handled ones are the
//! store's timer state, as on the local platform.

use super::items::*;
use super::{DynamoStore, Item};
use crate::error::{Error, Result};
use crtask_core::patch::continuous::PatchSchedule;
use std::collections::HashMap;

const PK: &str = "CONFIG";
const SK: &str = "CONTINUOUS-PATCH";

impl DynamoStore {
    /// The stored configuration, if any.
    pub async fn patch_schedule(&self) -> Result<Option<PatchSchedule>> {
        match self.get(PK, SK).await? {
            Some(item) => body(&item).map(Some),
            None => Ok(None),
        }
    }

    /// Stores the configuration, replacing any.
    pub async fn put_patch_schedule(&self, schedule: &PatchSchedule) -> Result<()> {
        let item: Item = HashMap::from([
            ("pk".to_string(), s(PK)),
            ("sk".to_string(), s(SK)),
            ("body".to_string(), s(&to_json(schedule)?)),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| Error::dynamo("PutItem", e))?;
        Ok(())
    }

    /// Removes the configuration; `false` when there was none.
    pub async fn delete_patch_schedule(&self) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(PK))
            .key("sk", s(SK))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| Error::dynamo("DeleteItem", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}
