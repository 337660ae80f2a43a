//! Build contexts: packing a local directory into a tar.gz (honouring its
//! `.dockerignore`) and unpacking an uploaded one without letting it write
//! or point outside its destination.
//!
//! Packing is deterministic: entries are written depth first in byte order
//! of their names, owners are 0/0 without names, modification times are
//! kept, and the gzip header carries no time, so the same tree gives the
//! same bytes. Symlinks are archived as symlinks, never followed. Sockets,
//! fifos and device files in the directory are left out.
//!
//! Unpacking refuses absolute paths, `..`, anything under a symlink, links
//! that lead outside the destination, and device or fifo entries. File
//! modes are kept except set-id and sticky bits, with the owner always able
//! to read files and to read, write and enter directories (so the server can
//! build from and delete the tree); ownership is not restored.

use crate::{Error, Result};
use crtask_core::build::dockerignore::DockerIgnore;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, UNIX_EPOCH};
use tar::{EntryType, Header};

/// What a pack, unpack or copy moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackStats {
    /// Regular files, symlinks and hard links (directories are not counted).
    pub files: u64,
    /// Bytes of file content, uncompressed.
    pub bytes: u64,
    /// Bytes of the compressed archive written (pack) or read (unpack);
    /// 0 for [`copy_context`], which compresses nothing.
    pub compressed: u64,
}

/// Name of the ignore file at the root of a context.
const IGNORE_FILE: &str = ".dockerignore";
/// Size of the copy buffers and of the chunks passed between threads.
const CHUNK: usize = 64 * 1024;
/// Symlink hops followed when checking where a link leads (Linux's own limit).
const MAX_HOPS: usize = 40;
/// Tar data allowed beyond twice the content limit (headers and padding).
const TAR_OVERHEAD: u64 = 256 << 20;

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

/// Extract a tar.gz safely into `dest`, which must exist and be empty.
///
/// Refuses absolute paths, any `..` component, entries whose parents are
/// symlinks, hard links and symlinks whose targets escape `dest` (absolute
/// targets or resolving outside), and device/fifo entries; stops with
/// [`Error::TooLarge`] if the total uncompressed size of files exceeds
/// `limit`. On any refusal returns [`Error::Context`] naming the entry; the
/// caller deletes `dest`. File modes (executable bits) are preserved,
/// ownership is not.
pub fn unpack_safe(input: impl Read, dest: &Path, limit: u64) -> Result<PackStats> {
    let gz = GzDecoder::new(CountingReader {
        inner: input,
        count: 0,
    });
    let (stats, mut rest) = unpack_tar(gz, dest, limit, tar_cap(limit))?;
    // Read to the end so the gzip checksum is verified.
    drain(&mut rest)?;
    let counted = rest.into_inner().into_inner();
    Ok(PackStats {
        compressed: counted.count,
        ..stats
    })
}

/// Copy a directory tree as the context of a run (used for task contexts
/// that are a local dir): equivalent to [`pack_dir`] then [`unpack_safe`],
/// honouring `.dockerignore`, with the same refusals and limit. `dest` must
/// exist and be empty.
pub fn copy_context(
    src: &Path,
    dockerfile: Option<&str>,
    dest: &Path,
    limit: u64,
) -> Result<PackStats> {
    if let (Ok(s), Ok(d)) = (src.canonicalize(), dest.canonicalize()) {
        if d.starts_with(&s) {
            return Err(Error::Context(format!(
                "destination {} is inside the context directory {}",
                dest.display(),
                src.display()
            )));
        }
    }
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(8);
    std::thread::scope(|scope| {
        let packer = scope.spawn(move || {
            let writer = ChanWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
            };
            let mut no_progress = |_: u64| {};
            let (stats, mut writer) = pack_tar(src, dockerfile, limit, writer, &mut no_progress)?;
            writer.flush()?;
            Ok::<PackStats, Error>(stats)
        });
        let reader = ChanReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        };
        // Whatever happens, the reader is dropped or drained before joining,
        // so the packer never blocks on a full channel.
        let unpacked =
            unpack_tar(reader, dest, limit, tar_cap(limit)).and_then(|(stats, mut rest)| {
                drain(&mut rest)?;
                Ok(stats)
            });
        let packed = packer.join().unwrap_or_else(|_| {
            Err(Error::Io(io::Error::other(
                "context copy: packing thread panicked",
            )))
        });
        match (packed, unpacked) {
            // The packer's own failure explains a truncated stream...
            (Err(e), _) if !is_broken_pipe(&e) => Err(e),
            // ...while a broken pipe only means the unpacker stopped first.
            (_, Err(e)) => Err(e),
            (Err(e), Ok(_)) => Err(e),
            (Ok(_), Ok(stats)) => Ok(PackStats {
                compressed: 0,
                ..stats
            }),
        }
    })
}

