//! Git contexts: clone a repository at run time and check out a reference.
//! URLs and references are passed to git as arguments, never through a shell.

use crate::buildah::run_streaming;
use crtask_core::ports::LogSink;
use crtask_core::{Error as CoreError, Result};
use std::path::Path;
use tokio::process::Command;

fn git() -> Command {
    let mut c = Command::new("git");
    c.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null());
    crate::worker::proc::own_group(&mut c);
    c
}

async fn run(mut c: Command, log: &dyn LogSink) -> Result<(i32, String)> {
    run_streaming(&mut c, log, true).await
}

/// Clones `url` into `dest` (which must not exist) and checks out `reference`
/// (a branch, tag or commit; the default branch when `None`). Returns the
/// commit checked out.
pub async fn clone(
    url: &str,
    reference: Option<&str>,
    dest: &Path,
    log: &dyn LogSink,
) -> Result<String> {
    log.line(&format!("crtask: cloning {url}"));
    let mut c = git();
    c.args(["clone", "--quiet", "--no-checkout", "--", url])
        .arg(dest);
    let (code, _) = run(c, log).await?;
    if code != 0 {
        return Err(CoreError::invalid(format!(
            "cannot clone {url} (git exited with {code}); see the run's log"
        )));
    }
    let commit = match reference {
        None => resolve(dest, "HEAD", log).await?,
        Some(r) => {
            let mut found = None;
            for cand in [
                format!("origin/{r}"),
                format!("refs/tags/{r}"),
                r.to_string(),
            ] {
                if let Some(c) = resolve(dest, &cand, log).await? {
                    found = Some(c);
                    break;
                }
            }
            if found.is_none() {
                // A commit or ref not advertised as a branch (e.g. a pull request head).
                let mut c = git();
                c.arg("-C")
                    .arg(dest)
                    .args(["fetch", "--quiet", "origin", "--", r]);
                let (code, _) = run(c, log).await?;
                if code == 0 {
                    found = resolve(dest, "FETCH_HEAD", log).await?;
                }
            }
            found
        }
    };
    let Some(commit) = commit else {
        return Err(CoreError::invalid(format!(
            "reference '{}' not found in {url}",
            reference.unwrap_or("HEAD")
        )));
    };
    let mut c = git();
    c.arg("-C")
        .arg(dest)
        .args([
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            "--detach",
        ])
        .arg(&commit)
        .arg("--");
    let (code, _) = run(c, log).await?;
    if code != 0 {
        return Err(CoreError::invalid(format!(
            "cannot check out {commit} of {url}"
        )));
    }
    log.line(&format!("crtask: checked out {commit}"));
    Ok(commit)
}

async fn resolve(dir: &Path, rev: &str, log: &dyn LogSink) -> Result<Option<String>> {
    let mut c = git();
    c.arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .arg(format!("{rev}^{{commit}}"));
    let (code, out) = run(c, log).await?;
    let out = out.trim();
    Ok((code == 0 && out.len() >= 40).then(|| out.to_string()))
}
