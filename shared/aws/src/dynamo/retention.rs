//! Retention on DynamoDB: events and delivery ids expire through the
//! table's TTL ([`TTL_ATTRIBUTE`], epoch seconds) a configurable time after
//! they were recorded (the stack's `RetentionDays`, default 90 days like
//! `crtask serve --retention-days`). DynamoDB deletes expired items in the
//! background at no cost; reads ignore expired delivery items that it has
//! not removed yet. Tasks, runs and their dependency items do not expire.

use super::items::event_item;
use super::{DynamoStore, Item, TTL_ATTRIBUTE};
use crate::error::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use crtask_core::domain::model::EventRecord;
use std::time::Duration;

/// How long events and delivery ids are kept by default (90 days).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

impl DynamoStore {
    /// Events and delivery ids expire `retention` after they were recorded
    /// (a delivery id counts as seen that long).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self.delivery_ttl = retention;
        self
    }

    /// How long events are kept.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// The item of `event`, expiring [`DynamoStore::retention`] after it was
    /// received.
    pub(super) fn expiring_event_item(&self, event: &EventRecord) -> Result<Item> {
        let mut item = event_item(event)?;
        let keep = i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX / 2);
        let expires = event.received_at.timestamp().saturating_add(keep);
        item.insert(
            TTL_ATTRIBUTE.to_string(),
            AttributeValue::N(expires.to_string()),
        );
        Ok(item)
    }
}
