//! The DynamoDB store: every record in ONE table.
//!
//! # Table
//!
//! Primary key `pk` (S, partition) + `sk` (S, sort). Records keep their JSON
//! shape in a `body` string attribute (the same JSON the API returns), plus
//! the few attributes the keys, indexes and conditions need.
//!
//! | record | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | task | `TASK#<name>` | `TASK` | `body`; `gsi2pk=TASKS`, `gsi2sk=<name>` |
//! | base-image dependency | `TASK#<task>` | `DEP#<image>` | `dep_image`, `dep_task`, `digest`?, `runtime` (BOOL) |
//! | timer state | `TASK#<task>` | `TIMER#<timer>` | `last_fired` (RFC 3339) |
//! | run | `RUN#<id>` | `RUN` | `body`, `status`, `seq` (N); `gsi1pk=TASKRUNS#<task>` (task runs only), `gsi2pk=RUNS`, `gsi3pk=STATUS#<status>`, every `gsiNsk=<seq, 20 digits>` |
//! | dedupe marker | `DEDUPE#<key>` | `DEDUPE` | `run_id`, `status` of the newest run with that key |
//! | queued base-image run | `QUEUED#<task>` | `IMAGE` | `run_id`, `status`: at most one `Queued` base-image run per task ([`task_marker`]) |
//! | event | `EVENT#<id>` | `EVENT` | `body`; `gsi1pk=EVSRC#<source>`, `gsi2pk=EVENTS`, `gsiNsk=<seq>`, `expires_at` (received + retention: [`retention`]) |
//! | delivery dedupe | `DELIVERY#<source>#<delivery id>` | `DELIVERY` | `event_id`, `expires_at` (N, epoch seconds: the table's TTL attribute; the retention when set) |
//! | tracked image | `TRACKED` | `IMAGE#<image>` | `image`, `tasks` (SS: the tasks depending on it); `tracked_images` is one Query on this partition, never a Scan |
//! | counters | `META` | `COUNTERS` | `run_counter`, `event_counter` (N) |
//! | continuous-patching configuration | `CONFIG` | `CONTINUOUS-PATCH` | `body` (the schedule with ACR's configuration file: [`patch_config`]) |
//! | decision lease | `LEASE#<name>` | `LEASE` | `holder`, `until_ms` (N); taken with a conditional put (free, expired, or ours), `expires_at` an hour after it lapses |
//!
//! Global secondary indexes (all project ALL; `gsiN` keys are overloaded):
//!
//! | index | partition / sort | answers |
//! |---|---|---|
//! | `by-image` | `dep_image` / `dep_task` | `dependents_of(image)` (a Query) |
//! | `gsi1` | `gsi1pk` / `gsi1sk` | a task's runs newest first; events of one source newest first |
//! | `gsi2` | `gsi2pk` / `gsi2sk` | all tasks by name; all runs newest first; all events newest first |
//! | `gsi3` | `gsi3pk` / `gsi3sk` | runs in one status, oldest first (`runs_in_status`) or newest first (`list_runs --status`) |
//!
//! # Access patterns
//!
//! - Task CRUD: `GetItem`/`PutItem` on `TASK#<name>`/`TASK`, with
//!   `attribute_not_exists` (create) and `attribute_exists` (update)
//!   conditions. Deleting a task also deletes its partition's dependency and
//!   timer items (like the SQLite store); its runs are kept.
//! - Run and event ids: `UpdateItem ADD` on the counters item, atomic;
//!   ids are `<prefix><n>` (`ca1`, ...) and `ev<n>`.
//! - `insert_run_deduped`: one `TransactWriteItems` that puts the dedupe
//!   marker on condition "absent, or its run ended without success" and puts
//!   the run on condition "absent". A failed marker condition returns the run
//!   the marker names. `update_run` copies the run's status to the marker
//!   (a second write; a marker left stale by a crash between the two writes
//!   is repaired by the next insert, which re-reads the run itself).
//! - `list_runs`: a Query on `gsi1` (task filter), `gsi3` (status filter) or
//!   `gsi2` (neither), newest first; a task plus status filter reads the
//!   task's partition and filters, paging until `top` runs are found.
//! - `record_event` puts the event, then puts the delivery item on condition
//!   "absent", so `find_delivery` (a `GetItem` on the delivery item, then on
//!   the event) returns the first event of that delivery. Delivery items
//!   expire through the table's TTL (`expires_at`); expired items that TTL has
//!   not removed yet are ignored.
//! - `record_delivery`: one `TransactWriteItems` putting the delivery item
//!   (absent or expired), the event, and each unblocked run with its dedupe
//!   marker ([`intake`]).
//! - Dependencies: a Query on the task's partition (`begins_with(sk, "DEP#")`);
//!   `dependents_of(image)` is a Query on `by-image`, never a scan of tasks.
//!
//! - `set_dependencies` replaces a task's items with `BatchWriteItem`
//!   (deletes of images no longer listed, puts of the rest): not atomic, but
//!   a retry converges.
//!
//! Reads by key are strongly consistent; reads through an index are
//! eventually consistent, as DynamoDB allows nothing else. The `TASKS`,
//! `RUNS` and `EVENTS` index partitions take every task, run or event: fine
//! for a build system's write rate (far below an index partition's ~1000
//! writes per second).

