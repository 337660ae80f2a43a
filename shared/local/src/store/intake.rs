//! Exactly-once intake on SQLite, with group commit.
//!
//! [`Store::record_delivery`](crtask_core::ports::Store::record_delivery)
//! requests go to one writer thread through a channel. The writer takes
//! every request waiting, records them all in ONE immediate transaction
//! (each in its own savepoint, so one failing request does not undo the
//! others), commits once (WAL, `synchronous=FULL`: one fsync for the batch),
//! and only then answers each request. Deliveries arriving together thus
//! share one durable commit, and none is acknowledged before it is durable.
//!
//! Each request, inside the transaction: a delivery id already recorded for
//! its source answers with that first event and writes nothing (the check
//! and the insert are in the same write transaction, and SQLite has one
//! writer at a time, so concurrent copies, in this process or another on the
//! same file, get one row); otherwise a delivery to be decided is decided by
//! core against the tasks read in this transaction ([`TasksSeen`]: once per
//! batch at most, parsed only when they changed), run ids are assigned,
//! each run is inserted unless its dedupe key is blocked, core's
//! `summarize` decides the event's text, and the event is written.

use super::checkpoint::Checkpointer;
use super::tasks_seen::TasksSeen;
use super::{blocking_run, from_json, insert_run_row, to_json};
use crate::Result;
use crtask_core::domain::model::EventRecord;
use crtask_core::domain::runid;
use crtask_core::ports::{Decide, Decided, DeliveryRecorded, DeliveryWrite, Summarize};
use crtask_core::Error as CoreError;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Most deliveries one commit takes (a bound on how long the first of them waits).
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<crtask_core::Result<DeliveryRecorded>>;

/// One delivery waiting for the writer.
struct Request {
    write: DeliveryWrite,
    how: How,
    reply: Reply,
}

/// How a delivery's runs and event text are decided.
enum How {
    /// The runs are `write.runs`; `summarize` says what the event says.
    Planned(Summarize),
    /// Core decides against the tasks, in the transaction (taken when called).
    Decide(Option<Decide>),
}

/// The sending side of the writer; the writer thread ends when the last
/// clone of its store is dropped.
#[derive(Clone)]
pub(super) struct IntakeWriter {
    tx: mpsc::Sender<Request>,
}

impl IntakeWriter {
    /// Starts the writer thread on `conn`.
    /// Starts the writer thread on `conn`; after each commit it pokes
    /// `checkpointer` (file databases, whose writer does not checkpoint itself).
    pub(super) fn start(
        conn: Arc<Mutex<Connection>>,
        checkpointer: Option<Checkpointer>,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("crtask-intake".into())
            .spawn(move || writer_loop(&conn, &rx, checkpointer.as_ref()))?;
        Ok(IntakeWriter { tx })
    }

    /// Records one delivery whose runs are planned; answers once its batch
    /// is committed.
    pub(super) async fn record(
        &self,
        write: DeliveryWrite,
        summarize: Summarize,
    ) -> crtask_core::Result<DeliveryRecorded> {
        self.send(write, How::Planned(summarize)).await
    }

    /// Records one delivery decided by `decide` against the tasks read in
    /// its batch's transaction; answers once its batch is committed.
    pub(super) async fn record_decided(
        &self,
        write: DeliveryWrite,
        decide: Decide,
    ) -> crtask_core::Result<DeliveryRecorded> {
        self.send(write, How::Decide(Some(decide))).await
    }

    async fn send(&self, write: DeliveryWrite, how: How) -> crtask_core::Result<DeliveryRecorded> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { write, how, reply })
            .map_err(|_| CoreError::Store("the intake writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| CoreError::Store("the intake writer dropped a delivery".into()))?
    }
}

fn writer_loop(
    conn: &Mutex<Connection>,
    rx: &mpsc::Receiver<Request>,
    checkpointer: Option<&Checkpointer>,
) {
    let mut tasks = TasksSeen::default();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let results = commit_batch(conn, &mut batch, &mut tasks);
        for (req, result) in batch.into_iter().zip(results) {
            // A caller that went away (client disconnected) needs no answer.
            let _ = req.reply.send(result);
        }
        if let Some(c) = checkpointer {
            c.poke();
        }
    }
}

/// Records every request of `batch` in one transaction; one result each.
/// When the commit fails, every request fails (nothing of the batch is kept).
fn commit_batch(
    conn: &Mutex<Connection>,
    batch: &mut [Request],
    tasks: &mut TasksSeen,
) -> Vec<crtask_core::Result<DeliveryRecorded>> {
    let n = batch.len();
    let fail_all = |msg: String| (0..n).map(|_| Err(CoreError::Store(msg.clone()))).collect();
    let mut guard = match conn.lock() {
        Ok(g) => g,
        Err(_) => return fail_all("store lock poisoned".into()),
    };
    let mut tx = match guard.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(format!("database: {e}")),
    };
    tasks.new_transaction();
    let mut results = Vec::with_capacity(n);
    for req in batch.iter_mut() {
        results.push(in_savepoint(&mut tx, req, tasks));
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => fail_all(format!("database: {e}")),
    }
}