// ---------------------------------------------------------------------------
// Packing

/// One directory entry waiting to be visited.
struct Pending {
    abs: PathBuf,
    /// Path inside the archive.
    rel: PathBuf,
    /// `rel` as '/'-separated text, for `.dockerignore` matching.
    key: String,
}

/// Writes the uncompressed tar of `dir` to `w` and gives `w` back.
fn pack_tar<W: Write>(
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

// ---------------------------------------------------------------------------
// Unpacking

/// How much tar data (headers and padding included) an archive holding at
/// most `limit` bytes of files may take.
fn tar_cap(limit: u64) -> u64 {
    limit.saturating_mul(2).saturating_add(TAR_OVERHEAD)
}

/// Extracts an uncompressed tar from `reader` into `dest`, reading at most
/// `max` bytes of it; gives back the (guarded) reader so the caller can
/// drain what follows the archive.
fn unpack_tar<R: Read>(
    reader: R,
    dest: &Path,
    limit: u64,
    max: u64,
) -> Result<(PackStats, Guard<R>)> {
    match fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::Context(format!(
                    "destination {} is not empty",
                    dest.display()
                )));
            }
        }
        Err(e) => {
            return Err(Error::Context(format!(
                "destination {}: {e}",
                dest.display()
            )));
        }
    }
    let mut archive = tar::Archive::new(Guard {
        inner: reader,
        read: 0,
        max,
        tripped: false,
    });
    let result = extract(&mut archive, dest, limit);
    let guard = archive.into_inner();
    if guard.tripped {
        return Err(Error::TooLarge(format!(
            "context archive holds more than {max} bytes of tar data (the limit is {limit} bytes of files)"
        )));
    }
    Ok((result?, guard))
}

/// A directory whose mode and time are applied once everything is written.
struct DirFix {
    rel: PathBuf,
    mode: u32,
    mtime: Option<u64>,
}