use crate::config::Lazy;
use crate::error::{Error, Result};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use crtask_core::domain::model::{
    BaseDependency, EventRecord, EventSource, Run, RunFilter, RunStatus, Task,
};
use crtask_core::ports::{Clock, DeliveryRecorded, DeliveryWrite, Store, Summarize, SystemClock};
use crtask_core::{domain::runid, Error as CoreError};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

mod intake;
mod items;
mod patch_config;
mod retention;
mod table;
mod task_marker;
mod tracked;

use items::*;
pub use retention::DEFAULT_RETENTION;
pub use table::create_table;

/// Index names and their key attributes (for templates and table creation).
pub const GSI_BY_IMAGE: &str = "by-image";
pub const GSI1: &str = "gsi1";
pub const GSI2: &str = "gsi2";
pub const GSI3: &str = "gsi3";
/// The table's TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// How long a delivery id is remembered by default.
pub const DEFAULT_DELIVERY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

const META_PK: &str = "META";
const META_SK: &str = "COUNTERS";

/// The DynamoDB store. Cheap to clone.
#[derive(Clone)]
pub struct DynamoStore {
    client: Lazy<Client>,
    table: String,
    run_prefix: String,
    delivery_ttl: Duration,
    retention: Duration,
    clock: Arc<dyn Clock>,
}