/// One request in its own savepoint: kept when it succeeds, rolled back
/// (and only it) when it fails or panics.
fn in_savepoint(
    tx: &mut rusqlite::Transaction<'_>,
    req: &mut Request,
    tasks: &mut TasksSeen,
) -> crtask_core::Result<DeliveryRecorded> {
    let sp = tx.savepoint().map_err(crate::Error::from)?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        record_one(&sp, &req.write, &mut req.how, tasks)
    }));
    match outcome {
        Ok(Ok(recorded)) => {
            sp.commit().map_err(crate::Error::from)?;
            Ok(recorded)
        }
        // Dropping the savepoint rolls it back.
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(CoreError::Store(
            "recording the delivery panicked; nothing was recorded".into(),
        )),
    }
}

/// The first event recorded for `(source, delivery)`.
fn first_event(c: &Connection, source: &str, delivery: &str) -> Result<Option<EventRecord>> {
    let body: Option<String> = c
        .prepare_cached(
            "SELECT body FROM events WHERE source = ?1 AND delivery = ?2 ORDER BY seq LIMIT 1",
        )?
        .query_row(params![source, delivery], |r| r.get(0))
        .optional()?;
    body.map(|b| from_json(&b)).transpose()
}

/// Adds `n` to a counter in `meta` inside the caller's transaction; returns the new value.
fn add_to_counter(c: &Connection, key: &str, n: u64) -> Result<u64> {
    let v: String = c
        .prepare_cached(
            "UPDATE meta SET value = CAST(value AS INTEGER) + ?2 WHERE key = ?1 RETURNING value",
        )?
        .query_row(params![key, n as i64], |r| r.get(0))?;
    v.parse()
        .map_err(|_| crate::Error::Core(CoreError::Store(format!("corrupt counter {key} '{v}'"))))
}

fn record_one(
    c: &Connection,
    w: &DeliveryWrite,
    how: &mut How,
    tasks: &mut TasksSeen,
) -> Result<DeliveryRecorded> {
    let source = w.source.as_str();
    if let Some(d) = &w.delivery_id {
        if let Some(first) = first_event(c, source, d)? {
            return Ok(DeliveryRecorded::Seen(first));
        }
    }
    let (mut runs, summarize) = match how {
        How::Planned(summarize) => (w.runs.clone(), summarize.clone()),
        How::Decide(decide) => {
            let decide = decide.take().ok_or_else(|| {
                crate::Error::Core(CoreError::Store("a delivery was decided twice".into()))
            })?;
            let Decided { runs, summarize } = decide(tasks.get(c)?);
            (runs, summarize)
        }
    };
    if !runs.is_empty() {
        let last = add_to_counter(c, "run_counter", runs.len() as u64)?;
        let prefix: String = c
            .prepare_cached("SELECT value FROM meta WHERE key = 'run_prefix'")?
            .query_row([], |r| r.get(0))?;
        let first = last + 1 - runs.len() as u64;
        for (i, run) in runs.iter_mut().enumerate() {
            run.run_id = runid::format(&prefix, first + i as u64);
        }
    }
    let mut blocked = Vec::with_capacity(runs.len());
    for run in &runs {
        // Runs inserted earlier in this transaction (this delivery's, or an
        // earlier one's of the batch) block as committed ones do.
        match blocking_run(c, run)? {
            Some(existing) => blocked.push(Some(existing)),
            None => {
                insert_run_row(c, run)?;
                blocked.push(None);
            }
        }
    }
    let summary = summarize(&runs, &blocked);
    let event = EventRecord {
        id: format!("ev{}", add_to_counter(c, "event_counter", 1)?),
        source: w.source,
        delivery_id: w.delivery_id.clone(),
        received_at: w.received_at,
        outcome: summary.outcome,
        reason: summary.reason,
        runs: summary.runs,
        detail: w.detail.clone(),
    };
    c.prepare_cached("INSERT INTO events (id, source, delivery, body) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![
            event.id,
            source,
            event.delivery_id,
            to_json(&event)?
        ])?;
    let new_runs = runs
        .into_iter()
        .zip(&blocked)
        .filter(|(_, b)| b.is_none())
        .map(|(r, _)| r)
        .collect();
    Ok(DeliveryRecorded::New { event, new_runs })
}
