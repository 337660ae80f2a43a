//! Webhook secret files, read once and read again only when they change.
//!
//! A rotated secret must take effect without a restart, so the server used
//! to read every secret file at every delivery (an open, a read and a close
//! per file per request). Now each delivery costs one `stat` per file: the
//! text is read again when the file's identity, size, modification or
//! change time differ from the read that is cached. A file changed within
//! the last [`RACY`] is read every time, so a rewrite too quick for the
//! file system's timestamp granularity (same size, same times) is still
//! seen: the trick git uses for its index.

use crtask_core::signing::Secret;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How recent a change must be for the cached text not to be trusted.
const RACY: Duration = Duration::from_secs(2);

/// Secret files (`--git-webhook-secret-file`), each cached with the stamp
/// of the file it was read from.
pub struct SecretFiles {
    /// Names the files in warnings ("git webhook secret").
    what: &'static str,
    files: Vec<CachedFile>,
}

struct CachedFile {
    path: PathBuf,
    cached: Mutex<Option<(Stamp, Secret)>>,
    /// Reads of the file, for the tests of the cache.
    #[cfg(test)]
    reads: std::sync::atomic::AtomicUsize,
}

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        }
    }

    /// Whether the file changed less than [`RACY`] before `now_ns` (or
    /// claims a time after it): a later change could leave the stamp equal.
    fn is_racy(&self, now_ns: i128) -> bool {
        let newest = self.mtime_ns.max(self.ctime_ns);
        newest > now_ns - RACY.as_nanos() as i128
    }
}

impl SecretFiles {
    pub fn new(what: &'static str, paths: &[PathBuf]) -> Self {
        SecretFiles {
            what,
            files: paths
                .iter()
                .map(|p| CachedFile {
                    path: p.clone(),
                    cached: Mutex::new(None),
                    #[cfg(test)]
                    reads: Default::default(),
                })
                .collect(),
        }
    }

    /// The current secrets (secret-file text, see
    /// [`Secret::from_file_text`]); empty and unreadable files are skipped,
    /// with a warning for unreadable ones.
    pub fn current(&self) -> Vec<Secret> {
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        self.files
            .iter()
            .filter_map(|f| self.secret_of(f, now_ns))
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn secret_of(&self, f: &CachedFile, now_ns: i128) -> Option<Secret> {
        let warn = |e: std::io::Error| {
            tracing::warn!("cannot read {} file {}: {e}", self.what, f.path.display());
        };
        let stamp = match std::fs::metadata(&f.path) {
            Ok(m) => Stamp::of(&m),
            Err(e) => {
                warn(e);
                return None;
            }
        };
        // The cache holds no invariant a panic could break.
        let mut cached = f.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, secret)) = cached.as_ref() {
            if *s == stamp && !stamp.is_racy(now_ns) {
                return Some(secret.clone());
            }
        }
        #[cfg(test)]
        f.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Stamp first, text second: the text is at least as new as the
        // stamp, so a change after the stamp shows as a new stamp next time.
        match std::fs::read_to_string(&f.path) {
            Ok(text) => {
                let secret = Secret::from_file_text(&text);
                *cached = Some((stamp, secret.clone()));
                Some(secret)
            }
            Err(e) => {
                *cached = None;
                warn(e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn secrets(f: &SecretFiles) -> Vec<String> {
        f.current().iter().map(|s| s.expose().to_string()).collect()
    }

    fn reads(f: &SecretFiles) -> usize {
        f.files[0].reads.load(Ordering::Relaxed)
    }

    /// Makes the file look changed long ago, so its stamp is trusted.
    fn age(path: &std::path::Path) {
        let old = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    #[test]
    fn an_unchanged_file_is_read_once_a_rotated_one_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "first-secret\n").unwrap();
        let files = SecretFiles::new("test secret", std::slice::from_ref(&path));
        assert_eq!(secrets(&files), ["first-secret"]);
        assert_eq!(reads(&files), 1);
        // The ctime of a file just written is recent, so the cache is not
        // trusted yet: the file is read again.
        assert_eq!(secrets(&files), ["first-secret"]);
        assert_eq!(reads(&files), 2);
        // Once the change is old enough the cached text serves: no read.
        // (set_modified changes the ctime too, so wait out the racy window.)
        age(&path);
        std::thread::sleep(RACY + Duration::from_millis(100));
        assert_eq!(secrets(&files), ["first-secret"]);
        let after = reads(&files);
        assert_eq!(secrets(&files), ["first-secret"]);
        assert_eq!(secrets(&files), ["first-secret"]);
        assert_eq!(reads(&files), after);
        // Rotation without a restart: same length, written in place.
        std::fs::write(&path, "other-secret\n").unwrap();
        assert_eq!(secrets(&files), ["other-secret"]);
        // Rotation by rename (a new inode), as secret mounts do.
        let tmp = dir.path().join("secret.new");
        std::fs::write(&tmp, "third\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(secrets(&files), ["third"]);
    }

    #[test]
    fn a_removed_or_emptied_file_gives_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "secret-a").unwrap();
        std::fs::write(&b, "secret-b").unwrap();
        let files = SecretFiles::new("test secret", &[a.clone(), b.clone()]);
        assert_eq!(secrets(&files), ["secret-a", "secret-b"]);
        std::fs::remove_file(&a).unwrap();
        assert_eq!(secrets(&files), ["secret-b"]);
        std::fs::write(&b, "\n").unwrap();
        assert!(secrets(&files).is_empty());
        std::fs::write(&a, "back").unwrap();
        assert_eq!(secrets(&files), ["back"]);
    }

    #[test]
    fn a_change_within_the_racy_window_is_not_trusted() {
        let now = 1_000 * 1_000_000_000i128;
        let stamp = |t: i128| Stamp {
            dev: 1,
            ino: 1,
            len: 1,
            mtime_ns: t,
            ctime_ns: t,
        };
        assert!(stamp(now).is_racy(now));
        assert!(stamp(now - RACY.as_nanos() as i128 + 1).is_racy(now));
        assert!(stamp(now + 5_000_000_000).is_racy(now));
        assert!(!stamp(now - RACY.as_nanos() as i128).is_racy(now));
    }
}
