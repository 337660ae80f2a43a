//! Packing a local directory into a tar.gz, honouring its `.dockerignore`.
//!
//! Packing is deterministic: entries are written depth first in byte order
//! of their names, owners are 0/0 without names, modification times are
//! kept, and the gzip header carries no time, so the same tree gives the
//! same bytes. Symlinks are archived as symlinks, never followed. Sockets,
//! fifos and devices in the directory are left out.

use super::limits::PackStats;
use crate::{Error, Result};
use crtask_core::build::dockerignore::DockerIgnore;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};

/// Name of the ignore file at the root of a context.
const IGNORE_FILE: &str = ".dockerignore";

/// Walk `dir` (no following of symlinks: symlinks are archived as symlinks),
/// honour `dir/.dockerignore`, write a tar.gz to `out`.
///
/// The Dockerfile path given (relative to dir, may be None) and
/// `.dockerignore` itself are always included even if ignored (Docker does
/// this). Stops with [`Error::TooLarge`] naming the limit when the
/// uncompressed total of file contents exceeds `limit` bytes.
/// `progress(bytes_so_far)` is called as file data is written. Unreadable
/// files and directories, and an invalid `.dockerignore`, give
/// [`Error::Context`] naming the path.
pub fn pack_dir(
    dir: &Path,
    dockerfile: Option<&str>,
    limit: u64,
    out: impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<PackStats> {
    let gz = GzEncoder::new(
        CountingWriter {
            inner: out,
            count: 0,
        },
        Compression::default(),
    );
    let (stats, gz) = pack_tar(dir, dockerfile, limit, gz, progress)?;
    let mut counted = gz.finish()?;
    counted.flush()?;
    Ok(PackStats {
        compressed: counted.count,
        ..stats
    })
}

/// One directory entry waiting to be visited.
struct Pending {
    abs: PathBuf,
    /// Path inside the archive.
    rel: PathBuf,
    /// `rel` as '/'-separated text, for `.dockerignore` matching.
    key: String,
}

/// Writes the uncompressed tar of `dir` to `w` and gives `w` back.
pub(super) fn pack_tar<W: Write>(
    dir: &Path,
    dockerfile: Option<&str>,
    limit: u64,
    w: W,
    progress: &mut dyn FnMut(u64),
) -> Result<(PackStats, W)> {
    let meta = fs::metadata(dir)
        .map_err(|e| Error::Context(format!("cannot read directory {}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(Error::Context(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let ignore = load_ignore(dir)?;
    let mut always: Vec<String> = vec![IGNORE_FILE.to_string()];
    if let Some(df) = dockerfile.and_then(inside_path) {
        always.push(df);
    }

    let mut builder = tar::Builder::new(w);
    let mut stats = PackStats::default();
    let mut stack = children(dir, Path::new(""), "")?;
    stack.reverse();
    while let Some(item) = stack.pop() {
        let meta = fs::symlink_metadata(&item.abs)
            .map_err(|e| Error::Context(format!("cannot read {}: {e}", item.abs.display())))?;
        let kind = meta.file_type();
        let forced = always.contains(&item.key);
        let excluded = !forced && ignore.is_excluded(&item.key);
        if kind.is_dir() {
            let below = format!("{}/", item.key);
            let descend = !excluded
                || ignore.may_reinclude_under(&item.key)
                || always.iter().any(|a| a.starts_with(&below));
            if !excluded {
                let mut h = header(EntryType::Directory, &meta);
                h.set_mode(meta.mode() & 0o7777);
                builder.append_data(&mut h, &item.rel, io::empty())?;
            }
            if descend {
                let mut kids = children(&item.abs, &item.rel, &item.key)?;
                kids.reverse();
                stack.extend(kids);
            }
            continue;
        }
        if excluded {
            continue;
        }
        if kind.is_file() {
            let size = meta.len();
            let total = stats.bytes.saturating_add(size);
            if total > limit {
                return Err(Error::TooLarge(format!(
                    "context {} holds more than the limit of {limit} bytes (reached at {})",
                    dir.display(),
                    item.key
                )));
            }
            let file = fs::File::open(&item.abs)
                .map_err(|e| Error::Context(format!("cannot read {}: {e}", item.abs.display())))?;
            let mut failure = None;
            let reader = FileReader {
                file: file.take(size),
                name: &item.abs,
                expected: size,
                done: 0,
                base: stats.bytes,
                progress: &mut *progress,
                failure: &mut failure,
            };
            let mut h = header(EntryType::Regular, &meta);
            h.set_size(size);
            h.set_mode(meta.mode() & 0o7777);
            if let Err(e) = builder.append_data(&mut h, &item.rel, reader) {
                return Err(match failure {
                    Some(msg) => Error::Context(msg),
                    None => Error::Io(e),
                });
            }
            stats.files += 1;
            stats.bytes = total;
        } else if kind.is_symlink() {
            let target = fs::read_link(&item.abs).map_err(|e| {
                Error::Context(format!("cannot read symlink {}: {e}", item.abs.display()))
            })?;
            let mut h = header(EntryType::Symlink, &meta);
            h.set_mode(0o777);
            builder.append_link(&mut h, &item.rel, &target)?;
            stats.files += 1;
        }
        // Sockets, fifos and devices are not build input: left out.
    }
    let w = builder.into_inner()?;
    Ok((stats, w))
}

/// A header of the given type with normalised owner and the file's mtime.
fn header(kind: EntryType, meta: &fs::Metadata) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    h
}

/// The entries of a directory, sorted by name.
fn children(abs: &Path, rel: &Path, key: &str) -> Result<Vec<Pending>> {
    let unreadable =
        |e: io::Error| Error::Context(format!("cannot read directory {}: {e}", abs.display()));
    let mut names = Vec::new();
    for entry in fs::read_dir(abs).map_err(unreadable)? {
        names.push(entry.map_err(unreadable)?.file_name());
    }
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| {
            let text = name.to_string_lossy();
            let key = if key.is_empty() {
                text.into_owned()
            } else {
                format!("{key}/{text}")
            };
            Pending {
                abs: abs.join(&name),
                rel: rel.join(&name),
                key,
            }
        })
        .collect())
}

/// Reads and parses `dir/.dockerignore`; none means nothing is ignored.
fn load_ignore(dir: &Path) -> Result<DockerIgnore> {
    let path = dir.join(IGNORE_FILE);
    match fs::read(&path) {
        Ok(bytes) => DockerIgnore::parse(&String::from_utf8_lossy(&bytes))
            .map_err(|e| Error::Context(format!("{}: {e}", dir.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(DockerIgnore::empty()),
        Err(e) => Err(Error::Context(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// A Dockerfile path relative to the context, '/'-joined, or None when it
/// is empty or leads outside.
fn inside_path(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

/// Feeds a file's bytes to the archive, reporting progress and keeping the
/// reason of a read failure so it can name the file.
struct FileReader<'a> {
    file: io::Take<fs::File>,
    name: &'a Path,
    expected: u64,
    done: u64,
    base: u64,
    progress: &'a mut dyn FnMut(u64),
    failure: &'a mut Option<String>,
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.file.read(buf) {
            Ok(0) if self.done < self.expected && !buf.is_empty() => {
                let msg = format!("{} shrank while it was being read", self.name.display());
                *self.failure = Some(msg.clone());
                Err(io::Error::other(msg))
            }
            Ok(n) => {
                self.done += n as u64;
                (self.progress)(self.base.saturating_add(self.done));
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                *self.failure = Some(format!("cannot read {}: {e}", self.name.display()));
                Err(e)
            }
        }
    }
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::extract::unpack_safe;
    use crate::context::testutil::*;
    use flate2::read::GzDecoder;

    #[test]
    fn round_trip_honours_dockerignore() {
        let src = tmp();
        sample_tree(src.path());
        let (archive, packed, seen) = match pack(src.path(), Some("Dockerfile"), 1 << 20) {
            Ok(r) => r,
            Err(e) => panic!("pack: {e}"),
        };
        let dest = tmp();
        let unpacked = match unpack_safe(archive.as_slice(), dest.path(), 1 << 20) {
            Ok(s) => s,
            Err(e) => panic!("unpack: {e}"),
        };
        let mut want = expected_sample();
        // "build" is excluded: only keep.txt comes back, in a recreated dir.
        want.insert("build".into(), "dir".into());
        let mut got = snapshot(dest.path());
        // Recreated parent dirs get the default mode; only presence matters.
        got.insert("build".into(), "dir".into());
        assert_eq!(got, want);

        let content_bytes: u64 = want
            .iter()
            .filter(|(_, v)| v.starts_with("file"))
            .map(|(k, _)| {
                fs::metadata(src.path().join(k))
                    .map(|m| m.len())
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(packed.bytes, content_bytes);
        assert_eq!(packed.files, 8); // 7 files + 1 symlink
        assert_eq!(packed.compressed, archive.len() as u64);
        assert_eq!(
            (unpacked.files, unpacked.bytes),
            (packed.files, packed.bytes)
        );
        assert_eq!(unpacked.compressed, archive.len() as u64);
        assert_eq!(seen.last().copied(), Some(packed.bytes));
        assert!(
            seen.windows(2).all(|w| w.first() <= w.get(1)),
            "progress must not go back: {seen:?}"
        );
    }

    #[test]
    fn packing_is_deterministic_and_normalised() {
        let src = tmp();
        sample_tree(src.path());
        let first = pack(src.path(), None, 1 << 20)
            .map(|r| r.0)
            .unwrap_or_default();
        let second = pack(src.path(), None, 1 << 20)
            .map(|r| r.0)
            .unwrap_or_default();
        assert!(!first.is_empty());
        assert_eq!(first, second);

        let mut names = Vec::new();
        let mut archive = tar::Archive::new(GzDecoder::new(first.as_slice()));
        let entries = match archive.entries() {
            Ok(e) => e,
            Err(e) => panic!("entries: {e}"),
        };
        for entry in entries.flatten() {
            let h = entry.header();
            assert_eq!((h.uid().ok(), h.gid().ok()), (Some(0), Some(0)));
            assert_eq!(h.username().ok().flatten().unwrap_or(""), "");
            names.push(
                entry
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
        }
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "entries are written in sorted order");
        // Without a Dockerfile argument, an ignored Dockerfile stays out.
        assert!(!names.iter().any(|n| n == "Dockerfile"));
        assert!(names.iter().any(|n| n == ".dockerignore"));
    }

    #[test]
    fn pack_reports_bad_inputs_by_path() {
        let src = tmp();
        write(src.path(), ".dockerignore", "ok\n[abc\n", 0o644);
        match pack(src.path(), None, 1 << 20) {
            Err(Error::Context(msg)) => {
                assert!(msg.contains("line 2") && msg.contains("[abc"), "{msg}")
            }
            other => panic!("expected a context error, got {:?}", other.map(|r| r.1)),
        }
        let file = src.path().join("plain");
        write(src.path(), "plain", "x", 0o644);
        match pack(&file, None, 1 << 20) {
            Err(Error::Context(msg)) => assert!(
                msg.contains("plain") && msg.contains("not a directory"),
                "{msg}"
            ),
            other => panic!("expected a context error, got {:?}", other.map(|r| r.1)),
        }
        match pack(&src.path().join("missing"), None, 1 << 20) {
            Err(Error::Context(msg)) => assert!(msg.contains("missing"), "{msg}"),
            other => panic!("expected a context error, got {:?}", other.map(|r| r.1)),
        }
    }
}
