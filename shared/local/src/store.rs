//! The SQLite store (WAL): tasks, runs and the run-id counter.
//!
//! Every write is one transaction with `synchronous=FULL`, so once a call
//! returns the record survives a crash of the process or the machine.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crtask_core::domain::model::{
    BaseDependency, EventRecord, EventSource, Run, RunFilter, RunStatus, Task,
};
use crtask_core::ports::{Decide, DeliveryRecorded, DeliveryWrite, Store, Summarize};
use crtask_core::{domain::runid, Error as CoreError};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex};

mod checkpoint;
mod intake;
pub mod outbox;
mod tasks_seen;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE,
    task TEXT,
    status TEXT NOT NULL,
    dedupe TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_dedupe ON runs (dedupe) WHERE dedupe IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    delivery TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_delivery ON events (source, delivery);
CREATE INDEX IF NOT EXISTS events_by_source ON events (source, seq);
CREATE TABLE IF NOT EXISTS dependencies (
    task TEXT NOT NULL,
    image TEXT NOT NULL,
    digest TEXT,
    runtime INTEGER NOT NULL,
    PRIMARY KEY (task, image)
);
CREATE INDEX IF NOT EXISTS dependencies_by_image ON dependencies (image);
CREATE TABLE IF NOT EXISTS timer_state (
    task TEXT NOT NULL,
    timer TEXT NOT NULL,
    last_fired TEXT NOT NULL,
    PRIMARY KEY (task, timer)
);
CREATE INDEX IF NOT EXISTS runs_by_task ON runs (task, seq);
CREATE INDEX IF NOT EXISTS runs_by_task_status ON runs (task, status, seq);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, seq);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms INTEGER NOT NULL
);
"#;

/// The local store. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Group commit of webhook deliveries ([`intake`]).
    intake: intake::IntakeWriter,
    /// The server's notification URLs and the deliverer's wake-up ([`outbox`]).
    notify: Arc<NotifySettings>,
}