impl DynamoStore {
    /// A store on `table` (which must exist: see [`create_table`]).
    pub fn new(client: impl Into<Lazy<Client>>, table: impl Into<String>) -> Self {
        DynamoStore {
            client: client.into(),
            table: table.into(),
            run_prefix: runid::DEFAULT_PREFIX.to_string(),
            delivery_ttl: DEFAULT_DELIVERY_TTL,
            retention: DEFAULT_RETENTION,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses another two-letter run id prefix (default `ca`).
    pub fn with_run_prefix(mut self, prefix: &str) -> Result<Self> {
        runid::validate_prefix(prefix)?;
        self.run_prefix = prefix.to_string();
        Ok(self)
    }

    /// How long a delivery id counts as seen (the TTL of delivery items).
    pub fn with_delivery_ttl(mut self, ttl: Duration) -> Self {
        self.delivery_ttl = ttl;
        self
    }

    /// The time source for delivery expiry.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::dynamo("GetItem", e))?;
        Ok(out.item)
    }

    /// Atomically increments a counter on the counters item.
    async fn bump(&self, counter: &str) -> Result<u64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(META_PK))
            .key("sk", s(META_SK))
            .update_expression("ADD #c :one")
            .expression_attribute_names("#c", counter)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| Error::dynamo("UpdateItem", e))?;
        out.attributes
            .as_ref()
            .and_then(|a| a.get(counter))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::corrupt(format!("{META_PK}/{counter}"), "not a number"))
    }

    /// Items of one partition (of the table or an index), in sort-key order,
    /// keeping those `keep` accepts, until `want` are found.
    async fn query(
        &self,
        q: Query<'_>,
        want: Option<usize>,
        keep: impl Fn(&Item) -> bool,
    ) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        if want == Some(0) {
            return Ok(out);
        }
        let mut start: Option<Item> = None;
        loop {
            let mut cond = "#p = :p".to_string();
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_names("#p", q.pk_attr)
                .expression_attribute_values(":p", s(q.pk))
                .scan_index_forward(q.forward)
                .set_exclusive_start_key(start.take());
            if let Some(index) = q.index {
                req = req.index_name(index);
            } else {
                req = req.consistent_read(true);
            }
            if let Some(prefix) = q.sk_prefix {
                cond.push_str(" AND begins_with(#s, :s)");
                req = req
                    .expression_attribute_names("#s", "sk")
                    .expression_attribute_values(":s", s(prefix));
            }
            if let Some(w) = want {
                req = req.limit(w.clamp(1, 500) as i32);
            }
            let page = req
                .key_condition_expression(cond)
                .send()
                .await
                .map_err(|e| Error::dynamo("Query", e))?;
            for item in page.items.unwrap_or_default() {
                if keep(&item) {
                    out.push(item);
                    if want.is_some_and(|w| out.len() >= w) {
                        return Ok(out);
                    }
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Writes `writes` in batches of 25, resubmitting unprocessed items.
    async fn batch_write(&self, writes: Vec<WriteRequest>) -> Result<()> {
        for chunk in writes.chunks(25) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| Error::dynamo("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt > 8 {
                        return Err(Error::Dynamo {
                            op: "BatchWriteItem",
                            message: format!(
                                "{} items still unprocessed after {attempt} attempts",
                                pending.len()
                            ),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
                }
            }
        }
        Ok(())
    }

    /// A task's dependency items (its partition's `DEP#` items).
    async fn dep_items(&self, task: &str) -> Result<Vec<Item>> {
        self.query(
            Query {
                index: None,
                pk_attr: "pk",
                pk: &task_pk(task),
                sk_prefix: Some("DEP#"),
                forward: true,
            },
            None,
            |_| true,
        )
        .await
    }

    async fn put_conditional(&self, item: Item, condition: &str) -> Result<bool> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::dynamo("PutItem", e)),
        }
    }

    /// Copies a run's status to its dedupe marker, if the marker names it.
    async fn sync_marker(&self, key: &str, run_id: &str, status: RunStatus) -> Result<()> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&dedupe_pk(key)))
            .key("sk", s("DEDUPE"))
            .update_expression("SET #st = :st")
            .condition_expression("run_id = :id")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", s(status.as_str()))
            .expression_attribute_values(":id", s(run_id))
            .send()
            .await;
        match r {
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

    /// Sets a stale dedupe marker's status to its run's `actual` one, unless
    /// another writer changed the marker meanwhile (best effort: a failure
    /// leaves the marker for the next writer to repair).
    async fn repair_marker(
        &self,
        key: &str,
        marked_id: &str,
        marked_status: &str,
        actual: RunStatus,
    ) {
        let _ = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&dedupe_pk(key)))
            .key("sk", s("DEDUPE"))
            .update_expression("SET #st = :new")
            .condition_expression("run_id = :id AND #st = :old")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":new", s(actual.as_str()))
            .expression_attribute_values(":id", s(marked_id))
            .expression_attribute_values(":old", s(marked_status))
            .send()
            .await;
    }

    async fn read_run(&self, run_id: &str) -> Result<Option<Run>> {
        self.get(&run_pk(run_id), "RUN")
            .await?
            .map(|i| body(&i))
            .transpose()
    }

    /// One attempt of [`Store::insert_run_deduped`].
    async fn try_insert_deduped(&self, run: &Run, key: &str) -> Result<InsertAttempt> {
        let task = task_marker::marked_task(run);
        if let Some(task) = task {
            if let Some(queued) = self.queued_image_run(task).await? {
                if queued.run_id == run.run_id {
                    // Our own earlier attempt committed although its answer was lost.
                    return Ok(InsertAttempt::Inserted);
                }
                return Ok(InsertAttempt::Existing(Box::new(queued)));
            }
        }
        let marker = intake::marker_put(&self.table, key, run)
            .build()
            .map_err(|e| Error::dynamo("TransactWriteItems", e))?;
        let put_run = Put::builder()
            .table_name(&self.table)
            .set_item(Some(run_item(run)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::dynamo("TransactWriteItems", e))?;
        let mut req = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(marker).build())
            .transact_items(TransactWriteItem::builder().put(put_run).build());
        if let Some(task) = task {
            // Third item: a failed condition means another base-image run
            // of the task was queued meanwhile; the retry finds it.
            let queued = task_marker::put(&self.table, task, run)
                .build()
                .map_err(|e| Error::dynamo("TransactWriteItems", e))?;
            req = req.transact_items(TransactWriteItem::builder().put(queued).build());
        }
        let r = req.send().await;
        let e = match r {
            Ok(_) => return Ok(InsertAttempt::Inserted),
            Err(e) => e,
        };
        let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) =
            e.as_service_error()
        else {
            if e.as_service_error().and_then(|s| s.code()) == Some("TransactionConflictException") {
                return Ok(InsertAttempt::Retry);
            }
            return Err(Error::dynamo("TransactWriteItems", e));
        };
        let codes: Vec<Option<&str>> = c.cancellation_reasons().iter().map(|r| r.code()).collect();
        let code = |i: usize| codes.get(i).copied().flatten().unwrap_or("None");
        if code(1) == "ConditionalCheckFailed" {
            return Err(CoreError::Conflict {
                kind: "run",
                name: run.run_id.clone(),
            }
            .into());
        }
        if code(0) != "ConditionalCheckFailed" {
            // TransactionConflict (a concurrent insert) or throttling: try again.
            return Ok(InsertAttempt::Retry);
        }
        // The marker names a run: is it still blocking?
        let Some(m) = self.get(&dedupe_pk(key), "DEDUPE").await? else {
            return Ok(InsertAttempt::Retry);
        };
        let marked_id = str_attr(&m, "run_id").unwrap_or_default().to_string();
        let marked_status = str_attr(&m, "status").unwrap_or_default().to_string();
        match self.read_run(&marked_id).await? {
            // Our own earlier attempt committed although its answer was lost.
            Some(existing) if existing.run_id == run.run_id => Ok(InsertAttempt::Inserted),
            Some(existing) if blocks_dedupe(existing.status) => {
                Ok(InsertAttempt::Existing(Box::new(existing)))
            }
            found => {
                // Stale marker (a crash between update_run's two writes, or a
                // run deleted by hand): repair it if nobody else did, retry.
                let actual = found.map(|r| r.status).unwrap_or(RunStatus::Error);
                self.repair_marker(key, &marked_id, &marked_status, actual)
                    .await;
                Ok(InsertAttempt::Retry)
            }
        }
    }
}

