//! The limits on a context: the default size, how much tar data an archive
//! of that size may take (so headers-only bombs stop too), and what a pack,
//! unpack or copy moved.

use std::io::{self, Read};

/// Default largest context, bytes (uncompressed; the compressed upload too).
pub const DEFAULT_CONTEXT_LIMIT: u64 = 512 * 1024 * 1024;

/// Default largest number of entries (files, links, directories) unpacked.
pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;
/// Default longest entry path (and link target), bytes.
pub const DEFAULT_MAX_NAME: usize = 1024;
/// Longest component of an entry path, bytes (Linux's NAME_MAX).
pub const MAX_COMPONENT: usize = 255;
/// What one entry costs on disk beyond its content (inode, directory entry),
/// and the block its content is rounded up to.
pub const DISK_BLOCK: u64 = 4096;

/// What an unpack may create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Bytes of file content, uncompressed.
    pub bytes: u64,
    /// Bytes on disk: each entry costs [`DISK_BLOCK`] plus its content
    /// rounded up to whole blocks, so many small or empty files count.
    pub disk: u64,
    /// Entries of any kind.
    pub entries: u64,
    /// Bytes of an entry's path or link target.
    pub name: usize,
}

impl UnpackLimits {
    /// `bytes` of content, twice that on disk, default entries and names.
    pub fn for_size(bytes: u64) -> Self {
        UnpackLimits {
            bytes,
            disk: bytes.saturating_mul(2).max(DISK_BLOCK * 16),
            entries: DEFAULT_MAX_ENTRIES,
            name: DEFAULT_MAX_NAME,
        }
    }

    /// What an entry with `size` bytes of content costs on disk.
    pub(super) fn disk_cost(size: u64) -> u64 {
        DISK_BLOCK.saturating_add(size.div_ceil(DISK_BLOCK).saturating_mul(DISK_BLOCK))
    }
}

/// What a pack, unpack or copy moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackStats {
    /// Regular files, symlinks and hard links (directories are not counted).
    pub files: u64,
    /// Bytes of file content, uncompressed.
    pub bytes: u64,
    /// Bytes of the compressed archive written (pack) or read (unpack);
    /// 0 for `copy_context`, which compresses nothing.
    pub compressed: u64,
}

/// Size of the copy buffers and of the chunks passed between threads.
pub(super) const CHUNK: usize = 64 * 1024;
/// Tar data allowed beyond twice the content limit (headers and padding).
const TAR_OVERHEAD: u64 = 256 << 20;

/// How much tar data (headers and padding included) an archive holding at
/// most `limit` bytes of files may take.
pub(super) fn tar_cap(limit: u64) -> u64 {
    limit.saturating_mul(2).saturating_add(TAR_OVERHEAD)
}

/// Caps how much tar data is read, so headers-only bombs stop too.
pub(super) struct Guard<R> {
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
    /// Reads `inner` up to `max` bytes.
    pub(super) fn new(inner: R, max: u64) -> Self {
        Guard {
            inner,
            read: 0,
            max,
            tripped: false,
        }
    }
    /// Whether a read went over the cap.
    pub(super) fn tripped(&self) -> bool {
        self.tripped
    }
    pub(super) fn into_inner(self) -> R {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::copy::copy_context;
    use crate::context::extract::{unpack_safe, unpack_tar};
    use crate::context::testutil::*;
    use crate::Error;
    use tar::{EntryType, Header};

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
        let roomy = UnpackLimits {
            disk: u64::MAX,
            ..UnpackLimits::for_size(1 << 20)
        };
        let sb = Sandbox::new();
        match unpack_tar(tar.as_slice(), &sb.dest(), &roomy, 100 * 512) {
            Err(Error::TooLarge(msg)) => assert!(msg.contains("51200"), "{msg}"),
            other => panic!("expected too large, got {:?}", other.map(|r| r.0)),
        }
        let sb = Sandbox::new();
        let ok = unpack_tar(tar.as_slice(), &sb.dest(), &roomy, tar_cap(1 << 20));
        assert_eq!(ok.map(|r| r.0.files).ok(), Some(2000));
    }
}
