//! WAL checkpoints off the intake's commit path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold (1,000 pages): that commit copies the WAL into the database
//! and fsyncs it before it returns, and every delivery of its batch (and of
//! the batch waiting behind it) waits for that. The intake writer's
//! connection therefore turns it off, and this thread, on a connection of
//! its own, runs a `PASSIVE` checkpoint (it never blocks the writer or the
//! readers) when the writer pokes it after a commit, at most once every
//! [`INTERVAL`]. Durability does not depend on it: a commit is durable once
//! its WAL frames are synced; checkpoints only keep the WAL short.

use rusqlite::Connection;
use std::sync::mpsc;
use std::time::Duration;

/// Shortest time between two checkpoints (the WAL holds about this much
/// of the intake's writes at most, while the thread keeps up).
const INTERVAL: Duration = Duration::from_millis(200);

/// The writer's handle: pokes the checkpoint thread after a commit.
pub(super) struct Checkpointer {
    tx: mpsc::SyncSender<()>,
}

impl Checkpointer {
    /// Starts the thread on `conn` (a connection of its own to the same file).
    pub(super) fn start(conn: Connection) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("crtask-checkpoint".into())
            .spawn(move || checkpoint_loop(&conn, &rx))?;
        Ok(Checkpointer { tx })
    }

    /// Asks for a checkpoint; never waits (pokes while one is pending merge).
    pub(super) fn poke(&self) {
        let _ = self.tx.try_send(());
    }
}

fn checkpoint_loop(conn: &Connection, rx: &mpsc::Receiver<()>) {
    while rx.recv().is_ok() {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries");
        }
        std::thread::sleep(INTERVAL);
    }
}
