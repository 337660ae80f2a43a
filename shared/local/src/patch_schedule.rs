//! Continuous patching on the local platform. The configuration and its
//! schedule live in `DATA_DIR/continuous-patch.json` (written whole, then
//! renamed into place); a task wakes each minute and runs core's
//! [`crtask_core::patch::continuous::tick`], which decides everything and
//! records handled occurrences in the store.

use crate::worker::RunEvents;
use crtask_core::patch::continuous::{tick, PatchSchedule};
use crtask_core::patch::execute::TagLister;
use crtask_core::ports::{Builder, Clock, Store};
use crtask_core::{Error as CoreError, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Where the configuration is kept.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("continuous-patch.json")
}

/// The stored configuration, if any.
pub fn load(data_dir: &Path) -> Result<Option<PatchSchedule>> {
    match std::fs::read(path(data_dir)) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| CoreError::Store(format!("{} is damaged: {e}", path(data_dir).display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CoreError::Store(format!(
            "cannot read {}: {e}",
            path(data_dir).display()
        ))),
    }
}

/// Stores the configuration, replacing any.
pub fn save(data_dir: &Path, s: &PatchSchedule) -> Result<()> {
    let tmp = data_dir.join("continuous-patch.json.part");
    let text = serde_json::to_vec_pretty(s).map_err(|e| CoreError::Store(e.to_string()))?;
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path(data_dir)))
        .map_err(|e| CoreError::Store(format!("cannot write the patch configuration: {e}")))
}

/// Removes the configuration; `false` when there was none.
pub fn delete(data_dir: &Path) -> Result<bool> {
    match std::fs::remove_file(path(data_dir)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CoreError::Store(format!(
            "cannot remove the patch configuration: {e}"
        ))),
    }
}

/// What the schedule's task needs.
pub struct PatchScheduler {
    pub store: Arc<dyn Store>,
    pub builder: Arc<dyn Builder>,
    pub clock: Arc<dyn Clock>,
    pub tags: Arc<dyn TagLister>,
    pub registry: String,
    pub data_dir: PathBuf,
    pub events: Arc<RunEvents>,
}

impl PatchScheduler {
    /// One check: queue the runs of a due occurrence.
    pub async fn tick_once(&self) -> Result<usize> {
        let Some(schedule) = load(&self.data_dir)? else {
            return Ok(0);
        };
        let runs = tick(
            self.store.as_ref(),
            self.builder.as_ref(),
            self.clock.as_ref(),
            self.tags.as_ref(),
            &self.registry,
            &schedule,
        )
        .await?;
        if !runs.is_empty() {
            tracing::info!(runs = runs.len(), "continuous patching: queued patch runs");
            self.events.changed();
        }
        Ok(runs.len())
    }

    /// Checks now and after each minute boundary until aborted.
    pub fn start(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.tick_once().await {
                    tracing::error!("continuous patching: {e} (trying again next minute)");
                }
                tokio::time::sleep(crate::scheduler::until_next_minute(self.clock.now())).await;
            }
        })
    }
}
