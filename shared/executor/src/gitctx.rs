//! Git contexts: clone a repository at run time and check out a reference.
//! URLs and references are passed to git as arguments, never through a shell.

use crate::process::{own_group, run_streaming};
use crtask_core::ports::LogSink;
use crtask_core::{Error as CoreError, Result};
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// Tokens for private repositories over HTTPS: `[HOST=]FILE` entries. The
/// token is read from its file at each clone and handed to git as an HTTP
/// header through the environment, so it never appears in argv or logs.
/// With a HOST it is sent only to that host; without, to every http(s) host.
#[derive(Clone, Default)]
pub struct GitAuth {
    entries: Vec<(Option<String>, PathBuf)>,
    /// A task's own token (`--git-access-token`), sent to the host of the
    /// task's context only: it wins over the server's token files.
    task: Option<(String, String)>,
}

impl std::fmt::Debug for GitAuth {
    /// Names the token files; a task token is only said to be there.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitAuth")
            .field("entries", &self.entries)
            .field("task_token", &self.task.is_some())
            .finish()
    }
}

/// The `host[:port]` and `host` of an http(s) URL, lowercased.
fn http_host(url: &str) -> Option<(String, String)> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    let host = hostport.split(':').next().unwrap_or(hostport);
    Some((hostport.to_string(), host.to_string()))
}

fn basic_header(token: &str) -> String {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    format!("Authorization: Basic {basic}")
}

impl GitAuth {
    /// These settings plus a task's token for the host of `url` (the
    /// task's git context); an empty token or a non-HTTP URL adds nothing.
    pub fn with_task_token(&self, url: &str, token: &str) -> GitAuth {
        let mut out = self.clone();
        let token = token.trim();
        if let (Some((hostport, _)), false) = (http_host(url), token.is_empty()) {
            out.task = Some((hostport, token.to_string()));
        }
        out
    }

    pub fn parse(specs: &[String]) -> crate::Result<GitAuth> {
        let mut entries = Vec::new();
        for s in specs {
            let (host, file) = match s.split_once('=') {
                Some((h, f)) if !h.is_empty() && !h.contains('/') => {
                    (Some(h.to_ascii_lowercase()), f)
                }
                _ => (None, s.as_str()),
            };
            if file.is_empty() {
                return Err(crate::Error::Config(format!(
                    "git token '{s}' must be [HOST=]FILE"
                )));
            }
            entries.push((host, PathBuf::from(file)));
        }
        Ok(GitAuth {
            entries,
            task: None,
        })
    }

    /// The `Authorization` header value for `url`, if a token applies.
    fn header_for(&self, url: &str) -> Option<String> {
        let (hostport, host) = http_host(url)?;
        let (hostport, host) = (hostport.as_str(), host.as_str());
        if let Some((h, token)) = &self.task {
            if h == hostport {
                return Some(basic_header(token));
            }
        }
        let (_, file) = self.entries.iter().find(|(h, _)| match h {
            None => true,
            Some(h) => h == hostport || h == host,
        })?;
        let token = std::fs::read_to_string(file).ok()?;
        let token = token.trim();
        if token.is_empty() {
            return None;
        }
        Some(basic_header(token))
    }

    fn apply(&self, cmd: &mut Command, url: &str) {
        if let Some(h) = self.header_for(url) {
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", h);
        }
    }
}

fn git() -> Command {
    let mut c = Command::new("git");
    c.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null());
    own_group(&mut c);
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
    auth: &GitAuth,
) -> Result<String> {
    log.line(&format!("crtask: cloning {url}"));
    let mut c = git();
    auth.apply(&mut c, url);
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
                auth.apply(&mut c, url);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_go_only_to_their_host() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("t");
        std::fs::write(&f, "s3cret\n").unwrap();
        let auth = GitAuth::parse(&[format!("git.example.com={}", f.display())]).unwrap();
        let h = auth
            .header_for("https://git.example.com/org/repo.git")
            .unwrap();
        assert_eq!(h, "Authorization: Basic eC1hY2Nlc3MtdG9rZW46czNjcmV0");
        assert!(auth
            .header_for("https://user@git.example.com:443/x.git")
            .is_some());
        assert!(auth.header_for("https://evil.example.org/x.git").is_none());
        assert!(auth.header_for("git://git.example.com/x.git").is_none());
        let any = GitAuth::parse(&[f.display().to_string()]).unwrap();
        assert!(any.header_for("http://127.0.0.1:8080/r.git").is_some());
        assert!(GitAuth::parse(&["h=".into()]).is_err());
    }

    #[test]
    fn a_task_token_goes_only_to_its_context_host_and_wins() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("t");
        std::fs::write(&f, "server\n").unwrap();
        let server = GitAuth::parse(&[f.display().to_string()]).unwrap();
        let auth = server.with_task_token("https://git.example.com:8443/org/r.git", "task-tok");
        assert_eq!(
            auth.header_for("https://git.example.com:8443/org/other.git"),
            Some(basic_header("task-tok"))
        );
        // Another host gets the server's token, not the task's.
        assert_eq!(
            auth.header_for("https://other.example.com/x.git"),
            Some(basic_header("server"))
        );
        let bare = GitAuth::default().with_task_token("https://h.example/r.git", "t");
        assert!(bare.header_for("https://h.example.evil/r.git").is_none());
        let secret = GitAuth::default().with_task_token("https://h.example/r.git", "zz-tok-zz");
        assert!(!format!("{secret:?}").contains("zz-tok-zz"));
        assert!(GitAuth::default()
            .with_task_token("https://h.example/r.git", " ")
            .header_for("https://h.example/r.git")
            .is_none());
        assert!(GitAuth::default()
            .with_task_token("git@h.example:r.git", "t")
            .header_for("https://h.example/r.git")
            .is_none());
    }
}
