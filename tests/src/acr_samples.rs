//! Where ACR's published sample task files are, for the tests that read them.
//!
//! The samples live outside the repository. [`acr_samples`] looks at
//! `CRTASK_ACR_SAMPLES` first (when set and not empty it is the only place
//! looked at, so pointing it nowhere means "absent"; a relative path is from
//! the workspace root), then at
//! `../shared/acr-samples` beside the workspace root. When they are absent a
//! test is skipped: it says so by name on stderr and appends its name to the
//! skip log (`CRTASK_SKIP_LOG`, which `infra/test.sh` sets and lists after the
//! run; else [`SKIP_LOG`] under `<target dir>/tmp/`). Under CI (`CI=true`)
//! their absence fails the test instead.
//!
//! Std only: `crtask-core`'s unit tests include this file with `#[path]`
//! (core cannot depend on this crate).

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The environment variable naming the samples' directory.
pub const SAMPLES_VAR: &str = "CRTASK_ACR_SAMPLES";
/// The environment variable naming the file skipped tests' names are appended to.
pub const SKIP_LOG_VAR: &str = "CRTASK_SKIP_LOG";
/// The skip log, under `<target dir>/tmp/`, when [`SKIP_LOG_VAR`] is not set.
pub const SKIP_LOG: &str = "crtask-skipped-tests.log";

/// The directory of ACR's sample task files, or `None` (after saying that
/// `test` was skipped) when they are absent. Panics when they are absent
/// under CI (`CI=true`).
pub fn acr_samples(test: &str) -> Option<PathBuf> {
    let root = workspace_root();
    let looked = match std::env::var_os(SAMPLES_VAR).filter(|v| !v.is_empty()) {
        Some(dir) => root.join(dir),
        None => root
            .parent()
            .unwrap_or(&root)
            .join("shared")
            .join("acr-samples"),
    };
    if looked.is_dir() {
        return Some(looked);
    }
    let message = format!(
        "ACR samples not found (set {SAMPLES_VAR} or place them at ../shared/acr-samples; looked at {})",
        looked.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {message}");
    }
    eprintln!("skipped {test}: {message}");
    note_skip(test);
    None
}

/// The workspace root: the nearest directory above this crate holding `Cargo.lock`.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .unwrap_or(manifest)
        .to_path_buf()
}

/// Appends `test` to the skip log; best effort (a test is not failed for it).
pub fn note_skip(test: &str) {
    let log = match std::env::var_os(SKIP_LOG_VAR).filter(|v| !v.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => match target_dir() {
            Some(target) => target.join("tmp").join(SKIP_LOG),
            None => return,
        },
    };
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
    {
        let _ = writeln!(f, "{test}");
    }
}

/// `CARGO_TARGET_DIR` (a relative one from the workspace root), else the
/// directory above `<profile>/deps/<test-exe>`.
fn target_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        return Some(workspace_root().join(dir));
    }
    let exe = std::env::current_exe().ok()?;
    let deps = exe.ancestors().find(|d| d.ends_with("deps"))?;
    deps.parent()?.parent().map(Path::to_path_buf)
}
