//! Per-run log files. Every byte an engine prints goes through [`RunLog`],
//! which masks secret values before anything reaches the disk.

use crtask_core::ports::LogSink;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What replaces a secret value in logs.
pub const MASK: &str = "*****";

/// The log directory layout: `<data-dir>/logs/<run-id>.log`.
#[derive(Debug, Clone)]
pub struct LogDir {
    dir: PathBuf,
}

impl LogDir {
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(LogDir { dir })
    }

    pub fn path(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{run_id}.log"))
    }

    /// Opens the run's log for appending (created if absent).
    pub fn open(&self, run_id: &str, secrets: Vec<String>) -> std::io::Result<RunLog> {
        RunLog::open(&self.path(run_id), secrets)
    }
}

/// An append-only log file that masks secrets line by line.
pub struct RunLog {
    inner: Mutex<Inner>,
}

struct Inner {
    file: File,
    /// Bytes of an incomplete line, held until its end so a secret split
    /// across two writes is still masked.
    pending: Vec<u8>,
    secrets: Vec<String>,
    /// Also copy every (masked) byte to stdout (`crtask exec`).
    echo: bool,
}

impl Inner {
    fn emit(&mut self, bytes: &[u8]) {
        let masked = mask(bytes, &self.secrets);
        let _ = self.file.write_all(&masked);
        if self.echo {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&masked);
            let _ = out.flush();
        }
    }
}

impl RunLog {
    pub fn open(path: &Path, secrets: Vec<String>) -> std::io::Result<Self> {
        Self::open_with(path, secrets, false)
    }

    /// Like [`RunLog::open`], also copying the masked log to stdout.
    pub fn open_echo(path: &Path, secrets: Vec<String>) -> std::io::Result<Self> {
        Self::open_with(path, secrets, true)
    }

    fn open_with(path: &Path, secrets: Vec<String>, echo: bool) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        // crtask's own lines are escaped before they are written
        // (`LogSink::line`): a secret holding a newline (a PEM key) is
        // masked in its escaped form too.
        let escaped: Vec<String> = secrets
            .iter()
            .map(|s| crtask_core::domain::text::inert(s).into_owned())
            .filter(|e| !secrets.contains(e))
            .collect();
        secrets.extend(escaped);
        // Longest first so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(RunLog {
            inner: Mutex::new(Inner {
                file,
                pending: Vec::new(),
                secrets,
                echo,
            }),
        })
    }

    /// Writes out any incomplete last line.
    pub fn flush(&self) {
        if let Ok(mut g) = self.inner.lock() {
            let pending = std::mem::take(&mut g.pending);
            if !pending.is_empty() {
                g.emit(&pending);
            }
            let _ = g.file.flush();
        }
    }
}

fn mask(bytes: &[u8], secrets: &[String]) -> Vec<u8> {
    if secrets.is_empty() {
        return bytes.to_vec();
    }
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    for s in secrets {
        if text.contains(s.as_str()) {
            text = text.replace(s.as_str(), MASK);
        }
    }
    text.into_bytes()
}

impl LogSink for RunLog {
    fn add_secret(&self, value: &str) {
        let Ok(mut g) = self.inner.lock() else { return };
        // Each line of a multi-line value too: lines are masked one
        // written chunk at a time, and a chunk may end inside the value.
        let mut new: Vec<String> = vec![value.to_string()];
        new.extend(value.lines().map(str::to_string));
        for v in new {
            if !v.trim().is_empty() && !g.secrets.contains(&v) {
                g.secrets.push(v);
            }
        }
        g.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    fn write(&self, bytes: &[u8]) {
        let Ok(mut g) = self.inner.lock() else { return };
        g.pending.extend_from_slice(bytes);
        // Emit everything up to the last newline; keep the rest pending.
        if let Some(pos) = g.pending.iter().rposition(|b| *b == b'\n') {
            let rest = g.pending.split_off(pos + 1);
            let ready = std::mem::replace(&mut g.pending, rest);
            g.emit(&ready);
        } else if g.pending.len() > 64 * 1024 {
            let ready = std::mem::take(&mut g.pending);
            g.emit(&ready);
        }
    }
}

impl Drop for RunLog {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_added_later_are_masked_from_then_on() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogDir::new(dir.path().to_path_buf()).unwrap();
        let log = logs.open("ca2", Vec::new()).unwrap();
        log.write(b"before pa");
        log.add_secret("pass-1");
        log.add_secret("line-a\nline-b\n");
        log.write(b"ss-1 after\nline-b alone\n");
        log.flush();
        drop(log);
        let text = std::fs::read_to_string(logs.path("ca2")).unwrap();
        assert_eq!(text, format!("before {MASK} after\n{MASK} alone\n"));
    }

    #[test]
    fn secrets_are_masked_even_when_split_across_writes() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogDir::new(dir.path().to_path_buf()).unwrap();
        let log = logs
            .open("ca1", vec!["s3cr3t-value".into(), String::new()])
            .unwrap();
        log.write(b"token is s3cr");
        log.write(b"3t-value here\nsecond line s3cr3t-value\nno newline");
        log.flush();
        drop(log);
        let text = std::fs::read_to_string(logs.path("ca1")).unwrap();
        assert_eq!(text, "token is ***** here\nsecond line *****\nno newline");
        assert!(!text.contains("s3cr3t"));
    }
}
