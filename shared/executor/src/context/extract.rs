//! Unpacking an uploaded tar.gz without letting it write or point outside
//! its destination.
//!
//! Unpacking refuses absolute paths, `..`, anything under a symlink, links
//! that lead outside the destination (the checks are in `safety`), and
//! device or fifo entries. File modes are kept except set-id and sticky bits, with the owner always
//! able to read files and to read, write and enter directories (so the
//! server can build from and delete the tree); ownership is not restored.

use super::limits::{tar_cap, Guard, PackStats, UnpackLimits, CHUNK, MAX_COMPONENT};
use super::safety::{
    check_parents, check_symlink, clear_slot, leads_outside, make_parents, relative,
};
use crate::{Error, Result};
use flate2::read::GzDecoder;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};
use tar::EntryType;

/// Extract a tar.gz safely into `dest`, which must exist and be empty.
///
/// Refuses absolute paths, any `..` component, entries whose parents are
/// symlinks, hard links and symlinks whose targets escape `dest` (absolute
/// targets or resolving outside), and device/fifo entries; stops with
/// [`Error::TooLarge`] if the total uncompressed size of files exceeds
/// `limit`. On any refusal returns [`Error::Context`] naming the entry; the
/// caller deletes `dest`. File modes (executable bits) are preserved,
/// ownership is not. Entries, names and size on disk have the defaults of
/// [`UnpackLimits::for_size`].
pub fn unpack_safe(input: impl Read, dest: &Path, limit: u64) -> Result<PackStats> {
    unpack_limited(input, dest, &UnpackLimits::for_size(limit))
}

/// [`unpack_safe`] within `limits`: [`Error::TooLarge`] past the content
/// size, the size on disk or the number of entries; [`Error::Context`] for
/// a path (or link target) longer than `limits.name` bytes or with a
/// component over 255 bytes.
pub fn unpack_limited(input: impl Read, dest: &Path, limits: &UnpackLimits) -> Result<PackStats> {
    let gz = GzDecoder::new(CountingReader {
        inner: input,
        count: 0,
    });
    let (stats, mut rest) = unpack_tar(gz, dest, limits, tar_cap(limits.bytes))?;
    // Read to the end so the gzip checksum is verified.
    drain(&mut rest)?;
    let counted = rest.into_inner().into_inner();
    Ok(PackStats {
        compressed: counted.count,
        ..stats
    })
}