fn extract<R: Read>(archive: &mut tar::Archive<R>, dest: &Path, limit: u64) -> Result<PackStats> {
    let mut stats = PackStats::default();
    let mut dirs: Vec<DirFix> = Vec::new();
    let mut links: Vec<(PathBuf, String)> = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    let entries = archive.entries().map_err(bad_archive)?;
    for entry in entries {
        let mut entry = entry.map_err(bad_archive)?;
        let raw = entry.path().map_err(bad_archive)?.into_owned();
        let name = raw.display().to_string();
        let refuse = |why: String| Error::Context(format!("refused archive entry '{name}': {why}"));
        let rel = relative(&raw).map_err(|why| refuse(why.to_string()))?;
        let kind = entry.header().entry_type();
        if rel.as_os_str().is_empty() {
            if kind == EntryType::Directory {
                continue; // the root itself, e.g. "./"
            }
            return Err(refuse("it has an empty path".to_string()));
        }
        let target = dest.join(&rel);
        match kind {
            EntryType::Directory => {
                make_parents(dest, &rel).map_err(refuse)?;
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        fs::remove_file(&target)?;
                        fs::create_dir(&target)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&target)?,
                    Err(e) => return Err(e.into()),
                }
                dirs.push(DirFix {
                    rel,
                    mode: entry.header().mode().unwrap_or(0o755),
                    mtime: entry.header().mtime().ok(),
                });
            }
            EntryType::Regular | EntryType::Continuous => {
                let size = entry.size();
                let total = stats.bytes.saturating_add(size);
                if total > limit {
                    return Err(Error::TooLarge(format!(
                        "context is larger than the limit of {limit} bytes (reached at '{name}')"
                    )));
                }
                make_parents(dest, &rel).map_err(refuse)?;
                clear_slot(&target).map_err(refuse)?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)?;
                let mut written = 0u64;
                loop {
                    let n = match entry.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            return Err(Error::Context(format!(
                                "invalid archive entry '{name}': {e}"
                            )))
                        }
                    };
                    file.write_all(buf.get(..n).unwrap_or_default())?;
                    written += n as u64;
                }
                if written != size {
                    return Err(Error::Context(format!(
                        "invalid archive entry '{name}': it is truncated"
                    )));
                }
                let mode = entry.header().mode().unwrap_or(0o644);
                file.set_permissions(fs::Permissions::from_mode((mode & 0o777) | 0o400))?;
                if let Ok(mtime) = entry.header().mtime() {
                    file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))?;
                }
                stats.files += 1;
                stats.bytes = total;
            }
            EntryType::Symlink => {
                let to = entry
                    .link_name()
                    .map_err(bad_archive)?
                    .ok_or_else(|| refuse("the symlink has no target".to_string()))?
                    .into_owned();
                check_symlink(&rel, &to).map_err(refuse)?;
                make_parents(dest, &rel).map_err(refuse)?;
                clear_slot(&target).map_err(refuse)?;
                std::os::unix::fs::symlink(&to, &target)?;
                links.push((rel, name.clone()));
                stats.files += 1;
            }
            EntryType::Link => {
                let to = entry
                    .link_name()
                    .map_err(bad_archive)?
                    .ok_or_else(|| refuse("the hard link has no target".to_string()))?
                    .into_owned();
                let shown = to.display().to_string();
                let to_rel = relative(&to).map_err(|why| {
                    refuse(format!("hard link target '{shown}' is not allowed: {why}"))
                })?;
                if to_rel.as_os_str().is_empty() || to_rel == rel {
                    return Err(refuse(format!("hard link target '{shown}' is not allowed")));
                }
                check_parents(dest, &to_rel).map_err(refuse)?;
                match fs::symlink_metadata(dest.join(&to_rel)) {
                    Ok(m) if m.is_file() => {}
                    _ => {
                        return Err(refuse(format!(
                            "hard link target '{shown}' is not a regular file extracted earlier"
                        )))
                    }
                }
                make_parents(dest, &rel).map_err(refuse)?;
                clear_slot(&target).map_err(refuse)?;
                fs::hard_link(dest.join(&to_rel), &target)?;
                stats.files += 1;
            }
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => {}
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(refuse(
                    "device and fifo entries are not allowed".to_string(),
                ));
            }
            other => {
                return Err(refuse(format!("unsupported entry type {other:?}")));
            }
        }
    }

    // Links that each stay inside can still combine to lead outside
    // (a/b -> .., c -> a/b/..), so check every one with all of them in place.
    for (rel, name) in &links {
        if leads_outside(dest, rel) {
            return Err(Error::Context(format!(
                "refused archive entry '{name}': the symlink leads outside the context"
            )));
        }
    }

    // Deepest first, so setting a directory's time is not undone by its children.
    for fix in dirs.iter().rev() {
        let path = dest.join(&fix.rel);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            _ => continue,
        }
        fs::set_permissions(
            &path,
            fs::Permissions::from_mode((fix.mode & 0o777) | 0o700),
        )?;
        if let Some(mtime) = fix.mtime {
            // Best effort: a directory's time is cosmetic.
            if let Ok(dir) = fs::File::open(&path) {
                let _ = dir.set_modified(UNIX_EPOCH + Duration::from_secs(mtime));
            }
        }
    }
    Ok(stats)
}

fn bad_archive(e: io::Error) -> Error {
    Error::Context(format!("invalid archive: {e}"))
}

/// The normal components of an archive path; absolute paths and `..` are refused.
fn relative(path: &Path) -> std::result::Result<PathBuf, &'static str> {
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
fn make_parents(dest: &Path, rel: &Path) -> std::result::Result<(), String> {
    walk_parents(dest, rel, true)
}