enum InsertAttempt {
    Inserted,
    Existing(Box<Run>),
    Retry,
}

/// A Query's partition and order.
struct Query<'a> {
    index: Option<&'static str>,
    pk_attr: &'a str,
    pk: &'a str,
    sk_prefix: Option<&'a str>,
    forward: bool,
}

impl<'a> Query<'a> {
    fn index(index: &'static str, pk_attr: &'a str, pk: &'a str, forward: bool) -> Self {
        Query {
            index: Some(index),
            pk_attr,
            pk,
            sk_prefix: None,
            forward,
        }
    }
}

/// True when a run with this status keeps a new run with its key from
/// being queued (queued, running or succeeded).
#[async_trait]
impl Store for DynamoStore {
    async fn create_task(&self, task: &Task) -> crtask_core::Result<()> {
        if !self
            .put_conditional(task_item(task)?, "attribute_not_exists(pk)")
            .await?
        {
            return Err(CoreError::Conflict {
                kind: "task",
                name: task.name.clone(),
            });
        }
        Ok(())
    }

    async fn update_task(&self, task: &Task) -> crtask_core::Result<()> {
        if !self
            .put_conditional(task_item(task)?, "attribute_exists(pk)")
            .await?
        {
            return Err(CoreError::not_found("task", &task.name));
        }
        Ok(())
    }

