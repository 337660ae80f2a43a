//! A private git repository for tests: served over HTTP's "dumb" protocol
//! by a server that answers only requests carrying the token (as a private
//! repository on a git host does).

use crate::{show, GitServer};
use crtask_testkit::aws::http::{read_message, serve};
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// A git repository served over HTTP's "dumb" protocol by a server that
/// answers only requests carrying `Authorization: Basic` for the token
/// (as a private repository on a git host does); 401 otherwise.
pub struct PrivateGit {
    pub url: String,
    /// The `Authorization` header of every request (None when absent).
    pub seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl PrivateGit {
    pub fn start(root: PathBuf, token: &str) -> PrivateGit {
        use base64::Engine as _;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"))
        );
        let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let log = seen.clone();
        let addr = serve(move |stream| {
            let mut out = match stream.try_clone() {
                Ok(s) => s,
                Err(_) => return,
            };
            let mut input = BufReader::new(stream);
            let Ok(Some(req)) = read_message(&mut input, false) else {
                return;
            };
            let auth = req.header("authorization").map(str::to_string);
            log.lock().unwrap().push(auth.clone());
            let path = req
                .first
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .split('?')
                .next()
                .unwrap_or("/")
                .to_string();
            let file = root.join(path.trim_start_matches('/'));
            let (status, body) = if auth.as_deref() != Some(expected.as_str()) {
                ("401 Unauthorized", b"no access\n".to_vec())
            } else if path.contains("..") || !file.is_file() {
                ("404 Not Found", b"not found\n".to_vec())
            } else {
                ("200 OK", std::fs::read(&file).unwrap_or_default())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
                body.len(),
                if status.starts_with("401") {
                    "WWW-Authenticate: Basic realm=\"git\"\r\n"
                } else {
                    ""
                }
            );
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(&body);
        })
        .unwrap_or_else(|e| panic!("git http server: {e}"));
        PrivateGit {
            url: format!("http://{addr}/repo.git"),
            seen,
        }
    }
}

/// A bare repository (from [`GitServer`]'s working clone) made servable
/// over dumb HTTP.
pub fn publish(git: &GitServer) -> PathBuf {
    let bare = git.root.path().join("repo.git");
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(&bare)
        .arg("update-server-info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    git.root.path().to_path_buf()
}
