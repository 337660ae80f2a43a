//! Deletes uploaded contexts no run has taken within `--upload-max-age`.
//!
//! A run takes its upload when it starts (the directory moves into the run's
//! work directory, deleted when the run ends), so what stays in the uploads
//! directory is either waiting for a queued run (kept) or was never used: a
//! build never submitted, or a run cancelled before it started.

use crtask_core::domain::model::{ContextSource, RunStatus};
use crtask_core::ports::Store;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the sweeper looks: a quarter of the age, between 1 s and 5 min.
pub fn interval(max_age: Duration) -> Duration {
    (max_age / 4).clamp(Duration::from_secs(1), Duration::from_secs(300))
}

/// Starts the sweeper; it runs until the process ends.
pub fn start(
    store: Arc<dyn Store>,
    uploads: PathBuf,
    max_age: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval(max_age));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match sweep(store.as_ref(), &uploads, max_age).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("deleted {n} uploaded context(s) unused for {max_age:?}"),
                Err(e) => tracing::warn!("cannot sweep uploaded contexts: {e}"),
            }
        }
    })
}

/// Deletes the uploads older than `max_age` that no queued run waits for;
/// gives how many were deleted.
pub async fn sweep(store: &dyn Store, uploads: &Path, max_age: Duration) -> crate::Result<usize> {
    let waiting: HashSet<String> = store
        .runs_in_status(&[RunStatus::Queued])
        .await?
        .into_iter()
        .filter_map(|r| match r.spec.context {
            ContextSource::Uploaded { id } => Some(id),
            _ => None,
        })
        .collect();
    let uploads = uploads.to_path_buf();
    let removed = tokio::task::spawn_blocking(move || -> std::io::Result<usize> {
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in std::fs::read_dir(&uploads)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if waiting.contains(&name) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if age < max_age {
                continue;
            }
            let path = entry.path();
            let gone = if meta.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match gone {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!("cannot delete {}: {e}", path.display()),
            }
        }
        Ok(removed)
    })
    .await
    .map_err(|e| crate::Error::Io(std::io::Error::other(e)))??;
    Ok(removed)
}

/// Marks an upload as just used, so its age counts from now.
pub fn touch(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_follows_the_age_within_bounds() {
        assert_eq!(
            interval(Duration::from_secs(3600)),
            Duration::from_secs(300)
        );
        assert_eq!(interval(Duration::from_secs(8)), Duration::from_secs(2));
        assert_eq!(interval(Duration::from_secs(1)), Duration::from_secs(1));
    }
}
