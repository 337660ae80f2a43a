//! Helpers of the context tests: sample trees, snapshots, hostile archives.

use super::limits::PackStats;
use super::pack::pack_dir;
use crate::Result;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};

/// What a tree holds: path -> description ("file <mode> <content>",
/// "link <target>", "dir").
pub(super) fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = path
                .strip_prefix(root)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                out.insert(rel, format!("link {target}"));
            } else if meta.is_dir() {
                out.insert(rel, "dir".to_string());
                walk(root, &path, out);
            } else {
                let content = fs::read_to_string(&path).unwrap_or_default();
                out.insert(rel, format!("file {:o} {content}", meta.mode() & 0o777));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

pub(super) fn tmp() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    }
}

pub(super) fn write(root: &Path, rel: &str, content: &str, mode: u32) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).ok();
    }
    fs::write(&path, content).ok();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).ok();
}

/// A source tree exercising ignores, exceptions, links, modes.
pub(super) fn sample_tree(root: &Path) {
    write(
        root,
        ".dockerignore",
        "# build context rules\n*.md\n!README.md\nbuild\n!build/keep.txt\nsecret/\nDockerfile\n",
        0o644,
    );
    write(root, "Dockerfile", "FROM scratch\n", 0o644);
    write(root, "README.md", "readme", 0o644);
    write(root, "notes.md", "notes", 0o644);
    write(root, "src/main.rs", "fn main() {}", 0o644);
    write(
        root,
        "src/lib.md",
        "nested md is not matched by *.md",
        0o644,
    );
    write(root, "build/out.o", "object", 0o644);
    write(root, "build/keep.txt", "keep", 0o600);
    write(root, "secret/key", "hunter2", 0o600);
    write(root, "run.sh", "#!/bin/sh\n", 0o755);
    fs::create_dir_all(root.join("empty")).ok();
    symlink("src/main.rs", root.join("link")).ok();
}

pub(super) fn pack(
    dir: &Path,
    dockerfile: Option<&str>,
    limit: u64,
) -> Result<(Vec<u8>, PackStats, Vec<u64>)> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let stats = pack_dir(dir, dockerfile, limit, &mut out, &mut |n| seen.push(n))?;
    Ok((out, stats, seen))
}

pub(super) fn expected_sample() -> BTreeMap<String, String> {
    [
        (".dockerignore", "file 644 # build context rules\n*.md\n!README.md\nbuild\n!build/keep.txt\nsecret/\nDockerfile\n"),
        ("Dockerfile", "file 644 FROM scratch\n"),
        ("README.md", "file 644 readme"),
        ("build", "dir"),
        ("build/keep.txt", "file 600 keep"),
        ("empty", "dir"),
        ("link", "link src/main.rs"),
        ("run.sh", "file 755 #!/bin/sh\n"),
        ("src", "dir"),
        ("src/lib.md", "file 644 nested md is not matched by *.md"),
        ("src/main.rs", "file 644 fn main() {}"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// One raw entry: (type, name bytes, link name bytes, mode, content).
pub(super) type Raw<'a> = (EntryType, &'a [u8], &'a [u8], u32, &'a [u8]);

/// Builds a tar.gz with names written straight into the header, so
/// nothing sanitises them.
pub(super) fn hostile(entries: &[Raw<'_>]) -> Vec<u8> {
    let gz = GzEncoder::new(Vec::new(), Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (kind, name, link, mode, data) in entries {
        let mut h = Header::new_old();
        {
            let old = h.as_old_mut();
            for (dst, src) in old.name.iter_mut().zip(name.iter()) {
                *dst = *src;
            }
            for (dst, src) in old.linkname.iter_mut().zip(link.iter()) {
                *dst = *src;
            }
        }
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        if let Err(e) = b.append(&h, *data) {
            panic!("append: {e}");
        }
    }
    b.into_inner()
        .and_then(|gz| gz.finish())
        .unwrap_or_default()
}

/// A sandbox: `root/dest` is the destination; nothing else may appear
/// in `root` after an unpack.
pub(super) struct Sandbox {
    pub(super) root: tempfile::TempDir,
}

impl Sandbox {
    pub(super) fn new() -> Sandbox {
        let root = tmp();
        fs::create_dir(root.path().join("dest")).ok();
        Sandbox { root }
    }
    pub(super) fn dest(&self) -> PathBuf {
        self.root.path().join("dest")
    }
    pub(super) fn outside(&self) -> Vec<String> {
        snapshot(self.root.path())
            .into_keys()
            .filter(|k| k != "dest" && !k.starts_with("dest/"))
            .collect()
    }
}
