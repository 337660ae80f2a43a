//! A headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`), for the dashboard's browser tests.
//!
//! Hand-written over the blocking `reqwest` client the harness already
//! uses: the tests need eight W3C WebDriver calls (new session, navigate,
//! find, text, execute, screenshot, delete), plain JSON over HTTP to a
//! driver on loopback; fantoccini and thirtyfour bring their own async
//! HTTP and TLS stacks for that.

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the browser tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    for bin in ["chromium", "chromedriver"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
            .unwrap_or(false);
        if !found {
            return Some(format!(
                "`{bin}` is not installed (apt-get install chromium chromium-driver; infra/local/setup.sh does)"
            ));
        }
    }
    None
}

/// A chromedriver process and one headless browser session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn start() -> Result<Browser> {
        let port = crate::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start chromedriver")?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        let start = Instant::now();
        while http.get(format!("{base}/status")).send().is_err() {
            if start.elapsed() > Duration::from_secs(20) {
                bail!("chromedriver did not answer within 20 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir()?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1360,1000",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        let v = b.call("POST", "/session", Some(caps))?;
        b.session = v["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no session id: {v}"))?
            .to_string();
        Ok(b)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{}", self.base, path);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let resp = req.send()?;
        let status = resp.status();
        let v: Value = resp.json()?;
        if !status.is_success() {
            bail!("WebDriver {method} {path}: {status}: {}", v["value"]);
        }
        Ok(v.get("value").cloned().unwrap_or(v))
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn goto(&self, url: &str) -> Result<()> {
        self.call("POST", &self.s("/url"), Some(json!({"url": url})))?;
        Ok(())
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub fn exec(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The visible text of the first element matching `css`, if any.
    pub fn text(&self, css: &str) -> Result<Option<String>> {
        let v = self.exec(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
            vec![json!(css)],
        )?;
        Ok(v.as_str().map(str::to_string))
    }

    /// Waits (up to `secs`) until `css` matches an element whose text
    /// satisfies `pred`; returns that text.
    pub fn wait_text(&self, css: &str, secs: u64, pred: impl Fn(&str) -> bool) -> Result<String> {
        let start = Instant::now();
        loop {
            let t = self.text(css)?;
            if let Some(t) = &t {
                if pred(t) {
                    return Ok(t.clone());
                }
            }
            if start.elapsed() > Duration::from_secs(secs) {
                bail!("after {secs} s, {css} shows {t:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Types `text` into the input matched by `css` and submits its form.
    pub fn submit(&self, css: &str, text: &str) -> Result<()> {
        let el = self.call(
            "POST",
            &self.s("/element"),
            Some(json!({"using": "css selector", "value": css})),
        )?;
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("no element {css}: {el}"))?
            .to_string();
        self.call(
            "POST",
            &self.s(&format!("/element/{id}/value")),
            Some(json!({"text": format!("{text}\u{E007}")})),
        )?;
        Ok(())
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Result<Vec<u8>> {
        let v = self.call("GET", &self.s("/screenshot"), None)?;
        let b64 = v.as_str().ok_or_else(|| anyhow!("no screenshot"))?;
        Ok(base64::engine::general_purpose::STANDARD.decode(b64)?)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &self.s(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
