//! One `buildah bud --cache-to REPO` at a time per cache repository in this
//! process.
//!
//! Why: builds that push the same cache layers to one repository at the
//! same time race in the registry. One of them is then told "digest
//! invalid" or "manifest blob unknown", and buildah fails that build
//! (exit 125). This was seen with 4 parallel runs of one task file on the
//! local server. Builds writing other repositories are not held, nor are
//! builds that only read the cache. Builds in other processes are not
//! covered either (two servers on one registry, or parallel CodeBuild
//! builds): docs/CACHE.md says so.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

static LOCKS: LazyLock<Mutex<HashMap<String, Arc<AsyncMutex<()>>>>> = LazyLock::new(Mutex::default);

fn lock_of(repo: &str) -> Arc<AsyncMutex<()>> {
    LOCKS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(repo.to_string())
        .or_default()
        .clone()
}

/// Holds `repo`'s lock. If another build holds it, `waiting` is called
/// once before this one waits.
pub async fn hold(repo: &str, waiting: impl FnOnce()) -> OwnedMutexGuard<()> {
    let lock = lock_of(repo);
    match lock.clone().try_lock_owned() {
        Ok(g) => g,
        Err(_) => {
            waiting();
            lock.lock_owned().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_repository() {
        let a = hold("reg/app/cache", || panic!("free: no wait")).await;
        // Another repository is not held.
        let _b = hold("reg/other/cache", || panic!("free: no wait")).await;
        let waited = std::sync::atomic::AtomicBool::new(false);
        let second = tokio::spawn(async move {
            let _g = hold("reg/app/cache", || {}).await;
        });
        // The second holder waits until the first lets go.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!second.is_finished());
        drop(a);
        second.await.unwrap();
        let _c = hold("reg/app/cache", || {
            waited.store(true, std::sync::atomic::Ordering::SeqCst)
        })
        .await;
        assert!(!waited.load(std::sync::atomic::Ordering::SeqCst));
    }
}
