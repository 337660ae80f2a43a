//! The checks that keep an extracted archive inside its destination: no
//! absolute paths, no `..`, nothing under a symlink, no link that leads
//! outside (alone or combined with others).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Symlink hops followed when checking where a link leads (Linux's own limit).
const MAX_HOPS: usize = 40;

/// The normal components of an archive path; absolute paths and `..` are refused.
pub(super) fn relative(path: &Path) -> std::result::Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("its path contains '..'"),
            Component::RootDir | Component::Prefix(_) => return Err("its path is absolute"),
        }
    }
    Ok(out)
}

/// Creates the missing parent directories of `rel`, refusing symlinks and
/// non-directories on the way.
pub(super) fn make_parents(dest: &Path, rel: &Path) -> std::result::Result<(), String> {
    walk_parents(dest, rel, true)
}

/// Like [`make_parents`] but every parent must already exist.
pub(super) fn check_parents(dest: &Path, rel: &Path) -> std::result::Result<(), String> {
    walk_parents(dest, rel, false)
}

fn walk_parents(dest: &Path, rel: &Path, create: bool) -> std::result::Result<(), String> {
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    let mut at = dest.to_path_buf();
    let mut shown = PathBuf::new();
    for comp in parent.components() {
        at.push(comp);
        shown.push(comp);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!("its parent '{}' is a symlink", shown.display()));
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "its parent '{}' is not a directory",
                    shown.display()
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::create_dir(&at)
                    .map_err(|e| format!("cannot create '{}': {e}", shown.display()))?;
            }
            Err(e) => return Err(format!("its parent '{}' is unusable: {e}", shown.display())),
        }
    }
    Ok(())
}

/// Removes a file or symlink about to be replaced; a directory stays and
/// refuses the entry (nothing replaces a directory).
pub(super) fn clear_slot(path: &Path) -> std::result::Result<(), String> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err("a directory of that name was extracted earlier".to_string()),
        Ok(_) => {
            fs::remove_file(path).map_err(|e| format!("cannot replace the earlier entry: {e}"))
        }
        Err(_) => Ok(()),
    }
}

/// Refuses symlink targets that are absolute or climb above the root when
/// read from the link's own directory.
pub(super) fn check_symlink(rel: &Path, to: &Path) -> std::result::Result<(), String> {
    let shown = to.display();
    if to.as_os_str().is_empty() {
        return Err("the symlink has an empty target".to_string());
    }
    let mut depth = rel.parent().map_or(0, |p| p.components().count());
    for comp in to.components() {
        match comp {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return Err(format!(
                        "symlink target '{shown}' points outside the context"
                    ));
                }
                depth -= 1;
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("symlink target '{shown}' is absolute"));
            }
        }
    }
    Ok(())
}

/// One step of a path being resolved.
enum Step {
    Up,
    Name(OsString),
}

