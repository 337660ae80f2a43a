//! Path helpers that keep user-supplied paths inside a root.

use std::path::{Component, Path, PathBuf};

/// Joins `rel` under `root` when it stays inside it, symlinks included.
/// Absolute paths and `..` that would climb out are refused (`None`).
/// A path that does not exist yet is checked lexically.
pub fn resolve_inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    let mut clean = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => clean.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !clean.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    let joined = root.join(&clean);
    match (joined.canonicalize(), root.canonicalize()) {
        (Ok(real), Ok(real_root)) if real.starts_with(&real_root) => Some(joined),
        (Ok(_), Ok(_)) => None,
        _ => Some(joined),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_inside() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/Dockerfile"), "FROM x").unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("out")).unwrap();
        assert!(resolve_inside(d.path(), "a/Dockerfile").is_some());
        assert!(resolve_inside(d.path(), "./a/../a/Dockerfile").is_some());
        assert!(resolve_inside(d.path(), "../x").is_none());
        assert!(resolve_inside(d.path(), "/etc/passwd").is_none());
        assert!(resolve_inside(d.path(), "out/passwd").is_none());
    }
}