/// Like [`make_parents`] but every parent must already exist.
fn check_parents(dest: &Path, rel: &Path) -> std::result::Result<(), String> {
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
fn clear_slot(path: &Path) -> std::result::Result<(), String> {
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
fn check_symlink(rel: &Path, to: &Path) -> std::result::Result<(), String> {
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
fn leads_outside(dest: &Path, rel: &Path) -> bool {
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

/// Reads what is left (end-of-archive blocks, gzip trailer) and drops it.
fn drain(r: &mut impl Read) -> Result<()> {
    io::copy(r, &mut io::sink())
        .map(|_| ())
        .map_err(bad_archive)
}

// ---------------------------------------------------------------------------
// Plumbing

/// Caps how much tar data is read, so headers-only bombs stop too.
struct Guard<R> {
    inner: R,
    read: u64,
    max: u64,
    tripped: bool,
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read = self.read.saturating_add(n as u64);
        if self.read > self.max {
            self.tripped = true;
            return Err(io::Error::other("archive is too large"));
        }
        Ok(n)
    }
}

impl<R> Guard<R> {
    fn into_inner(self) -> R {
        self.inner
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

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// The writing end of an in-process pipe between the packer and unpacker.
struct ChanWriter {
    tx: mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChanWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.send(chunk).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "context copy: the unpacker stopped",
            )
        })
    }
}

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The reading end; the end of the stream is the writer going away.
struct ChanReader {
    rx: mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChanReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let avail = self.buf.get(self.pos..).unwrap_or_default();
        let n = avail.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        Ok(n)
    }
}

