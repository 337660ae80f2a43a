//! Retention on the local platform: the SQLite side of
//! [`crtask_core::run::retention`], the run logs, and the periodic pruner of
//! `crtask serve` (`--retention-days`).
//!
//! The database uses incremental auto-vacuum: after each prune the freed
//! pages go back to the file system (`PRAGMA incremental_vacuum`), so the
//! file shrinks with what was deleted instead of only ever growing. A
//! database created before this switches over once, at open, with one
//! `VACUUM`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crtask_core::domain::time::rfc3339;
use crtask_core::ports::{Clock, Store};
use crtask_core::run::retention::{self, Pruned, Retention};
use crtask_executor::logs::LogDir;
use rusqlite::{params, Connection};
use tokio::task::JoinHandle;

use crate::store::SqliteStore;
use crate::Result;

/// How often `crtask serve` prunes.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// `auto_vacuum` value of SQLite's INCREMENTAL mode.
const AUTO_VACUUM_INCREMENTAL: i64 = 2;

/// Sets incremental auto-vacuum on a database, converting an existing one
/// (a `VACUUM`, once) when it was created without. Call before any
/// transaction is open.
pub fn enable_incremental_vacuum(c: &Connection) -> Result<()> {
    let mode: i64 = c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode != AUTO_VACUUM_INCREMENTAL {
        c.pragma_update(None, "auto_vacuum", AUTO_VACUUM_INCREMENTAL)?;
        // Only a VACUUM changes the mode of a database that has tables.
        c.execute_batch("VACUUM")?;
    }
    Ok(())
}

/// The SQLite implementation of [`Store::prune_before`]: one transaction,
/// then the freed pages are returned to the file system.
pub(crate) fn prune_sqlite(c: &mut Connection, cutoff: DateTime<Utc>) -> Result<Pruned> {
    let cutoff = rfc3339(cutoff);
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Timestamps are stored as fixed-width RFC 3339 UTC (milliseconds, `Z`),
    // so text order is time order.
    let events = tx.execute(
        "DELETE FROM events WHERE json_extract(body, '$.receivedAt') < ?1",
        params![cutoff],
    )? as u64;
    let doomed: Vec<(i64, String)> = {
        let mut st = tx.prepare(
            "SELECT seq, run_id FROM runs
             WHERE status IN ('Succeeded', 'Failed', 'Canceled', 'Error', 'Timeout')
               AND json_extract(body, '$.finishTime') < ?1
               AND (task IS NULL OR seq < (SELECT MAX(r.seq) FROM runs r WHERE r.task = runs.task))
             ORDER BY seq",
        )?;
        let rows = st
            .query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        rows
    };
    {
        let mut del = tx.prepare("DELETE FROM runs WHERE seq = ?1")?;
        for (seq, _) in &doomed {
            del.execute([seq])?;
        }
    }
    let runs = doomed.into_iter().map(|(_, id)| id).collect();
    tx.commit()?;
    incremental_vacuum(c)?;
    Ok(Pruned { events, runs })
}

/// Gives every free page back to the file system. The pragma frees one page
/// per step, so it is stepped to the end.
fn incremental_vacuum(c: &Connection) -> Result<()> {
    let mut st = c.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = st.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

/// Prunes the store as of the clock's now and deletes the pruned runs' log
/// files.
pub async fn prune_once(
    store: &dyn Store,
    clock: &dyn Clock,
    logs: &LogDir,
    retention: Retention,
) -> crtask_core::Result<Pruned> {
    let pruned = retention::prune(store, clock, retention).await?;
    for run in &pruned.runs {
        let _ = tokio::fs::remove_file(logs.path(run)).await;
    }
    Ok(pruned)
}

/// The periodic pruner of `crtask serve`: once at start-up, then every
/// `interval`. Does not start when retention is disabled.
pub fn start(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    logs: LogDir,
    retention: Retention,
    interval: Duration,
) -> Option<JoinHandle<()>> {
    if !retention.enabled() {
        tracing::info!("retention disabled: events and runs are kept forever");
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            match prune_once(store.as_ref(), clock.as_ref(), &logs, retention).await {
                Ok(p) if p.events > 0 || !p.runs.is_empty() => tracing::info!(
                    events = p.events,
                    runs = p.runs.len(),
                    "retention: pruned old events and runs"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "retention: prune failed; trying again later")
                }
            }
            tokio::time::sleep(interval).await;
        }
    }))
}

impl SqliteStore {
    /// Size of the database file in pages and how many of them are free
    /// (what an incremental vacuum can give back).
    pub fn page_counts(&self) -> crtask_core::Result<(u64, u64)> {
        self.with_sync(|c| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            Ok((pages as u64, free as u64))
        })
    }
}
