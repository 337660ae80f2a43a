//! Copying a directory as a run's context: the packer and the unpacker
//! joined by an in-process pipe, so the same ignores, refusals and limit
//! apply as to an upload.

use super::extract::{drain, unpack_tar};
use super::limits::{tar_cap, PackStats, UnpackLimits, CHUNK};
use super::pack::pack_tar;
use crate::{Error, Result};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::mpsc;

/// Copy a directory tree as the context of a run (used for task contexts
/// that are a local dir): equivalent to [`pack_dir`](super::pack_dir) then
/// [`unpack_safe`](super::unpack_safe), honouring `.dockerignore`, with the
/// same refusals and limit. `dest` must exist and be empty.
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
        // The user's own directory: only its size is limited.
        let limits = UnpackLimits {
            bytes: limit,
            disk: u64::MAX,
            entries: u64::MAX,
            name: usize::MAX,
        };
        let unpacked =
            unpack_tar(reader, dest, &limits, tar_cap(limit)).and_then(|(stats, mut rest)| {
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
    use crate::context::testutil::*;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

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
}