fn is_broken_pipe(e: &Error) -> bool {
    matches!(e, Error::Io(io) if io.kind() == io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::symlink;

    /// What a tree holds: path -> description ("file <mode> <content>",
    /// "link <target>", "dir").
    fn snapshot(root: &Path) -> BTreeMap<String, String> {
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

    fn tmp() -> tempfile::TempDir {
        match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        }
    }

    fn write(root: &Path, rel: &str, content: &str, mode: u32) {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).ok();
        }
        fs::write(&path, content).ok();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).ok();
    }

    /// A source tree exercising ignores, exceptions, links, modes.
    fn sample_tree(root: &Path) {
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

    fn pack(
        dir: &Path,
        dockerfile: Option<&str>,
        limit: u64,
    ) -> Result<(Vec<u8>, PackStats, Vec<u64>)> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let stats = pack_dir(dir, dockerfile, limit, &mut out, &mut |n| seen.push(n))?;
        Ok((out, stats, seen))
    }

    fn expected_sample() -> BTreeMap<String, String> {
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
    fn dockerfile_in_an_ignored_dir_is_kept() {
        for given in ["docker/Dockerfile", "./docker/Dockerfile"] {
            let src = tmp();
            write(
                src.path(),
                ".dockerignore",
                "docker\n.dockerignore\n",
                0o644,
            );
            write(src.path(), "docker/Dockerfile", "FROM scratch\n", 0o644);
            write(src.path(), "docker/other", "x", 0o644);
            write(src.path(), "app.txt", "app", 0o644);
            let dest = tmp();
            let r = copy_context(src.path(), Some(given), dest.path(), 1 << 20);
            assert!(r.is_ok(), "{given}: {r:?}");
            let got = snapshot(dest.path());
            assert!(got.contains_key("docker/Dockerfile"), "{given}: {got:?}");
            assert!(got.contains_key(".dockerignore"), "{given}: {got:?}");
            assert!(got.contains_key("app.txt"));
            assert!(!got.contains_key("docker/other"), "{given}: {got:?}");
        }
    }

    #[test]
    fn copy_context_matches_pack_then_unpack() {
        let src = tmp();
        sample_tree(src.path());
        let dest = tmp();
        let stats = match copy_context(src.path(), Some("Dockerfile"), dest.path(), 1 << 20) {
            Ok(s) => s,
            Err(e) => panic!("copy: {e}"),
        };
        let mut got = snapshot(dest.path());
        got.insert("build".into(), "dir".into());
        assert_eq!(got, expected_sample());
        assert_eq!((stats.files, stats.compressed), (8, 0));
    }

    #[test]
    fn long_names_and_link_targets_survive() {
        let src = tmp();
        let deep = format!("{}/{}", "d".repeat(80), "f".repeat(90));
        write(src.path(), &deep, "deep", 0o644);
        let target = format!("{}/../{}", "d".repeat(80), "t".repeat(120));
        symlink(&target, src.path().join("l")).ok();
        let dest = tmp();
        let r = copy_context(src.path(), None, dest.path(), 1 << 20);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(
            fs::read_to_string(dest.path().join(&deep)).ok().as_deref(),
            Some("deep")
        );
        assert_eq!(
            fs::read_link(dest.path().join("l")).ok(),
            Some(PathBuf::from(target))
        );
    }

    #[test]
    fn size_limit_is_enforced() {
        let src = tmp();
        write(src.path(), "a", &"x".repeat(600), 0o644);
        write(src.path(), "b", &"y".repeat(600), 0o644);
        match pack(src.path(), None, 1000) {
            Err(Error::TooLarge(msg)) => assert!(msg.contains("1000"), "{msg}"),
            other => panic!("expected too large, got {:?}", other.map(|r| r.1)),
        }
        let dest = tmp();
        match copy_context(src.path(), None, dest.path(), 1000) {
            Err(Error::TooLarge(msg)) => assert!(msg.contains("1000"), "{msg}"),
            other => panic!("expected too large, got {other:?}"),
        }
        // An archive packed with a higher limit is refused by a lower one.
        let archive = pack(src.path(), None, 2000)
            .map(|r| r.0)
            .unwrap_or_default();
        let dest = tmp();
        match unpack_safe(archive.as_slice(), dest.path(), 1000) {
            Err(Error::TooLarge(msg)) => assert!(msg.contains("1000"), "{msg}"),
            other => panic!("expected too large, got {other:?}"),
        }
        assert!(
            pack(src.path(), None, 1200).is_ok(),
            "exactly the limit is allowed"
        );
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

    // --- hostile archives -------------------------------------------------

    /// One raw entry: (type, name bytes, link name bytes, mode, content).
    type Raw<'a> = (EntryType, &'a [u8], &'a [u8], u32, &'a [u8]);

    /// Builds a tar.gz with names written straight into the header, so
    /// nothing sanitises them.
    fn hostile(entries: &[Raw<'_>]) -> Vec<u8> {
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
    struct Sandbox {
        root: tempfile::TempDir,
    }

    impl Sandbox {
        fn new() -> Sandbox {
            let root = tmp();
            fs::create_dir(root.path().join("dest")).ok();
            Sandbox { root }
        }
        fn dest(&self) -> PathBuf {
            self.root.path().join("dest")
        }
        fn outside(&self) -> Vec<String> {
            snapshot(self.root.path())
                .into_keys()
                .filter(|k| k != "dest" && !k.starts_with("dest/"))
                .collect()
        }
    }

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

    #[test]
    fn writing_a_file_over_a_symlink_replaces_the_link() {
        let sb = Sandbox::new();
        let archive = hostile(&[
            (EntryType::Regular, b"real", b"", 0o644, b"original"),
            (EntryType::Symlink, b"s", b"real", 0o777, b""),
            (EntryType::Regular, b"s", b"", 0o644, b"new"),
        ]);
        let r = unpack_safe(archive.as_slice(), &sb.dest(), 1 << 20);
        assert!(r.is_ok(), "{r:?}");
        let got = snapshot(&sb.dest());
        assert_eq!(
            got.get("real").map(String::as_str),
            Some("file 644 original")
        );
        assert_eq!(got.get("s").map(String::as_str), Some("file 644 new"));
    }

    #[test]
    fn modes_links_and_dirs_are_restored() {
        let sb = Sandbox::new();
        let archive = hostile(&[
            (EntryType::Directory, b"./", b"", 0o755, b""),
            (EntryType::Directory, b"bin", b"", 0o750, b""),
            (EntryType::Regular, b"bin/tool", b"", 0o4755, b"#!/bin/sh"),
            (EntryType::Regular, b"ro", b"", 0o444, b"r"),
            (EntryType::Link, b"bin/tool2", b"bin/tool", 0o755, b""),
            (EntryType::Symlink, b"bin/up", b"../ro", 0o777, b""),
            (
                EntryType::Regular,
                b"implicit/parent/file",
                b"",
                0o644,
                b"p",
            ),
        ]);
        let stats = match unpack_safe(archive.as_slice(), &sb.dest(), 1 << 20) {
            Ok(s) => s,
            Err(e) => panic!("unpack: {e}"),
        };
        let got = snapshot(&sb.dest());
        // Executable bits kept, set-uid dropped, read-only kept.
        assert_eq!(
            got.get("bin/tool").map(String::as_str),
            Some("file 755 #!/bin/sh")
        );
        assert_eq!(got.get("ro").map(String::as_str), Some("file 444 r"));
        assert_eq!(
            got.get("bin/tool2").map(String::as_str),
            Some("file 755 #!/bin/sh")
        );
        assert_eq!(got.get("bin/up").map(String::as_str), Some("link ../ro"));
        assert_eq!(
            got.get("implicit/parent/file").map(String::as_str),
            Some("file 644 p")
        );
        let bin = fs::metadata(sb.dest().join("bin"))
            .map(|m| m.mode() & 0o777)
            .ok();
        assert_eq!(bin, Some(0o750));
        let mtime = fs::metadata(sb.dest().join("ro")).map(|m| m.mtime()).ok();
        assert_eq!(mtime, Some(1_700_000_000));
        assert_eq!((stats.files, stats.bytes), (5, 11));
    }

    #[test]
    fn unpack_needs_an_empty_destination_and_a_valid_archive() {
        let sb = Sandbox::new();
        write(&sb.dest(), "already", "x", 0o644);
        match unpack_safe(hostile(&[]).as_slice(), &sb.dest(), 1 << 20) {
            Err(Error::Context(msg)) => assert!(msg.contains("not empty"), "{msg}"),
            other => panic!("expected a context error, got {other:?}"),
        }
        let missing = sb.root.path().join("missing");
        match unpack_safe(hostile(&[]).as_slice(), &missing, 1 << 20) {
            Err(Error::Context(msg)) => assert!(msg.contains("missing"), "{msg}"),
            other => panic!("expected a context error, got {other:?}"),
        }
        let empty = Sandbox::new();
        match unpack_safe(&b"this is not gzip at all"[..], &empty.dest(), 1 << 20) {
            Err(Error::Context(msg)) => assert!(msg.contains("invalid archive"), "{msg}"),
            other => panic!("expected a context error, got {other:?}"),
        }
        // A valid archive cut short is refused too.
        let src = tmp();
        write(src.path(), "big", &"z".repeat(100_000), 0o644);
        let archive = pack(src.path(), None, 1 << 20)
            .map(|r| r.0)
            .unwrap_or_default();
        let cut = archive.get(..archive.len() / 2).unwrap_or_default();
        let sb = Sandbox::new();
        match unpack_safe(cut, &sb.dest(), 1 << 20) {
            Err(Error::Context(msg)) => assert!(msg.contains("invalid archive"), "{msg}"),
            other => panic!("expected a context error, got {other:?}"),
        }
    }

    #[test]
    fn headers_only_bombs_stop_at_the_tar_cap() {
        // Thousands of empty files hold no content but plenty of tar data.
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..2000 {
            let mut h = Header::new_gnu();
            h.set_entry_type(EntryType::Regular);
            h.set_size(0);
            h.set_mode(0o644);
            if let Err(e) = b.append_data(&mut h, format!("f{i}"), io::empty()) {
                panic!("append: {e}");
            }
        }
        let tar = b.into_inner().unwrap_or_default();
        let sb = Sandbox::new();
        match unpack_tar(tar.as_slice(), &sb.dest(), 1 << 20, 100 * 512) {
            Err(Error::TooLarge(msg)) => assert!(msg.contains("51200"), "{msg}"),
            other => panic!("expected too large, got {:?}", other.map(|r| r.0)),
        }
        let sb = Sandbox::new();
        let ok = unpack_tar(tar.as_slice(), &sb.dest(), 1 << 20, tar_cap(1 << 20));
        assert_eq!(ok.map(|r| r.0.files).ok(), Some(2000));
    }

    #[test]
    fn copy_context_reports_the_unpack_refusal_not_a_broken_pipe() {
        let src = tmp();
        symlink("/etc/passwd", src.path().join("aaa-absolute-link")).ok();
        for i in 0..200 {
            write(src.path(), &format!("f{i:03}"), &"q".repeat(4096), 0o644);
        }
        let dest = tmp();
        match copy_context(src.path(), None, dest.path(), 1 << 30) {
            Err(Error::Context(msg)) => {
                assert!(
                    msg.contains("aaa-absolute-link") && msg.contains("absolute"),
                    "{msg}"
                )
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let inner = src.path().join("inner");
        fs::create_dir(&inner).ok();
        match copy_context(src.path(), None, &inner, 1 << 30) {
            Err(Error::Context(msg)) => assert!(msg.contains("inside"), "{msg}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn empty_archive_unpacks_to_nothing() {
        let sb = Sandbox::new();
        let stats = unpack_safe(hostile(&[]).as_slice(), &sb.dest(), 0);
        assert_eq!(
            stats.ok(),
            Some(PackStats {
                files: 0,
                bytes: 0,
                compressed: hostile(&[]).len() as u64
            })
        );
    }
}