/// What `update_run` needs to queue notifications.
#[derive(Default)]
struct NotifySettings {
    /// The server-wide `--notify` URLs.
    urls: Vec<String>,
    /// Woken when a notification is queued.
    wake: Arc<tokio::sync::Notify>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`. Deliveries are
    /// written through a second connection of their own ([`intake`]), so
    /// reads on the first do not wait for a batch's commit (WAL lets readers
    /// run during a write).
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Self::init(Connection::open(path)?)?;
        let writer = Connection::open(path)?;
        configure(&writer)?;
        // Checkpoints run on a third connection, off the commit path ([`checkpoint`]).
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = Connection::open(path)?;
        configure(&checkpointer)?;
        let checkpointer = checkpoint::Checkpointer::start(checkpointer)?;
        Ok(SqliteStore {
            intake: intake::IntakeWriter::start(Arc::new(Mutex::new(writer)), Some(checkpointer))?,
            conn,
            notify: Arc::default(),
        })
    }

    /// An in-memory store, for tests (one connection for everything: an
    /// in-memory database is private to its connection).
    pub fn in_memory() -> Result<Self> {
        let conn = Self::init(Connection::open_in_memory()?)?;
        Ok(SqliteStore {
            intake: intake::IntakeWriter::start(conn.clone(), None)?,
            conn,
            notify: Arc::default(),
        })
    }

    /// Configures the connection and creates the schema.
    fn init(conn: Connection) -> Result<Arc<Mutex<Connection>>> {
        configure(&conn)?;
        crate::retention::enable_incremental_vacuum(&conn)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(outbox::SCHEMA)?;
        conn.execute_batch(tasks_seen::SCHEMA)?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1'), ('run_prefix', ?1), ('run_counter', '0'), ('event_counter', '0'), ('tasks_version', '0')",
            params![runid::DEFAULT_PREFIX],
        )?;
        Ok(Arc::new(Mutex::new(conn)))
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn with<T, F>(&self, f: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| CoreError::Store("store lock poisoned".into()))?;
            f(&mut guard).map_err(CoreError::from)
        })
        .await
        .map_err(|e| CoreError::Store(format!("store task failed: {e}")))?
    }

    /// Same as [`SqliteStore::with`] but synchronous, for start-up code.
    pub fn with_sync<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T>,
    ) -> Result<T, CoreError> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| CoreError::Store("store lock poisoned".into()))?;
        f(&mut guard).map_err(CoreError::from)
    }
}

impl SqliteStore {
    /// Sets the server-wide notification URLs (`--notify`): every run's
    /// start and end is sent to them, besides its task's own.
    pub fn with_notify_urls(mut self, urls: Vec<String>) -> Self {
        self.notify = Arc::new(NotifySettings {
            urls,
            wake: self.notify.wake.clone(),
        });
        self
    }

    /// Woken whenever a notification is queued.
    pub fn notification_wake(&self) -> Arc<tokio::sync::Notify> {
        self.notify.wake.clone()
    }

    /// Takes the notifications due at `now` (at most `limit`), leasing each
    /// until `lease_until` ([`outbox::take_due`]).
    pub async fn take_due_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<outbox::Due>, CoreError> {
        self.with(move |c| outbox::take_due(c, now, lease_until, limit))
            .await
    }

    /// When the next pending notification is due.
    pub async fn next_notification_due(&self) -> Result<Option<DateTime<Utc>>, CoreError> {
        self.with(|c| outbox::next_due(c)).await
    }

    /// Records one delivery attempt and the delivery's new state.
    pub async fn record_notification_attempt(
        &self,
        seq: i64,
        attempt: crtask_core::notify::Attempt,
        state: crtask_core::notify::DeliveryState,
        next: Option<DateTime<Utc>>,
    ) -> Result<(), CoreError> {
        self.with(move |c| outbox::record_attempt(c, seq, &attempt, state, next))
            .await
    }

    /// A run's notifications with their attempts.
    pub async fn notifications_of_run(
        &self,
        run_id: &str,
    ) -> Result<Vec<crtask_core::notify::NotificationRecord>, CoreError> {
        let id = run_id.to_string();
        self.with(move |c| outbox::of_run(c, &id)).await
    }
}

/// Per-connection settings: durable commits (WAL, `synchronous=FULL`).
fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| crate::Error::Core(CoreError::Store(e.to_string())))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| {
        crate::Error::Core(CoreError::Store(format!("corrupt record in database: {e}")))
    })
}

fn insert_run_row(c: &Connection, run: &Run) -> Result<()> {
    let seq = runid::parse(&run.run_id).map(|(_, n)| n as i64);
    c.execute(
        "INSERT INTO runs (seq, run_id, task, status, dedupe, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            seq,
            run.run_id,
            run.task,
            run.status.as_str(),
            run.dedupe_key,
            to_json(run)?
        ],
    )?;
    Ok(())
}

/// The queued, running or succeeded run with `run`'s dedupe key, if any.
fn blocking_run(c: &Connection, run: &Run) -> Result<Option<Run>> {
    let Some(key) = &run.dedupe_key else {
        return Ok(None);
    };
    let existing: Option<String> = c
        .prepare_cached(
            "SELECT body FROM runs WHERE dedupe = ?1 AND status IN ('Queued', 'Started', 'Running', 'Succeeded')
             ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([key], |r| r.get(0))
        .optional()?;
    existing.map(|b| from_json(&b)).transpose()
}

/// Increments a counter in `meta` and returns the new value.
fn bump_counter(c: &mut Connection, key: &str) -> Result<u64> {
    let tx = c.transaction()?;
    tx.execute(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ?1",
        [key],
    )?;
    let n: String = tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?;
    tx.commit()?;
    n.parse()
        .map_err(|_| crate::Error::Core(CoreError::Store(format!("corrupt counter {key} '{n}'"))))
}

fn runs_from(rows: Vec<String>) -> Result<Vec<Run>> {
    rows.iter().map(|b| from_json(b)).collect()
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_task(&self, task: &Task) -> crtask_core::Result<()> {
        let (name, body) = (task.name.clone(), to_json(task)?);
        self.with(move |c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO tasks (name, body) VALUES (?1, ?2)",
                params![name, body],
            )?;
            if n == 0 {
                return Err(CoreError::Conflict { kind: "task", name }.into());
            }
            Ok(())
        })
        .await
    }

    async fn update_task(&self, task: &Task) -> crtask_core::Result<()> {
        let (name, body) = (task.name.clone(), to_json(task)?);
        self.with(move |c| {
            let n = c.execute(
                "UPDATE tasks SET body = ?2 WHERE name = ?1",
                params![name, body],
            )?;
            if n == 0 {
                return Err(CoreError::not_found("task", name).into());
            }
            Ok(())
        })
        .await
    }

    async fn get_task(&self, name: &str) -> crtask_core::Result<Option<Task>> {
        let name = name.to_string();
        self.with(move |c| {
            let body: Option<String> = c
                .query_row("SELECT body FROM tasks WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()?;
            body.map(|b| from_json(&b)).transpose()
        })
        .await
    }

    async fn list_tasks(&self) -> crtask_core::Result<Vec<Task>> {
        self.with(|c| {
            let mut st = c.prepare_cached("SELECT body FROM tasks ORDER BY name")?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.iter().map(|b| from_json(b)).collect()
        })
        .await
    }

    async fn delete_task(&self, name: &str) -> crtask_core::Result<bool> {
        let name = name.to_string();
        self.with(move |c| {
            let tx = c.transaction()?;
            let n = tx.execute("DELETE FROM tasks WHERE name = ?1", [&name])?;
            tx.execute("DELETE FROM dependencies WHERE task = ?1", [&name])?;
            tx.execute("DELETE FROM timer_state WHERE task = ?1", [&name])?;
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    async fn next_run_id(&self) -> crtask_core::Result<String> {
        self.with(|c| {
            let n = bump_counter(c, "run_counter")?;
            let prefix: String =
                c.query_row("SELECT value FROM meta WHERE key = 'run_prefix'", [], |r| {
                    r.get(0)
                })?;
            Ok(runid::format(&prefix, n))
        })
        .await
    }

    async fn insert_run(&self, run: &Run) -> crtask_core::Result<()> {
        let run = run.clone();
        self.with(move |c| insert_run_row(c, &run)).await
    }

    async fn insert_run_deduped(&self, run: &Run) -> crtask_core::Result<Option<Run>> {
        let run = run.clone();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if let Some(existing) = blocking_run(&tx, &run)? {
                return Ok(Some(existing));
            }
            insert_run_row(&tx, &run)?;
            tx.commit()?;
            Ok(None)
        })
        .await
    }

    async fn next_run_ids(&self, n: usize) -> crtask_core::Result<Vec<String>> {
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + ?1 WHERE key = 'run_counter'",
                [n as i64],
            )?;
            let last: String = tx.query_row(
                "SELECT value FROM meta WHERE key = 'run_counter'",
                [],
                |r| r.get(0),
            )?;
            let prefix: String =
                tx.query_row("SELECT value FROM meta WHERE key = 'run_prefix'", [], |r| {
                    r.get(0)
                })?;
            tx.commit()?;
            let last: u64 = last.parse().map_err(|_| {
                crate::Error::Core(CoreError::Store(format!("corrupt run counter '{last}'")))
            })?;
            let first = last + 1 - n as u64;
            Ok((first..=last).map(|i| runid::format(&prefix, i)).collect())
        })
        .await
    }

    async fn insert_runs_deduped(&self, runs: &[Run]) -> crtask_core::Result<Vec<Option<Run>>> {
        let runs = runs.to_vec();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut out = Vec::with_capacity(runs.len());
            for run in &runs {
                if let Some(existing) = blocking_run(&tx, run)? {
                    out.push(Some(existing));
                    continue;
                }
                insert_run_row(&tx, run)?;
                out.push(None);
            }
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn record_event(&self, event: &EventRecord) -> crtask_core::Result<()> {
        let (id, source, delivery, body) = (
            event.id.clone(),
            event.source.as_str(),
            event.delivery_id.clone(),
            to_json(event)?,
        );
        self.with(move |c| {
            c.execute(
                "INSERT INTO events (id, source, delivery, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body, delivery = excluded.delivery",
                params![id, source, delivery, body],
            )?;
            Ok(())
        })
        .await
    }

    async fn find_delivery(
        &self,
        source: EventSource,
        delivery_id: &str,
    ) -> crtask_core::Result<Option<EventRecord>> {
        let d = delivery_id.to_string();
        self.with(move |c| {
            let body: Option<String> = c
                .query_row(
                    "SELECT body FROM events WHERE source = ?1 AND delivery = ?2 ORDER BY seq LIMIT 1",
                    params![source.as_str(), d],
                    |r| r.get(0),
                )
                .optional()?;
            body.map(|b| from_json(&b)).transpose()
        })
        .await
    }

    async fn record_delivery(
        &self,
        write: DeliveryWrite,
        summarize: Summarize,
    ) -> crtask_core::Result<DeliveryRecorded> {
        self.intake.record(write, summarize).await
    }

    async fn record_decided_delivery(
        &self,
        write: DeliveryWrite,
        decide: Decide,
    ) -> crtask_core::Result<DeliveryRecorded> {
        self.intake.record_decided(write, decide).await
    }

    async fn list_events(
        &self,
        source: Option<EventSource>,
        top: usize,
    ) -> crtask_core::Result<Vec<EventRecord>> {
        self.with(move |c| {
            let mut st = c.prepare(
                "SELECT body FROM events WHERE (?1 IS NULL OR source = ?1) ORDER BY seq DESC LIMIT ?2",
            )?;
            let rows = st
                .query_map(params![source.map(|s| s.as_str()), top as i64], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.iter().map(|b| from_json(b)).collect()
        })
        .await
    }

    async fn next_event_id(&self) -> crtask_core::Result<String> {
        self.with(|c| Ok(format!("ev{}", bump_counter(c, "event_counter")?)))
            .await
    }

    async fn update_run(&self, run: &Run) -> crtask_core::Result<()> {
        let (id, status, body) = (run.run_id.clone(), run.status.as_str(), to_json(run)?);
        let (run, notify) = (run.clone(), self.notify.clone());
        let queued = self
            .with(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let old: Option<String> = tx
                    .query_row("SELECT status FROM runs WHERE run_id = ?1", [&id], |r| {
                        r.get(0)
                    })
                    .optional()?;
                let Some(old) = old else {
                    return Err(CoreError::not_found("run", id).into());
                };
                tx.execute(
                    "UPDATE runs SET status = ?2, body = ?3 WHERE run_id = ?1",
                    params![id, status, body],
                )?;
                // The run's start or end notifications commit with it.
                let old = old.parse::<RunStatus>().ok();
                let queued = outbox::enqueue(&tx, old, &run, &notify.urls, Utc::now())?;
                tx.commit()?;
                Ok(queued)
            })
            .await?;
        if queued {
            self.notify.wake.notify_one();
        }
        Ok(())
    }

    async fn get_run(&self, run_id: &str) -> crtask_core::Result<Option<Run>> {
        let id = run_id.to_string();
        self.with(move |c| {
            let body: Option<String> = c
                .query_row("SELECT body FROM runs WHERE run_id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            body.map(|b| from_json(&b)).transpose()
        })
        .await
    }

    async fn list_runs(&self, filter: &RunFilter) -> crtask_core::Result<Vec<Run>> {
        let f = filter.clone();
        self.with(move |c| {
            let top = f.top.map(|t| t as i64).unwrap_or(-1);
            // One statement per filter shape, so SQLite can use the
            // (task, seq) and (status, seq) indexes ("x IS NULL OR" defeats them).
            let sql = match (&f.task, &f.status) {
                (Some(_), Some(_)) => "SELECT body FROM runs WHERE task = ?1 AND status = ?2 ORDER BY seq DESC LIMIT ?3",
                (Some(_), None) => "SELECT body FROM runs WHERE task = ?1 AND ?2 IS NULL ORDER BY seq DESC LIMIT ?3",
                (None, Some(_)) => "SELECT body FROM runs WHERE ?1 IS NULL AND status = ?2 ORDER BY seq DESC LIMIT ?3",
                (None, None) => "SELECT body FROM runs WHERE ?1 IS NULL AND ?2 IS NULL ORDER BY seq DESC LIMIT ?3",
            };
            let mut st = c.prepare_cached(sql)?;
            let rows = st
                .query_map(params![f.task, f.status.map(|s| s.as_str()), top], |r| {
                    r.get::<_, String>(0)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            runs_from(rows)
        })
        .await
    }

    async fn runs_in_status(&self, statuses: &[RunStatus]) -> crtask_core::Result<Vec<Run>> {
        let statuses: Vec<&'static str> = statuses.iter().map(|s| s.as_str()).collect();
        self.with(move |c| {
            let mut out = Vec::new();
            let mut st = c.prepare("SELECT body FROM runs WHERE status = ?1 ORDER BY seq")?;
            for s in statuses {
                let rows = st
                    .query_map([s], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                out.extend(runs_from(rows)?);
            }
            out.sort_by_key(|r| runid::sort_key(&r.run_id));
            Ok(out)
        })
        .await
    }

    async fn last_succeeded_runs(&self, tasks: &[String]) -> crtask_core::Result<Vec<Run>> {
        let wanted: std::collections::BTreeSet<String> = tasks.iter().cloned().collect();
        self.with(move |c| {
            // One pass over the (task, status, seq) index, however many tasks.
            let mut st = c.prepare_cached(
                "SELECT task, body FROM runs WHERE seq IN \
                 (SELECT max(seq) FROM runs WHERE status = 'Succeeded' AND task IS NOT NULL GROUP BY task)",
            )?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            runs_from(
                rows.into_iter()
                    .filter(|(t, _)| wanted.contains(t))
                    .map(|(_, b)| b)
                    .collect(),
            )
        })
        .await
    }

    async fn set_dependencies(
        &self,
        task: &str,
        deps: &[BaseDependency],
    ) -> crtask_core::Result<()> {
        let (task, deps) = (task.to_string(), deps.to_vec());
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM dependencies WHERE task = ?1", [&task])?;
            for d in &deps {
                tx.execute(
                    "INSERT OR REPLACE INTO dependencies (task, image, digest, runtime) VALUES (?1, ?2, ?3, ?4)",
                    params![task, d.image, d.digest, d.runtime],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn dependencies_of(&self, task: &str) -> crtask_core::Result<Vec<BaseDependency>> {
        let task = task.to_string();
        self.with(move |c| {
            let mut st = c.prepare(
                "SELECT image, digest, runtime FROM dependencies WHERE task = ?1 ORDER BY image",
            )?;
            let rows = st
                .query_map([task], |r| {
                    Ok(BaseDependency {
                        image: r.get(0)?,
                        digest: r.get(1)?,
                        runtime: r.get(2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn dependents_of(
        &self,
        image: &str,
    ) -> crtask_core::Result<Vec<(String, BaseDependency)>> {
        let image = image.to_string();
        self.with(move |c| {
            let mut st = c.prepare("SELECT task, image, digest, runtime FROM dependencies WHERE image = ?1 ORDER BY task")?;
            let rows = st
                .query_map([image], |r| {
                    Ok((r.get(0)?, BaseDependency { image: r.get(1)?, digest: r.get(2)?, runtime: r.get(3)? }))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn tracked_images(&self) -> crtask_core::Result<Vec<String>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT DISTINCT image FROM dependencies ORDER BY image")?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn timer_last_fired(
        &self,
        task: &str,
        timer: &str,
    ) -> crtask_core::Result<Option<DateTime<Utc>>> {
        let (task, timer) = (task.to_string(), timer.to_string());
        self.with(move |c| {
            let v: Option<String> = c
                .query_row(
                    "SELECT last_fired FROM timer_state WHERE task = ?1 AND timer = ?2",
                    params![task, timer],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(v.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                .map(|t| t.with_timezone(&Utc)))
        })
        .await
    }

    async fn set_timer_last_fired(
        &self,
        task: &str,
        timer: &str,
        t: DateTime<Utc>,
    ) -> crtask_core::Result<()> {
        let (task, timer, t) = (
            task.to_string(),
            timer.to_string(),
            crtask_core::domain::time::rfc3339(t),
        );
        self.with(move |c| {
            c.execute(
                "INSERT INTO timer_state (task, timer, last_fired) VALUES (?1, ?2, ?3)
                 ON CONFLICT (task, timer) DO UPDATE SET last_fired = excluded.last_fired",
                params![task, timer, t],
            )?;
            Ok(())
        })
        .await
    }

    async fn prune_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> crtask_core::Result<crtask_core::run::retention::Pruned> {
        self.with(move |c| crate::retention::prune_sqlite(c, cutoff))
            .await
    }

    async fn ping(&self) -> crtask_core::Result<()> {
        self.with(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        })
        .await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> crtask_core::Result<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        let (now, until) = (now.timestamp_millis(), until.timestamp_millis());
        self.with(move |c| {
            // One statement: taken when free, expired, or already ours.
            let changed = c.execute(
                "INSERT INTO leases (name, holder, until_ms) VALUES (?1, ?2, ?4)
                 ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
                 WHERE leases.until_ms <= ?3 OR leases.holder = excluded.holder",
                params![name, holder, now, until],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> crtask_core::Result<()> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.with(move |c| {
            c.execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;
    use crtask_testkit::RunBuilder;

    fn run(id: String, key: &str) -> Run {
        RunBuilder::new(&id)
            .task(Some("t"))
            .dedupe(Some(key))
            .build()
    }

    #[tokio::test]
    async fn batched_ids_are_contiguous_and_batched_inserts_dedupe() {
        let s = SqliteStore::in_memory().unwrap();
        assert_eq!(s.next_run_id().await.unwrap(), "ca1");
        let ids = s.next_run_ids(3).await.unwrap();
        assert_eq!(ids, ["ca2", "ca3", "ca4"]);
        assert_eq!(s.next_run_id().await.unwrap(), "ca5");
        let runs = vec![
            run(ids[0].clone(), "a"),
            run(ids[1].clone(), "b"),
            run(ids[2].clone(), "a"),
        ];
        let out = s.insert_runs_deduped(&runs).await.unwrap();
        assert!(out[0].is_none() && out[1].is_none());
        assert_eq!(
            out[2].as_ref().map(|r| r.run_id.as_str()),
            Some("ca2"),
            "same key within one batch"
        );
        assert!(s.get_run("ca4").await.unwrap().is_none());
        let again = s
            .insert_runs_deduped(&[run("ca9".into(), "b")])
            .await
            .unwrap();
        assert_eq!(again[0].as_ref().map(|r| r.run_id.as_str()), Some("ca3"));
    }
}

#[cfg(test)]
mod lease_tests {
    use super::*;
    use chrono::TimeZone;

    /// Two stores on one file stand for two processes: a lease one holds is
    /// refused to the other until it is released or expires.
    #[tokio::test]
    async fn a_lease_is_held_across_connections_until_released_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crtask.db");
        let (a, b) = (
            SqliteStore::open(&path).unwrap(),
            SqliteStore::open(&path).unwrap(),
        );
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let until = t0 + chrono::Duration::seconds(30);
        assert!(a.try_lease("decide", "a", t0, until).await.unwrap());
        assert!(!b.try_lease("decide", "b", t0, until).await.unwrap());
        // The holder may take it again (renew); another name is free.
        assert!(a.try_lease("decide", "a", t0, until).await.unwrap());
        assert!(b.try_lease("other", "b", t0, until).await.unwrap());
        // Only the holder releases it.
        b.release_lease("decide", "b").await.unwrap();
        assert!(!b.try_lease("decide", "b", t0, until).await.unwrap());
        a.release_lease("decide", "a").await.unwrap();
        assert!(b.try_lease("decide", "b", t0, until).await.unwrap());
        // A holder that never gives it back loses it when it expires.
        assert!(!a
            .try_lease("decide", "a", until - chrono::Duration::seconds(1), until)
            .await
            .unwrap());
        assert!(a
            .try_lease("decide", "a", until, until + chrono::Duration::seconds(30))
            .await
            .unwrap());
    }
}
