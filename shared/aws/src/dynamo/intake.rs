//! Exactly-once intake on DynamoDB: [`Store::record_delivery`] as ONE
//! `TransactWriteItems`.
//!
//! The transaction puts the delivery item (condition: absent or expired),
//! the event, and for each run that is not blocked its dedupe marker
//! (condition: absent, or its run ended without success) and the run
//! (condition: absent). Which runs are blocked is read first; when a
//! condition fails because another writer got there in between, the
//! attempt is retried from the reads, so a delivery id claimed meanwhile
//! answers [`DeliveryRecorded::Seen`] and a dedupe key taken meanwhile
//! blocks its run. Ids are allocated once, before the first attempt: an
//! attempt that committed although its answer was lost is recognised by the
//! delivery item naming this attempt's event.

use super::items::*;
use super::{DynamoStore, Item, TTL_ATTRIBUTE};
use crate::error::{Error, Result};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use crtask_core::domain::model::{EventRecord, Run, RunStatus};
use crtask_core::ports::{DeliveryRecorded, DeliveryWrite, Store, Summarize};
use crtask_core::Error as CoreError;
use std::collections::HashMap;
use std::time::Duration;

/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACT_ITEMS: usize = 100;

/// How one attempt ended.
enum Attempt {
    Done(DeliveryRecorded),
    Retry,
}

impl DynamoStore {
    pub(super) async fn record_delivery_once(
        &self,
        write: &DeliveryWrite,
        summarize: &Summarize,
    ) -> crtask_core::Result<DeliveryRecorded> {
        if 2 + 3 * write.runs.len() > MAX_TRANSACT_ITEMS {
            return Err(CoreError::Store(format!(
                "a delivery starting {} runs is more than one DynamoDB transaction holds ({} runs at most)",
                write.runs.len(),
                (MAX_TRANSACT_ITEMS - 2) / 3
            )));
        }
        if let Some(seen) = self.seen(write).await? {
            return Ok(DeliveryRecorded::Seen(seen));
        }
        let mut runs = write.runs.clone();
        for run in &mut runs {
            run.run_id = self.next_run_id().await?;
        }
        let event_id = self.next_event_id().await?;
        for attempt in 0..20u32 {
            match self.attempt(write, summarize, &runs, &event_id).await? {
                Attempt::Done(d) => return Ok(d),
                Attempt::Retry => {
                    let jitter = u64::from(event_id.bytes().map(u32::from).sum::<u32>() % 17);
                    tokio::time::sleep(Duration::from_millis((10 << attempt.min(5)) + jitter))
                        .await;
                }
            }
        }
        Err(CoreError::Store(format!(
            "could not record delivery (event {event_id}): too many concurrent writers, try again"
        )))
    }

    /// The first event of the delivery, if its id was recorded and has not expired.
    async fn seen(&self, write: &DeliveryWrite) -> Result<Option<EventRecord>> {
        let Some(d) = &write.delivery_id else {
            return Ok(None);
        };
        Ok(self.find_delivery(write.source, d).await?)
    }

    /// The run blocking `run` now: the one holding its dedupe key, or the
    /// queued base-image run of its task ([`super::task_marker`]).
    async fn blocker(&self, run: &Run, earlier: &[(&Run, bool)]) -> Result<Option<Run>> {
        if let Some(b) = self.key_blocker(run, earlier).await? {
            return Ok(Some(b));
        }
        match super::task_marker::marked_task(run) {
            Some(task) => self.queued_image_run(task).await,
            None => Ok(None),
        }
    }

    /// The run blocking `run`'s dedupe key now, repairing a stale marker.
    async fn key_blocker(&self, run: &Run, earlier: &[(&Run, bool)]) -> Result<Option<Run>> {
        let Some(key) = run.dedupe_key.as_deref() else {
            return Ok(None);
        };
        // A run of this delivery recorded before it with the same key.
        if let Some((first, _)) = earlier
            .iter()
            .find(|(r, new)| *new && r.dedupe_key.as_deref() == Some(key))
        {
            return Ok(Some((*first).clone()));
        }
        let Some(m) = self.get(&dedupe_pk(key), "DEDUPE").await? else {
            return Ok(None);
        };
        let marked_status = str_attr(&m, "status").unwrap_or_default().to_string();
        if marked_status
            .parse::<RunStatus>()
            .is_ok_and(|st| !blocks_dedupe(st))
        {
            return Ok(None);
        }
        let marked_id = str_attr(&m, "run_id").unwrap_or_default().to_string();
        let found = self.read_run(&marked_id).await?;
        if let Some(existing) = found.as_ref().filter(|r| blocks_dedupe(r.status)) {
            return Ok(Some(existing.clone()));
        }
        // Stale marker: repaired so the transaction's condition holds.
        let actual = found.map(|r| r.status).unwrap_or(RunStatus::Error);
        self.repair_marker(key, &marked_id, &marked_status, actual)
            .await;
        Ok(None)
    }

