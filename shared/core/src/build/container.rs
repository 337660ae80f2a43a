//! What the container of a `cmd` step gets besides its image and
//! arguments, as ACR's `docker run` line gives it: `HOME=/acb/home` on a
//! home volume shared by the run's steps, the working directory (created
//! when missing) and the step's environment.

use super::taskfile::{Step, WORKSPACE};
use std::path::{Component, Path, PathBuf};

/// The home directory of every `cmd` container (ACR's `homeWorkDir`).
pub const HOME_DIR: &str = "/acb/home";

/// The container's environment: `HOME=/acb/home`, then the step's own
/// variables. As in ACR the step's variables come after the default, so a
/// step that sets `HOME` keeps its own (it is then the only `HOME`).
pub fn env(step: &Step) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(step.env.len() + 1);
    if !step.env.iter().any(|(k, _)| k == "HOME") {
        out.push(("HOME".to_string(), HOME_DIR.to_string()));
    }
    out.extend(step.env.iter().cloned());
    out
}

/// The container's working directory: the step's (already absolute),
/// `/workspace` by default, none with `disableWorkingDirectoryOverride`.
pub fn workdir(step: &Step) -> Option<String> {
    if step.disable_working_directory_override {
        return None;
    }
    Some(
        step.working_directory
            .clone()
            .unwrap_or_else(|| WORKSPACE.to_string()),
    )
}

/// The host directory behind `workdir` when it lies inside one of the bind
/// `mounts` (host directory, container path); the deepest mount wins.
/// `None` when no mount holds it (the engine creates it in the image's
/// filesystem) or when it would climb out of its mount.
pub fn host_dir(workdir: &str, mounts: &[(PathBuf, String)]) -> Option<PathBuf> {
    let wd = Path::new(workdir);
    let (host, rel) = mounts
        .iter()
        .filter_map(|(host, inside)| {
            let rel = wd.strip_prefix(Path::new(inside)).ok()?;
            Some((host, rel, Path::new(inside).components().count()))
        })
        .max_by_key(|(_, _, depth)| *depth)
        .map(|(h, r, _)| (h, r))?;
    let mut out = host.clone();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            // `..` or anything else: do not guess, let the engine decide.
            _ => return None,
        }
    }
    Some(out)
}

/// Creates a missing working directory that lies inside a bind mount (the
/// workspace, the home volume, a secret volume): Docker creates a missing
/// working directory itself, buildah only outside bind mounts.
pub fn ensure_workdir(workdir: &str, mounts: &[(PathBuf, String)]) -> std::io::Result<()> {
    match host_dir(workdir, mounts) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::taskfile::{load, ParseOptions};
    use crate::template::RunVars;

    fn step(yaml: &str) -> Step {
        let tf = load(
            yaml,
            &RunVars::default(),
            &Default::default(),
            &ParseOptions::default(),
        )
        .unwrap();
        tf.steps.into_iter().next().unwrap()
    }

    #[test]
    fn home_comes_first_and_a_step_can_replace_it() {
        let s = step("steps:\n  - cmd: x\n    env: [A=1]\n");
        assert_eq!(
            env(&s),
            [
                ("HOME".to_string(), HOME_DIR.to_string()),
                ("A".to_string(), "1".to_string())
            ]
        );
        let s = step("steps:\n  - cmd: x\n    env: [HOME=/mine]\n");
        assert_eq!(env(&s), [("HOME".to_string(), "/mine".to_string())]);
    }

    #[test]
    fn working_directory_defaults_and_override() {
        assert_eq!(
            workdir(&step("steps:\n  - cmd: x\n")).as_deref(),
            Some("/workspace")
        );
        assert_eq!(
            workdir(&step("steps:\n  - cmd: x\n    workingDirectory: a/b\n")).as_deref(),
            Some("/workspace/a/b")
        );
        assert_eq!(
            workdir(&step(
                "steps:\n  - cmd: x\n    workingDirectory: /src\n    disableWorkingDirectoryOverride: true\n"
            )),
            None
        );
    }

    #[test]
    fn host_dir_of_a_working_directory_in_a_mount() {
        let mounts = vec![
            (PathBuf::from("/h/ws"), "/workspace".to_string()),
            (PathBuf::from("/h/home"), HOME_DIR.to_string()),
            (PathBuf::from("/h/vol"), "/workspace/secrets".to_string()),
        ];
        assert_eq!(
            host_dir("/workspace/a/b", &mounts),
            Some(PathBuf::from("/h/ws/a/b"))
        );
        assert_eq!(
            host_dir("/workspace", &mounts),
            Some(PathBuf::from("/h/ws"))
        );
        assert_eq!(
            host_dir("/acb/home/x", &mounts),
            Some(PathBuf::from("/h/home/x"))
        );
        // The deepest mount holds it.
        assert_eq!(
            host_dir("/workspace/secrets/d", &mounts),
            Some(PathBuf::from("/h/vol/d"))
        );
        // Outside every mount: the engine's business.
        assert_eq!(host_dir("/src", &mounts), None);
        assert_eq!(host_dir("/workspacex", &mounts), None);
        // Never climbs out of a mount.
        assert_eq!(host_dir("/workspace/../etc", &mounts), None);
    }

    #[test]
    fn ensure_workdir_creates_it_on_the_host() {
        let tmp = tempfile::tempdir().unwrap();
        let mounts = vec![(tmp.path().to_path_buf(), "/workspace".to_string())];
        ensure_workdir("/workspace/new/deeper", &mounts).unwrap();
        assert!(tmp.path().join("new/deeper").is_dir());
        ensure_workdir("/elsewhere", &mounts).unwrap();
        assert!(!tmp.path().join("elsewhere").exists());
    }
}