/// Extracts an uncompressed tar from `reader` into `dest`, reading at most
/// `max` bytes of it; gives back the (guarded) reader so the caller can
/// drain what follows the archive.
pub(super) fn unpack_tar<R: Read>(
    reader: R,
    dest: &Path,
    limits: &UnpackLimits,
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
    let mut archive = tar::Archive::new(Guard::new(reader, max));
    let result = extract(&mut archive, dest, limits);
    let guard = archive.into_inner();
    if guard.tripped() {
        return Err(Error::TooLarge(format!(
            "context archive holds more than {max} bytes of tar data (the limit is {} bytes of files)",
            limits.bytes
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

/// An entry name as error messages show it: at most 100 characters.
fn shown(name: &str) -> String {
    match name.char_indices().nth(100) {
        Some((cut, _)) => format!("{}...", name.get(..cut).unwrap_or_default()),
        None => name.to_string(),
    }
}

/// Refuses a path (or link target) the file system could not take or that
/// is over the configured length, before anything is created for it.
fn check_name(path: &Path, limits: &UnpackLimits) -> std::result::Result<(), String> {
    let len = path.as_os_str().len();
    if len > limits.name {
        return Err(format!(
            "its path is {len} bytes long; the limit is {} bytes",
            limits.name
        ));
    }
    if let Some(c) = path.iter().find(|c| c.len() > MAX_COMPONENT) {
        return Err(format!(
            "a component of its path is {} bytes long; the limit is {MAX_COMPONENT} bytes",
            c.len()
        ));
    }
    Ok(())
}

fn extract<R: Read>(
    archive: &mut tar::Archive<R>,
    dest: &Path,
    limits: &UnpackLimits,
) -> Result<PackStats> {
    let limit = limits.bytes;
    let mut entries_seen: u64 = 0;
    let mut disk: u64 = 0;
    let mut stats = PackStats::default();
    let mut dirs: Vec<DirFix> = Vec::new();
    let mut links: Vec<(PathBuf, String)> = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    let entries = archive.entries().map_err(bad_archive)?;
    for entry in entries {
        let mut entry = entry.map_err(bad_archive)?;
        let raw = entry.path().map_err(bad_archive)?.into_owned();
        let name = shown(&raw.display().to_string());
        let refuse = |why: String| Error::Context(format!("refused archive entry '{name}': {why}"));
        let kind = entry.header().entry_type();
        if !matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            entries_seen += 1;
            if entries_seen > limits.entries {
                return Err(Error::TooLarge(format!(
                    "context has more than {} entries (files, links and directories)",
                    limits.entries
                )));
            }
            disk = disk.saturating_add(UnpackLimits::disk_cost(entry.size()));
            if disk > limits.disk {
                return Err(Error::TooLarge(format!(
                    "context takes more than {} bytes on disk (reached at '{name}')",
                    limits.disk
                )));
            }
            check_name(&raw, limits).map_err(refuse)?;
            if let Some(to) = entry.link_name().map_err(bad_archive)? {
                check_name(&to, limits).map_err(|why| refuse(format!("link target: {why}")))?;
            }
        }
        let rel = relative(&raw).map_err(|why| refuse(why.to_string()))?;
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

/// Reads what is left (end-of-archive blocks, gzip trailer) and drops it.
pub(super) fn drain(r: &mut impl Read) -> Result<()> {
    io::copy(r, &mut io::sink())
        .map(|_| ())
        .map_err(bad_archive)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::testutil::*;
    use std::os::unix::fs::MetadataExt;
    use tar::EntryType;

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

    /// A tar.gz of regular files with any names (long ones as GNU long names).
    fn files(entries: &[(String, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Regular);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if let Err(e) = b.append_data(&mut h, name, *data) {
                panic!("append: {e}");
            }
        }
        b.into_inner()
            .and_then(|gz| gz.finish())
            .unwrap_or_default()
    }

    fn limits() -> UnpackLimits {
        UnpackLimits {
            bytes: 1 << 20,
            disk: 1 << 30,
            entries: 10,
            name: 200,
        }
    }

    #[test]
    fn too_many_entries_are_refused() {
        let many: Vec<(String, &[u8])> = (0..11).map(|i| (format!("f{i}"), &b""[..])).collect();
        let sb = Sandbox::new();
        match unpack_limited(files(&many).as_slice(), &sb.dest(), &limits()) {
            Err(Error::TooLarge(msg)) => assert!(msg.contains("more than 10 entries"), "{msg}"),
            other => panic!("expected too large, got {other:?}"),
        }
        let sb = Sandbox::new();
        let ten = many.get(..10).unwrap_or_default();
        let ok = unpack_limited(files(ten).as_slice(), &sb.dest(), &limits());
        assert_eq!(ok.map(|s| s.files).ok(), Some(10));
    }

    #[test]
    fn long_names_are_refused_before_anything_is_created() {
        for (name, want) in [
            (
                "a".repeat(5000),
                "its path is 5000 bytes long; the limit is 200 bytes",
            ),
            ("b".repeat(201), "its path is 201 bytes long"),
            (
                format!("d/{}", "c".repeat(190)),
                "its path is 192 bytes long",
            ),
        ] {
            let mut l = limits();
            if name.starts_with('d') {
                l.name = 191;
            }
            let sb = Sandbox::new();
            match unpack_limited(files(&[(name.clone(), b"x")]).as_slice(), &sb.dest(), &l) {
                Err(Error::Context(msg)) => {
                    assert!(msg.contains(want), "{msg}");
                    assert!(msg.len() < 400, "the name is shortened: {msg}");
                }
                other => panic!("expected a context error, got {other:?}"),
            }
            assert!(snapshot(&sb.dest()).is_empty());
        }
        // A component the file system cannot hold, within the path limit.
        let mut l = limits();
        l.name = 4096;
        let sb = Sandbox::new();
        match unpack_limited(files(&[("z".repeat(300), b"x")]).as_slice(), &sb.dest(), &l) {
            Err(Error::Context(msg)) => assert!(msg.contains("component"), "{msg}"),
            other => panic!("expected a context error, got {other:?}"),
        }
    }

    #[test]
    fn long_link_targets_are_refused() {
        let target = "t".repeat(100);
        let archive = hostile(&[(EntryType::Symlink, b"s", target.as_bytes(), 0o777, b"")]);
        let l = UnpackLimits {
            name: 50,
            ..limits()
        };
        let sb = Sandbox::new();
        match unpack_limited(archive.as_slice(), &sb.dest(), &l) {
            Err(Error::Context(msg)) => assert!(msg.contains("link target"), "{msg}"),
            other => panic!("expected a context error, got {other:?}"),
        }
    }

    #[test]
    fn size_on_disk_counts_every_entry() {
        // Five empty files hold no content but cost a block each.
        let five: Vec<(String, &[u8])> = (0..5).map(|i| (format!("e{i}"), &b""[..])).collect();
        let l = UnpackLimits {
            disk: 4 * 4096,
            ..limits()
        };
        let sb = Sandbox::new();
        match unpack_limited(files(&five).as_slice(), &sb.dest(), &l) {
            Err(Error::TooLarge(msg)) => assert!(msg.contains("16384 bytes on disk"), "{msg}"),
            other => panic!("expected too large, got {other:?}"),
        }
        let sb = Sandbox::new();
        let four = five.get(..4).unwrap_or_default();
        assert!(unpack_limited(files(four).as_slice(), &sb.dest(), &l).is_ok());
        assert_eq!(UnpackLimits::disk_cost(0), 4096);
        assert_eq!(UnpackLimits::disk_cost(1), 8192);
        assert_eq!(UnpackLimits::disk_cost(4096), 8192);
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