    async fn attempt(
        &self,
        write: &DeliveryWrite,
        summarize: &Summarize,
        runs: &[Run],
        event_id: &str,
    ) -> crtask_core::Result<Attempt> {
        let mut blocked: Vec<Option<Run>> = Vec::with_capacity(runs.len());
        let mut seen: Vec<(&Run, bool)> = Vec::with_capacity(runs.len());
        for run in runs {
            let b = self.blocker(run, &seen).await?;
            seen.push((run, b.is_none()));
            blocked.push(b);
        }
        let summary = summarize(runs, &blocked);
        let event = EventRecord {
            id: event_id.to_string(),
            source: write.source,
            delivery_id: write.delivery_id.clone(),
            received_at: write.received_at,
            outcome: summary.outcome,
            reason: summary.reason,
            runs: summary.runs,
            detail: write.detail.clone(),
        };
        let now = self.clock.now().timestamp();
        let mut items = Vec::new();
        if let Some(d) = &write.delivery_id {
            let expires = now + i64::try_from(self.delivery_ttl.as_secs()).unwrap_or(i64::MAX / 2);
            let item = HashMap::from([
                ("pk".to_string(), s(&delivery_pk(write.source, d))),
                ("sk".to_string(), s("DELIVERY")),
                ("event_id".to_string(), s(event_id)),
                (
                    TTL_ATTRIBUTE.to_string(),
                    AttributeValue::N(expires.to_string()),
                ),
            ]);
            items.push(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk) OR #ttl < :now")
                    .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                    .expression_attribute_values(":now", AttributeValue::N(now.to_string())),
            );
        }
        items.push(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(self.expiring_event_item(&event)?))
                .condition_expression("attribute_not_exists(pk)"),
        );
        let new_runs: Vec<Run> = runs
            .iter()
            .zip(&blocked)
            .filter(|(_, b)| b.is_none())
            .map(|(r, _)| r.clone())
            .collect();
        for run in &new_runs {
            if let Some(key) = &run.dedupe_key {
                items.push(marker_put(&self.table, key, run));
            }
            if let Some(task) = super::task_marker::marked_task(run) {
                items.push(super::task_marker::put(&self.table, task, run));
            }
            items.push(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(run_item(run)?))
                    .condition_expression("attribute_not_exists(pk)"),
            );
        }
        let mut req = self.client.transact_write_items();
        for p in items {
            let put = p
                .build()
                .map_err(|e| Error::dynamo("TransactWriteItems", e))?;
            req = req.transact_items(TransactWriteItem::builder().put(put).build());
        }
        let e = match req.send().await {
            Ok(_) => return Ok(Attempt::Done(DeliveryRecorded::New { event, new_runs })),
            Err(e) => e,
        };
        let conflict = match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(_)) => true,
            Some(other) => other.code() == Some("TransactionConflictException"),
            None => false,
        };
        if !conflict {
            return Err(Error::dynamo("TransactWriteItems", e).into());
        }
        // The delivery was claimed meanwhile: by a copy, or by this very
        // attempt (committed, answer lost, retried by the SDK).
        if let Some(d) = &write.delivery_id {
            if let Some(m) = self.get(&delivery_pk(write.source, d), "DELIVERY").await? {
                if str_attr(&m, "event_id") == Some(event_id) {
                    return Ok(Attempt::Done(DeliveryRecorded::New { event, new_runs }));
                }
                if let Some(first) = self.seen(write).await? {
                    return Ok(Attempt::Done(DeliveryRecorded::Seen(first)));
                }
            }
        }
        Ok(Attempt::Retry)
    }
}

/// The dedupe marker of `run`, put on condition "absent, or its run ended
/// without success".
pub(super) fn marker_put(
    table: &str,
    key: &str,
    run: &Run,
) -> aws_sdk_dynamodb::types::builders::PutBuilder {
    let item: Item = HashMap::from([
        ("pk".to_string(), s(&dedupe_pk(key))),
        ("sk".to_string(), s("DEDUPE")),
        ("run_id".to_string(), s(&run.run_id)),
        ("status".to_string(), s(run.status.as_str())),
    ]);
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(
            "attribute_not_exists(pk) OR #st IN (:failed, :canceled, :error, :timeout)",
        )
        .expression_attribute_names("#st", "status")
        .expression_attribute_values(":failed", s(RunStatus::Failed.as_str()))
        .expression_attribute_values(":canceled", s(RunStatus::Canceled.as_str()))
        .expression_attribute_values(":error", s(RunStatus::Error.as_str()))
        .expression_attribute_values(":timeout", s(RunStatus::Timeout.as_str()))
}
