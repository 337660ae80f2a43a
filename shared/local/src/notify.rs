//! The notification deliverer: sends the runs' start and end notifications
//! queued in the store's outbox ([`crate::store::outbox`]), signed, with
//! bounded retries, and records every attempt.
//!
//! It never holds a run up: a run only writes its notification rows (in
//! the transaction of its status change); this task, on its own, POSTs
//! them with a timeout per attempt and a cap on deliveries in flight. A
//! receiver that is down or hangs costs one attempt's timeout, spent here.
//! Pending deliveries are in the database, so a restarted server resumes
//! them.
//!
//! The signing secret is one file, read at every attempt (edit it to
//! rotate): `--notify-secret-file`, or else `notify.secret` in the data
//! directory, created with a random secret at first start.

use crate::store::outbox::Due;
use crate::store::SqliteStore;
use crate::{Error, Result};
use chrono::Utc;
use crtask_core::domain::text::inert;
use crtask_core::notify::retry::{verdict, AttemptResult, RetryPolicy, Verdict};
use crtask_core::notify::sign::headers;
use crtask_core::notify::{Attempt, DeliveryState};
use crtask_core::signing::Secret;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Default time one attempt may take (connect, send, answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries in flight at once.
const CONCURRENCY: usize = 8;
/// Notifications taken from the outbox per scan.
const BATCH: usize = 32;
/// Longest sleep between two scans of the outbox.
const IDLE_SCAN: Duration = Duration::from_secs(30);
/// The name of the generated secret file in the data directory.
pub const SECRET_FILE_NAME: &str = "notify.secret";

/// How notifications are delivered.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The file holding the signing secret.
    pub secret_file: PathBuf,
    pub policy: RetryPolicy,
    /// Time allowed for one attempt.
    pub timeout: Duration,
}

/// The signing secret's file: `configured` (which must hold a secret
/// now), else `notify.secret` in `data_dir`, created with 32 random bytes
/// (hex) and mode 0600 when missing.
pub fn secret_file(data_dir: &Path, configured: Option<&Path>) -> Result<PathBuf> {
    if let Some(f) = configured {
        let text = std::fs::read_to_string(f).map_err(|e| {
            Error::Config(format!(
                "cannot read notify secret file {}: {e}",
                f.display()
            ))
        })?;
        if Secret::from_file_text(&text).is_empty() {
            return Err(Error::Config(format!(
                "notify secret file {} is empty",
                f.display()
            )));
        }
        return Ok(f.to_path_buf());
    }
    let f = data_dir.join(SECRET_FILE_NAME);
    if !f.exists() {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::Config(format!("no random source for the notify secret: {e}")))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        write_private(&f, &format!("{hex}\n")).map_err(|e| {
            Error::Config(format!(
                "cannot create notify secret file {}: {e}",
                f.display()
            ))
        })?;
        tracing::info!(file = %f.display(), "created the notification signing secret");
    }
    Ok(f)
}

/// Writes `text` to a new file readable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Starts the deliverer on the current runtime.
pub fn start(store: SqliteStore, cfg: NotifyConfig) -> Result<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
        // A redirect is not followed: the signed body goes only where it was sent.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("crtask/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Config(format!("cannot build the notification client: {e}")))?;
    let deliverer = Arc::new(Deliverer { store, cfg, client });
    Ok(tokio::spawn(deliverer.run()))
}

struct Deliverer {
    store: SqliteStore,
    cfg: NotifyConfig,
    client: reqwest::Client,
}

impl Deliverer {
    async fn run(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        let wake = self.store.notification_wake();
        loop {
            let now = Utc::now();
            // In flight until the attempt's timeout (and a margin) at most;
            // after a crash the row is due again then.
            let lease = now + self.cfg.timeout + Duration::from_secs(30);
            let mut pause = Duration::ZERO;
            match self.store.take_due_notifications(now, lease, BATCH).await {
                Ok(due) => {
                    for d in due {
                        let Ok(slot) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let me = self.clone();
                        tokio::spawn(async move {
                            me.deliver(d).await;
                            drop(slot);
                        });
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the notification outbox");
                    pause = Duration::from_secs(1);
                }
            }
            let next = self.store.next_notification_due().await.ok().flatten();
            let wait = next
                .map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(IDLE_SCAN)
                .min(IDLE_SCAN)
                .max(pause);
            if !wait.is_zero() {
                let _ = tokio::time::timeout(wait, wake.notified()).await;
            }
        }
    }

    /// One attempt of `d`, recorded with what follows it.
    async fn deliver(&self, d: Due) {
        let number = d.attempts + 1;
        let time = Utc::now();
        let result = match read_secret(&self.cfg.secret_file) {
            Some(secret) => self.send(&d, &secret, number).await,
            None => AttemptResult::Failed(format!(
                "the notify secret file {} is unreadable or empty",
                self.cfg.secret_file.display()
            )),
        };
        let (state, next) = match verdict(&result) {
            Verdict::Delivered => (DeliveryState::Delivered, None),
            Verdict::GiveUp => (DeliveryState::Failed, None),
            Verdict::Retry => match self.cfg.policy.delay_after(number) {
                Some(delay) => (DeliveryState::Pending, Some(Utc::now() + delay)),
                None => (DeliveryState::Failed, None),
            },
        };
        let (http_status, error) = match result {
            AttemptResult::Status(s) => (Some(s), None),
            AttemptResult::Failed(e) => (None, Some(inert(&e).into_owned())),
        };
        let url = inert(&d.url);
        match (&http_status, &error) {
            (_, Some(e)) => {
                tracing::warn!(delivery = %d.id, url = %url, attempt = number, state = state.as_str(), error = %e, "notification not delivered")
            }
            (Some(s), None) if state != DeliveryState::Delivered => {
                tracing::warn!(delivery = %d.id, url = %url, attempt = number, state = state.as_str(), status = s, "notification refused")
            }
            _ => {
                tracing::debug!(delivery = %d.id, url = %url, attempt = number, "notification delivered")
            }
        }
        let attempt = Attempt {
            number,
            time,
            http_status,
            error,
        };
        if let Err(e) = self
            .store
            .record_notification_attempt(d.seq, attempt, state, next)
            .await
        {
            tracing::error!(delivery = %d.id, error = %e, "cannot record a notification attempt");
        }
    }

    async fn send(&self, d: &Due, secret: &Secret, number: u32) -> AttemptResult {
        let mut req = self
            .client
            .post(&d.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers(secret, d.body.as_bytes(), d.event, &d.id, number) {
            req = req.header(name, value);
        }
        match req.body(d.body.clone()).send().await {
            Ok(resp) => AttemptResult::Status(resp.status().as_u16()),
            Err(e) => AttemptResult::Failed(describe(&e, self.cfg.timeout)),
        }
    }
}

/// The secret in `file` now, if it holds one.
fn read_secret(file: &Path) -> Option<Secret> {
    let text = std::fs::read_to_string(file).ok()?;
    Some(Secret::from_file_text(&text)).filter(|s| !s.is_empty())
}

/// A one-line reason for a failed attempt: the innermost cause, which
/// says what happened ("Connection refused (os error 111)").
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", timeout.as_secs_f64());
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{what}: {cause}")
}