fn steps(path: &Path) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    for comp in path.components() {
        match comp {
            Component::Normal(n) => out.push(Step::Name(n.to_os_string())),
            Component::ParentDir => out.push(Step::Up),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether following `rel` (a symlink inside `dest`) through the extracted
/// tree ever steps above `dest`. A chain longer than the kernel follows
/// cannot be followed by anyone, so it is not an escape.
pub(super) fn leads_outside(dest: &Path, rel: &Path) -> bool {
    let Some(start) = steps(rel) else {
        return true;
    };
    let mut todo: VecDeque<Step> = start.into();
    let mut at: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(step) = todo.pop_front() {
        match step {
            Step::Up => {
                if at.pop().is_none() {
                    return true;
                }
            }
            Step::Name(name) => {
                let mut path = dest.to_path_buf();
                path.extend(&at);
                path.push(&name);
                let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
                if !is_link {
                    at.push(name);
                    continue;
                }
                hops += 1;
                if hops > MAX_HOPS {
                    return false;
                }
                let Some(next) = fs::read_link(&path).ok().as_deref().and_then(steps) else {
                    return true;
                };
                for s in next.into_iter().rev() {
                    todo.push_front(s);
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use crate::context::extract::unpack_safe;
    use crate::context::testutil::*;
    use crate::Error;
    use tar::EntryType;

    #[test]
    fn hostile_archives_are_refused() {
        let sb_probe = Sandbox::new();
        let abs_victim = sb_probe.root.path().join("abs-victim");
        let abs_name = abs_victim.display().to_string();
        let abs_dir = sb_probe.root.path().display().to_string();
        let passwd = b"/etc/passwd";
        // (what, entries, text the refusal must contain)
        let cases: Vec<(&str, Vec<Raw<'_>>, &str)> = vec![
            (
                "absolute path",
                vec![(
                    EntryType::Regular,
                    abs_name.as_bytes(),
                    b"",
                    0o644,
                    b"pwned",
                )],
                "absolute",
            ),
            (
                "dot-dot path",
                vec![(EntryType::Regular, b"../evil", b"", 0o644, b"pwned")],
                "'..'",
            ),
            (
                "dot-dot inside",
                vec![(EntryType::Regular, b"a/../../evil", b"", 0o644, b"pwned")],
                "'..'",
            ),
            (
                "symlink out then write through it",
                vec![
                    (EntryType::Symlink, b"esc", b"..", 0o777, b""),
                    (EntryType::Regular, b"esc/evil", b"", 0o644, b"pwned"),
                ],
                "outside",
            ),
            (
                "absolute symlink then write through it",
                vec![
                    (EntryType::Symlink, b"esc", abs_dir.as_bytes(), 0o777, b""),
                    (EntryType::Regular, b"esc/evil", b"", 0o644, b"pwned"),
                ],
                "absolute",
            ),
            (
                "write under an inside symlink",
                vec![
                    (EntryType::Directory, b"sub", b"", 0o755, b""),
                    (EntryType::Symlink, b"in", b"sub", 0o777, b""),
                    (EntryType::Regular, b"in/evil", b"", 0o644, b"x"),
                ],
                "is a symlink",
            ),
            (
                "symlinks that combine to escape",
                vec![
                    (EntryType::Directory, b"a", b"", 0o755, b""),
                    (EntryType::Symlink, b"c", b"a/b/..", 0o777, b""),
                    (EntryType::Symlink, b"a/b", b"..", 0o777, b""),
                ],
                "leads outside",
            ),
            (
                "hard link to /etc/passwd",
                vec![(EntryType::Link, b"pw", passwd, 0o644, b"")],
                "absolute",
            ),
            (
                "hard link out",
                vec![(EntryType::Link, b"pw", b"../x", 0o644, b"")],
                "'..'",
            ),
            (
                "hard link to nothing",
                vec![(EntryType::Link, b"pw", b"nope", 0o644, b"")],
                "not a regular file",
            ),
            (
                "fifo",
                vec![(EntryType::Fifo, b"p", b"", 0o644, b"")],
                "fifo",
            ),
            (
                "char device",
                vec![(EntryType::Char, b"null", b"", 0o666, b"")],
                "device",
            ),
            (
                "block device",
                vec![(EntryType::Block, b"sda", b"", 0o660, b"")],
                "device",
            ),
            (
                "file over a directory",
                vec![
                    (EntryType::Directory, b"d", b"", 0o755, b""),
                    (EntryType::Regular, b"d", b"", 0o644, b"x"),
                ],
                "directory",
            ),
        ];
        for (what, entries, needle) in cases {
            let sb = Sandbox::new();
            let archive = hostile(&entries);
            match unpack_safe(archive.as_slice(), &sb.dest(), 1 << 20) {
                Err(Error::Context(msg)) => {
                    assert!(msg.contains(needle), "{what}: {msg}");
                    assert!(msg.contains("refused archive entry '"), "{what}: {msg}");
                }
                other => panic!("{what}: expected a refusal, got {other:?}"),
            }
            assert_eq!(
                sb.outside(),
                Vec::<String>::new(),
                "{what}: wrote outside dest"
            );
        }
        assert!(!abs_victim.exists());
    }
}
