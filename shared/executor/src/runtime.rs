//! The OCI runtime that a build's `RUN` instructions and `cmd` steps run
//! under.
//!
//! Why: with `--isolation chroot`, buildah 1.28's `buildah-chroot-runtime`
//! process relays a container's stdout and stderr in a goroutine and calls
//! `os.Exit` as soon as the container has been waited for, without waiting
//! for that goroutine (see [`crate::stdio`]). `cmd` steps avoid the relay
//! with FIFOs of their own, but a `RUN` of `buildah bud` cannot be wrapped
//! that way without changing the image being built (its history, hence its
//! layer-cache keys). With `--isolation oci`, buildah's relay
//! (`runUsingRuntime`) waits for its copying goroutine to flush before it
//! returns, and the goroutine drains a pipe completely once the container
//! has closed it. Measured with 6 parallel `buildah bud`s of 15 `RUN`s each
//! at load 17-24 on 2 cores: chroot lost all output of 1 of 180 `RUN`s,
//! `oci` with runc none of 180; with `RUN`s that print 3000 lines in one
//! burst just before they exit (4 parallel builds, load 30-40), chroot lost
//! all output of 2 of 40 `RUN`s, `oci` none of 40.
//!
//! runc, not crun: crun 1.8 refuses hybrid cgroup hierarchies ("cgroups in
//! hybrid mode not supported"), which runc handles; and buildah picks crun
//! by default when both are installed, so the runtime is always named.
//! `--network host` keeps the network `RUN`s had with chroot isolation (the
//! host's), without a CNI set-up per `RUN`.
//!
//! `cmd` steps run under the same runtime: their output does not need the
//! relay (they write to FIFOs of their own, see [`crate::stdio`]), but a
//! `buildah run` under runc costs about a third less than under chroot
//! isolation (0.37-0.54 s against 0.47-0.88 s for `true`, 10 each, on 2
//! loaded cores), which is most of a short step's overhead, and the step
//! gets the pid, mount, IPC and UTS namespaces an ACR step's `docker run`
//! gives it.
//!
//! A container started by runc is in a session of its own, so killing
//! buildah's process group (a cancelled run) does not reach it. runc keeps
//! its state under the run's store: builds' in [`state_root`], each `cmd`
//! step's in a directory of its own ([`step_state`]), so that a step that
//! times out or is cancelled has its container killed at once; when the run
//! ends (or a restarted server clears the stores of runs that died with it)
//! every container still listed anywhere is killed and deleted
//! ([`delete_all_leftovers`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// The `--build-runtime` value that keeps buildah's own isolation for
/// `RUN` (may lose output).
pub const NONE: &str = "none";

/// The runtime to use: `setting` when given (`none`: no runtime), else
/// runc when it is installed.
pub fn resolve(setting: Option<&str>) -> Option<PathBuf> {
    match setting.map(str::trim) {
        Some(NONE) => None,
        Some(s) if !s.is_empty() => Some(PathBuf::from(s)),
        _ => find_on_path("runc"),
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Where runc keeps the state of the containers of one store.
pub fn state_root(runroot: &Path) -> PathBuf {
    runroot.join("runc")
}

/// What a `cmd` step's container gets on top of buildah's default
/// capabilities (containers.conf): together, Docker's default set, which an
/// ACR step's `docker run` has.
pub const STEP_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_MKNOD", "CAP_NET_RAW"];

/// Where runc keeps the state of one `cmd` step's container (`name`: the
/// step's container name, reduced to a safe file name).
pub fn step_state(runroot: &Path, name: &str) -> PathBuf {
    runroot
        .join("runc-steps")
        .join(crate::isolation::store_name(name))
}

/// The isolation options of `buildah bud` and `buildah run`: the server's
/// `isolation`, or, with a runtime, `oci` under that runtime with its state
/// in `state` (host network as with chroot).
pub fn isolation_args(isolation: &str, runtime: Option<&Path>, state: &Path) -> Vec<String> {
    let Some(rt) = runtime else {
        return vec!["--isolation".into(), isolation.into()];
    };
    let mut a = vec![
        "--isolation".into(),
        "oci".into(),
        "--runtime".into(),
        rt.display().to_string(),
        "--runtime-flag".into(),
        format!("root={}", state.display()),
    ];
    if isolation == "chroot" {
        a.extend(["--network".into(), "host".into()]);
    }
    a
}

/// Kills and deletes every container runc still lists under `state` (left
/// by a cancelled build or a server that died), then removes the directory.
pub async fn delete_leftovers(runtime: &Path, state: &Path) {
    let Ok(entries) = std::fs::read_dir(state) else {
        return;
    };
    for e in entries.flatten() {
        let id = e.file_name();
        let mut c = Command::new(runtime);
        c.arg("--root")
            .arg(state)
            .args(["delete", "--force"])
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = tokio::time::timeout(Duration::from_secs(30), c.status()).await;
    }
    let _ = std::fs::remove_dir_all(state);
}

/// [`delete_leftovers`] for the builds' state and every step's of the store
/// whose runroot is `runroot`.
pub async fn delete_all_leftovers(runtime: &Path, runroot: &Path) {
    delete_leftovers(runtime, &state_root(runroot)).await;
    let steps = runroot.join("runc-steps");
    if let Ok(entries) = std::fs::read_dir(&steps) {
        for e in entries.flatten() {
            delete_leftovers(runtime, &e.path()).await;
        }
    }
    let _ = std::fs::remove_dir(&steps);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_keeps_buildahs_isolation_and_a_name_is_kept_as_given() {
        assert_eq!(resolve(Some("none")), None);
        assert_eq!(resolve(Some("/opt/runc")), Some(PathBuf::from("/opt/runc")));
        let state = Path::new("/s/runroot/runc");
        assert_eq!(
            isolation_args("chroot", None, state),
            ["--isolation", "chroot"]
        );
        assert_eq!(
            isolation_args("chroot", Some(Path::new("/usr/sbin/runc")), state),
            [
                "--isolation",
                "oci",
                "--runtime",
                "/usr/sbin/runc",
                "--runtime-flag",
                "root=/s/runroot/runc",
                "--network",
                "host"
            ]
        );
        // The server asked for oci itself: its networking stays buildah's.
        assert!(
            !isolation_args("oci", Some(Path::new("runc")), state).contains(&"host".to_string())
        );
    }

    #[test]
    fn runc_is_found_when_installed() {
        // setup.sh installs runc.
        let rt = resolve(None).expect("runc is not installed");
        assert!(rt.ends_with("runc") && is_executable(&rt), "{rt:?}");
        assert!(!is_executable(Path::new("/etc/passwd")));
        assert!(!is_executable(Path::new("/nonexistent")));
    }

    #[tokio::test]
    async fn leftovers_of_a_missing_state_directory_are_nothing_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("runc");
        delete_leftovers(Path::new("/nonexistent/runc"), &state).await;
        std::fs::create_dir(&state).unwrap();
        std::fs::create_dir(state.join("gone")).unwrap();
        // The runtime cannot run: the directory still goes.
        delete_leftovers(Path::new("/nonexistent/runc"), &state).await;
        assert!(!state.exists());
    }
}
