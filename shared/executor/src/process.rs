//! Supervision of every child process an engine or git starts: its own
//! process group with a parent-death signal (so cancelling a run, or the
//! server dying, takes its whole process tree down), and its output pumped
//! into the run's log.

use crtask_core::ports::LogSink;
use crtask_core::{Error as CoreError, Result};
use std::process::Stdio;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

/// Puts the child in its own process group and asks the kernel to kill
/// it if this process dies (so a SIGKILLed server leaves no build behind).
#[allow(unsafe_code)]
pub fn own_group(cmd: &mut Command) {
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            Ok(())
        });
    }
}

/// Kills the child's whole process group when dropped, unless disarmed.
pub struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    pub fn new(child: &Child) -> Self {
        GroupGuard {
            pgid: child.id().map(|p| p as i32),
        }
    }
    pub fn disarm(mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.filter(|p| *p > 1) {
            // SAFETY: plain syscall; a stale group id at worst hits nothing.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Spawns `cmd` and copies its output to `log`; with `capture_stdout`, stdout
/// is returned instead of logged. The child's process group is killed if
/// this future is dropped (cancellation, timeout).
pub async fn run_streaming(
    cmd: &mut Command,
    log: &dyn LogSink,
    capture_stdout: bool,
) -> Result<(i32, String)> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        CoreError::Builder(format!(
            "cannot start {:?}: {e}",
            cmd.as_std().get_program()
        ))
    })?;
    let guard = GroupGuard::new(&child);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut captured = Vec::new();
    let out_fut = async {
        if let Some(out) = stdout {
            if capture_stdout {
                let mut out = out;
                let _ = out.read_to_end(&mut captured).await;
            } else {
                pump(out, log).await;
            }
        }
    };
    let err_fut = async {
        if let Some(err) = stderr {
            pump(err, log).await;
        }
    };
    let (_, _, status) = tokio::join!(out_fut, err_fut, wait(&mut child));
    let status = status?;
    guard.disarm();
    let code = status.code().unwrap_or(128 + status_signal(&status));
    Ok((code, String::from_utf8_lossy(&captured).into_owned()))
}

async fn wait(child: &mut Child) -> Result<std::process::ExitStatus> {
    child
        .wait()
        .await
        .map_err(|e| CoreError::Builder(format!("waiting for the engine failed: {e}")))
}

fn status_signal(s: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.signal().unwrap_or(1)
}

async fn pump(mut r: impl AsyncRead + Unpin, log: &dyn LogSink) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut lines = Lines::default();
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => lines.feed(&buf[..n], log),
        }
    }
    lines.finish(log);
}

/// Hands one stream's output to a log in whole lines. stdout and stderr
/// share a log (and a step's `[id] ` prefixer): were a read to end inside
/// a line, the other stream's next chunk would be spliced into it.
#[derive(Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Longest line held back waiting for its end.
    const MAX: usize = 64 * 1024;

    pub fn feed(&mut self, bytes: &[u8], log: &dyn LogSink) {
        self.pending.extend_from_slice(bytes);
        if let Some(pos) = self.pending.iter().rposition(|b| *b == b'\n') {
            let rest = self.pending.split_off(pos + 1);
            log.write(&self.pending);
            self.pending = rest;
        } else if self.pending.len() > Self::MAX {
            log.write(&std::mem::take(&mut self.pending));
        }
    }

    /// Writes out an unfinished last line.
    pub fn finish(&mut self, log: &dyn LogSink) {
        if !self.pending.is_empty() {
            log.write(&std::mem::take(&mut self.pending));
        }
    }
}

/// The line of a command's output that best explains its failure: the last
/// one mentioning an error, else the last non-blank one.
pub fn first_error_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| l.to_ascii_lowercase().contains("error"))
        .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("no output")
        .trim()
        .to_string()
}

/// Collects what a command printed while also logging it, for error messages.
pub struct Tee<'a> {
    log: &'a dyn LogSink,
    seen: std::sync::Mutex<Vec<u8>>,
}

impl LogSink for Tee<'_> {
    fn write(&self, bytes: &[u8]) {
        self.log.write(bytes);
        if let Ok(mut s) = self.seen.lock() {
            s.extend_from_slice(bytes);
            let len = s.len();
            if len > 16 * 1024 {
                s.drain(..len - 16 * 1024);
            }
        }
    }
}

impl<'a> Tee<'a> {
    pub fn new(log: &'a dyn LogSink) -> Self {
        Tee {
            log,
            seen: std::sync::Mutex::new(Vec::new()),
        }
    }
    pub fn text(&self) -> String {
        self.seen
            .lock()
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Record(std::sync::Mutex<Vec<Vec<u8>>>);
    impl LogSink for Record {
        fn write(&self, bytes: &[u8]) {
            self.0.lock().unwrap().push(bytes.to_vec());
        }
    }

    #[test]
    fn streams_reach_the_log_in_whole_lines() {
        let log = Record(std::sync::Mutex::new(Vec::new()));
        let (mut out, mut err) = (Lines::default(), Lines::default());
        out.feed(b"out 1\nout ", &log);
        err.feed(b"err 1\n", &log);
        out.feed(b"2\nlast", &log);
        out.finish(&log);
        err.finish(&log);
        let writes = log.0.into_inner().unwrap();
        assert_eq!(
            writes,
            [
                b"out 1\n".to_vec(),
                b"err 1\n".to_vec(),
                b"out 2\n".to_vec(),
                b"last".to_vec()
            ]
        );
    }
}
