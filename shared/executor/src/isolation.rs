//! Isolated runs: every run of `crtask serve` gets an image store of its
//! own, as ACR starts every run on a fresh agent.
//!
//! The store (`<storage>/runs/<run-id>/{root,runroot}`) holds what the run
//! pulls, the images its steps build and its containers; other runs,
//! earlier or concurrent, never see them, and "Successfully tagged" lists
//! only the run's own tags. When the run ends, whether it succeeded,
//! failed, timed out or was cancelled, every container in it is removed
//! (`keep: true` ones included) and the store is deleted. Stores left by a
//! server that died are deleted when it starts again.
//!
//! Chosen over run-scoped tags in one shared store because a shared store
//! lets concurrent runs see each other's tags while they run, and every
//! image reference (FROM lines, `cmd` images, push) would need rewriting.
//! containers/storage reads additional read-only image stores (`buildah
//! --storage-opt vfs.imagestore=<root>`; checked with buildah 1.28, a run
//! store then lists the other store's images): the images of `cmd` steps
//! are pulled into one such store shared by runs ([`crate::pull_cache`]),
//! without runs seeing each other's builds. The layer cache is kept in a registry instead
//! (`crtask_core::build::cache`): it works the same on the CodeBuild
//! builder, whose store is gone after every build, and its entries are named
//! by content keys, never by tags a run chose.

use std::path::{Path, PathBuf};

/// The directory holding the stores of runs in progress.
pub fn runs_dir(root: &Path) -> PathBuf {
    root.with_file_name("runs")
}

/// A run id as a directory name: only `[A-Za-z0-9_-]` survive, anything
/// else becomes `_`, so no id can leave [`runs_dir`].
pub fn store_name(run: &str) -> String {
    let name: String = run
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "_".into()
    } else {
        name
    }
}

/// `(root, runroot)` of the store of `run`.
pub fn run_store(root: &Path, run: &str) -> (PathBuf, PathBuf) {
    let dir = runs_dir(root).join(store_name(run));
    (dir.join("root"), dir.join("runroot"))
}

/// Deletes a run's store directory (its containers were removed first).
pub async fn delete_store(root: &Path) {
    if let Some(dir) = root.parent().map(Path::to_path_buf) {
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    }
}

/// True when something is mounted at or below `dir` (a container mounted
/// with `buildah mount`): its store must then go through `buildah rm`.
pub fn has_mounts_below(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    // Field 5 is the mount point; spaces in it are escaped as \040.
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| Path::new(&m.replace("\\040", " ")).starts_with(dir))
}

/// Deletes every run store under `root`'s `runs` directory: at server
/// start no run is in progress, so whatever is there was left by a crash.
pub fn delete_stale_stores(root: &Path) -> std::io::Result<usize> {
    let dir = runs_dir(root);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(0);
    };
    let mut n = 0;
    for e in entries.flatten() {
        std::fs::remove_dir_all(e.path())?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_store_never_leaves_the_runs_directory() {
        let root = Path::new("/data/storage/root");
        let (r, rr) = run_store(root, "ca1");
        assert_eq!(r, Path::new("/data/storage/runs/ca1/root"));
        assert_eq!(rr, Path::new("/data/storage/runs/ca1/runroot"));
        for hostile in ["../../etc", "/", "", "a/b", "..", "ca\n1"] {
            let (r, _) = run_store(root, hostile);
            let name = r.parent().unwrap().file_name().unwrap().to_str().unwrap();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{hostile:?} -> {name:?}"
            );
            assert_eq!(r.parent().unwrap().parent().unwrap(), runs_dir(root));
        }
    }

    #[test]
    fn mounts_below_a_directory_are_seen() {
        assert!(has_mounts_below(Path::new("/proc")));
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_mounts_below(dir.path()));
    }

    #[test]
    fn stale_stores_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        assert_eq!(delete_stale_stores(&root).unwrap(), 0);
        let (r, _) = run_store(&root, "ca9");
        std::fs::create_dir_all(r.join("vfs")).unwrap();
        assert_eq!(delete_stale_stores(&root).unwrap(), 1);
        assert!(!r.exists());
    }
}