    async fn get_task(&self, name: &str) -> crtask_core::Result<Option<Task>> {
        Ok(self
            .get(&task_pk(name), "TASK")
            .await?
            .map(|i| body(&i))
            .transpose()?)
    }

    async fn list_tasks(&self) -> crtask_core::Result<Vec<Task>> {
        let items = self
            .query(Query::index(GSI2, "gsi2pk", "TASKS", true), None, |_| true)
            .await?;
        Ok(items.iter().map(body).collect::<Result<_>>()?)
    }

    async fn delete_task(&self, name: &str) -> crtask_core::Result<bool> {
        let pk = task_pk(name);
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s("TASK"))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| Error::dynamo("DeleteItem", e))?;
        let existed = out.attributes.is_some_and(|a| !a.is_empty());
        // The task's dependency and timer items live in its partition.
        let rest = self
            .query(
                Query {
                    index: None,
                    pk_attr: "pk",
                    pk: &pk,
                    sk_prefix: None,
                    forward: true,
                },
                None,
                |_| true,
            )
            .await?;
        let deletes = rest
            .iter()
            .map(|i| delete_request(key_of(i)))
            .collect::<Result<Vec<_>>>()?;
        self.batch_write(deletes).await?;
        for image in rest.iter().filter_map(|i| str_attr(i, "dep_image")) {
            self.untrack(image, name).await?;
        }
        Ok(existed)
    }

    async fn next_run_id(&self) -> crtask_core::Result<String> {
        let n = self.bump("run_counter").await?;
        Ok(runid::format(&self.run_prefix, n))
    }

    async fn insert_run(&self, run: &Run) -> crtask_core::Result<()> {
        if !self
            .put_conditional(run_item(run)?, "attribute_not_exists(pk)")
            .await?
        {
            return Err(CoreError::Conflict {
                kind: "run",
                name: run.run_id.clone(),
            });
        }
        Ok(())
    }

    async fn insert_run_deduped(&self, run: &Run) -> crtask_core::Result<Option<Run>> {
        let Some(key) = run.dedupe_key.as_deref() else {
            self.insert_run(run).await?;
            return Ok(None);
        };
        for attempt in 0..20u32 {
            match self.try_insert_deduped(run, key).await? {
                InsertAttempt::Inserted => return Ok(None),
                InsertAttempt::Existing(r) => return Ok(Some(*r)),
                InsertAttempt::Retry => {
                    let jitter = u64::from(run.run_id.bytes().map(u32::from).sum::<u32>() % 17);
                    tokio::time::sleep(Duration::from_millis((10 << attempt.min(5)) + jitter))
                        .await;
                }
            }
        }
        Err(CoreError::Store(format!(
            "could not record run {} (dedupe key '{key}'): too many concurrent writers, try again",
            run.run_id
        )))
    }

    async fn update_run(&self, run: &Run) -> crtask_core::Result<()> {
        if !self
            .put_conditional(run_item(run)?, "attribute_exists(pk)")
            .await?
        {
            return Err(CoreError::not_found("run", &run.run_id));
        }
        if let Some(key) = &run.dedupe_key {
            self.sync_marker(key, &run.run_id, run.status).await?;
        }
        self.sync_task_marker(run).await?;
        Ok(())
    }

    async fn get_run(&self, run_id: &str) -> crtask_core::Result<Option<Run>> {
        Ok(self.read_run(run_id).await?)
    }

    async fn list_runs(&self, filter: &RunFilter) -> crtask_core::Result<Vec<Run>> {
        let status = filter.status.map(|s| s.as_str());
        let items = match (&filter.task, status) {
            (Some(task), _) => {
                let pk = format!("TASKRUNS#{task}");
                self.query(Query::index(GSI1, "gsi1pk", &pk, false), filter.top, |i| {
                    status.is_none() || str_attr(i, "status") == status
                })
                .await?
            }
            (None, Some(st)) => {
                let pk = format!("STATUS#{st}");
                self.query(Query::index(GSI3, "gsi3pk", &pk, false), filter.top, |_| {
                    true
                })
                .await?
            }
            (None, None) => {
                self.query(
                    Query::index(GSI2, "gsi2pk", "RUNS", false),
                    filter.top,
                    |_| true,
                )
                .await?
            }
        };
        Ok(runs_of(&items)?)
    }

    async fn runs_in_status(&self, statuses: &[RunStatus]) -> crtask_core::Result<Vec<Run>> {
        let mut out = Vec::new();
        let distinct: BTreeSet<&'static str> = statuses.iter().map(|s| s.as_str()).collect();
        for st in distinct {
            let pk = format!("STATUS#{st}");
            let items = self
                .query(Query::index(GSI3, "gsi3pk", &pk, true), None, |_| true)
                .await?;
            out.extend(runs_of(&items)?);
        }
        // An index may briefly lag a status change: trust the body.
        out.retain(|r| statuses.contains(&r.status));
        out.sort_by_key(|r| runid::sort_key(&r.run_id));
        Ok(out)
    }

    async fn record_event(&self, event: &EventRecord) -> crtask_core::Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.expiring_event_item(event)?))
            .send()
            .await
            .map_err(|e| Error::dynamo("PutItem", e))?;
        if let Some(d) = &event.delivery_id {
            let expires = self.clock.now().timestamp()
                + i64::try_from(self.delivery_ttl.as_secs()).unwrap_or(i64::MAX / 2);
            let item = HashMap::from([
                ("pk".to_string(), s(&delivery_pk(event.source, d))),
                ("sk".to_string(), s("DELIVERY")),
                ("event_id".to_string(), s(&event.id)),
                (
                    TTL_ATTRIBUTE.to_string(),
                    AttributeValue::N(expires.to_string()),
                ),
            ]);
            // The first event of a delivery wins (an expired one may be replaced).
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR event_id = :id OR #ttl < :now")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":id", s(&event.id))
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(self.clock.now().timestamp().to_string()),
                )
                .send()
                .await
                .map(|_| ())
                .or_else(|e| {
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception())
                    {
                        Ok(())
                    } else {
                        Err(Error::dynamo("PutItem", e))
                    }
                })?;
        }
        Ok(())
    }

    async fn find_delivery(
        &self,
        source: EventSource,
        delivery_id: &str,
    ) -> crtask_core::Result<Option<EventRecord>> {
        let Some(d) = self
            .get(&delivery_pk(source, delivery_id), "DELIVERY")
            .await?
        else {
            return Ok(None);
        };
        let expires = d
            .get(TTL_ATTRIBUTE)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok());
        if expires.is_some_and(|e| e < self.clock.now().timestamp()) {
            return Ok(None);
        }
        let Some(id) = str_attr(&d, "event_id") else {
            return Ok(None);
        };
        Ok(self
            .get(&event_pk(id), "EVENT")
            .await?
            .map(|i| body(&i))
            .transpose()?)
    }

    async fn record_delivery(
        &self,
        write: DeliveryWrite,
        summarize: Summarize,
    ) -> crtask_core::Result<DeliveryRecorded> {
        self.record_delivery_once(&write, &summarize).await
    }

    async fn list_events(
        &self,
        source: Option<EventSource>,
        top: usize,
    ) -> crtask_core::Result<Vec<EventRecord>> {
        let items = match source {
            Some(src) => {
                let pk = format!("EVSRC#{}", src.as_str());
                self.query(Query::index(GSI1, "gsi1pk", &pk, false), Some(top), |_| {
                    true
                })
                .await?
            }
            None => {
                self.query(
                    Query::index(GSI2, "gsi2pk", "EVENTS", false),
                    Some(top),
                    |_| true,
                )
                .await?
            }
        };
        Ok(items.iter().map(body).collect::<Result<_>>()?)
    }

    async fn next_event_id(&self) -> crtask_core::Result<String> {
        Ok(format!("ev{}", self.bump("event_counter").await?))
    }

    async fn set_dependencies(
        &self,
        task: &str,
        deps: &[BaseDependency],
    ) -> crtask_core::Result<()> {
        let existing = self.dep_items(task).await?;
        // Last one wins for an image listed twice (as INSERT OR REPLACE does).
        let mut wanted: HashMap<&str, &BaseDependency> = HashMap::new();
        for d in deps {
            wanted.insert(d.image.as_str(), d);
        }
        let mut writes = Vec::new();
        let mut dropped = Vec::new();
        for item in &existing {
            let image = str_attr(item, "dep_image").unwrap_or_default();
            if !wanted.contains_key(image) {
                writes.push(delete_request(key_of(item))?);
                dropped.push(image.to_string());
            }
        }
        for d in wanted.values() {
            writes.push(put_request(dep_item(task, d))?);
        }
        // Newly listed images are tracked first, so the poller never misses
        // an image a task has (images listed before are tracked already).
        let had: BTreeSet<&str> = existing
            .iter()
            .filter_map(|i| str_attr(i, "dep_image"))
            .collect();
        for image in wanted.keys().filter(|i| !had.contains(*i)) {
            self.track(image, task).await?;
        }
        self.batch_write(writes).await?;
        for image in &dropped {
            self.untrack(image, task).await?;
        }
        Ok(())
    }

    async fn dependencies_of(&self, task: &str) -> crtask_core::Result<Vec<BaseDependency>> {
        let items = self.dep_items(task).await?;
        let mut deps = items
            .iter()
            .map(|i| dep_from(i).map(|(_, d)| d))
            .collect::<Result<Vec<_>>>()?;
        deps.sort_by(|a, b| a.image.cmp(&b.image));
        Ok(deps)
    }

    async fn dependents_of(
        &self,
        image: &str,
    ) -> crtask_core::Result<Vec<(String, BaseDependency)>> {
        let items = self
            .query(
                Query::index(GSI_BY_IMAGE, "dep_image", image, true),
                None,
                |_| true,
            )
            .await?;
        let mut out = items.iter().map(dep_from).collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn tracked_images(&self) -> crtask_core::Result<Vec<String>> {
        Ok(self.tracked().await?)
    }

    async fn timer_last_fired(
        &self,
        task: &str,
        timer: &str,
    ) -> crtask_core::Result<Option<DateTime<Utc>>> {
        let item = self.get(&task_pk(task), &format!("TIMER#{timer}")).await?;
        Ok(item
            .as_ref()
            .and_then(|i| str_attr(i, "last_fired"))
            .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    async fn set_timer_last_fired(
        &self,
        task: &str,
        timer: &str,
        t: DateTime<Utc>,
    ) -> crtask_core::Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&task_pk(task)))
            .item("sk", s(&format!("TIMER#{timer}")))
            .item("last_fired", s(&crtask_core::domain::time::rfc3339(t)))
            .send()
            .await
            .map_err(|e| Error::dynamo("PutItem", e))?;
        Ok(())
    }

    async fn ping(&self) -> crtask_core::Result<()> {
        self.get(META_PK, META_SK).await?;
        Ok(())
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> crtask_core::Result<bool> {
        let n = |v: i64| AttributeValue::N(v.to_string());
        let item: Item = [
            ("pk".to_string(), s(&lease_pk(name))),
            ("sk".to_string(), s("LEASE")),
            ("holder".to_string(), s(holder)),
            ("until_ms".to_string(), n(until.timestamp_millis())),
            // A lease nobody gave back is deleted by TTL once long expired.
            (TTL_ATTRIBUTE.to_string(), n(until.timestamp() + 3600)),
        ]
        .into_iter()
        .collect();
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR until_ms <= :now OR holder = :holder",
            )
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::dynamo("PutItem", e).into()),
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> crtask_core::Result<()> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&lease_pk(name)))
            .key("sk", s("LEASE"))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            // Expired and taken by another holder meanwhile: not ours to delete.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::dynamo("DeleteItem", e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_blocking_statuses() {
        let blocking: Vec<_> = RunStatus::ALL
            .into_iter()
            .filter(|s| blocks_dedupe(*s))
            .collect();
        assert_eq!(
            blocking,
            [
                RunStatus::Queued,
                RunStatus::Started,
                RunStatus::Running,
                RunStatus::Succeeded
            ]
        );
    }

    #[test]
    fn sort_keys_order_numerically() {
        assert!(seq20(9) < seq20(10));
        assert_eq!(event_seq("ev12"), 12);
        assert_eq!(event_seq("x"), 0);
    }
}
