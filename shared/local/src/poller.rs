//! The digest poller: for registries that send no notifications (Docker
//! Hub, MCR, GHCR, Quay, any OCI registry), one `HEAD` per distinct tracked
//! reference per interval, anonymous token flow, `429`/`Retry-After`
//! honoured with per-registry backoff. A changed digest goes down the same
//! path as a registry notification ([`crtask_core::reghook`]).

use crtask_core::imageref::ImageRef;
use crtask_core::model::{EventRecord, EventSource, Outcome};
use crtask_core::poll::{self, Backoff};
use crtask_core::ports::{Clock, Store};
use crtask_core::reghook::{self, UpdateDeps};
use crtask_core::verify::Headers;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Poller settings.
#[derive(Debug, Clone)]
pub struct PollConfig {
    /// Default interval; zero turns polling off.
    pub interval: Duration,
    /// Per-registry intervals.
    pub per_registry: BTreeMap<String, Duration>,
    pub insecure: Vec<String>,
    pub registry: Option<String>,
    pub settle_window: Duration,
}

impl PollConfig {
    /// Parses `HOST=SECS` entries.
    pub fn parse_per_registry(specs: &[String]) -> crate::Result<BTreeMap<String, Duration>> {
        specs
            .iter()
            .map(|s| match s.split_once('=') {
                Some((h, n)) if !h.is_empty() => n
                    .trim()
                    .parse::<u64>()
                    .map(|n| (h.trim().to_ascii_lowercase(), Duration::from_secs(n)))
                    .map_err(|_| {
                        crate::Error::Config(format!("poll interval '{s}' must be HOST=SECONDS"))
                    }),
                _ => Err(crate::Error::Config(format!(
                    "poll interval '{s}' must be HOST=SECONDS"
                ))),
            })
            .collect()
    }

    fn interval_for(&self, registry: &str) -> Duration {
        self.per_registry
            .get(registry)
            .copied()
            .unwrap_or(self.interval)
    }
}

/// What a HEAD told us.
enum Probe {
    Digest(String, Option<String>),
    /// The registry asks us to slow down.
    Backoff(Option<Duration>, String),
    Failed(String),
}

struct Poller {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    queue: UnboundedSender<String>,
    cfg: PollConfig,
    http: reqwest::Client,
    last: HashMap<String, String>,
    backoff: HashMap<String, Backoff>,
    next_due: HashMap<String, tokio::time::Instant>,
    seed: u32,
}

/// Starts the poller on the current runtime (nothing when the interval is zero).
pub fn start(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    queue: UnboundedSender<String>,
    cfg: PollConfig,
) {
    if cfg.interval.is_zero() && cfg.per_registry.values().all(|d| d.is_zero()) {
        return;
    }
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap_or_default();
    let seed = std::process::id().wrapping_mul(2_654_435_761);
    let mut p = Poller {
        store,
        clock,
        queue,
        cfg,
        http,
        last: HashMap::new(),
        backoff: HashMap::new(),
        next_due: HashMap::new(),
        seed,
    };
    tokio::spawn(async move {
        loop {
            p.tick().await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
}

impl Poller {
    fn rnd(&mut self) -> u32 {
        // xorshift: jitter only, no need for a real generator.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 17;
        self.seed ^= self.seed << 5;
        self.seed
    }

    async fn tick(&mut self) {
        let tracked = match self.store.tracked_images().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "poller cannot read the dependency index");
                return;
            }
        };
        let now = tokio::time::Instant::now();
        for (registry, refs) in poll::plan_round(&tracked) {
            let interval = self.cfg.interval_for(&registry);
            if interval.is_zero() {
                continue;
            }
            let due = *self.next_due.entry(registry.clone()).or_insert(now);
            if now < due {
                continue;
            }
            if let Some(b) = self.backoff.get(&registry) {
                if !b.ready(self.clock.now()) {
                    continue;
                }
            }
            let jitter = poll::jittered(interval, self.rnd());
            self.next_due.insert(registry.clone(), now + jitter);
            for image in refs {
                self.poll_one(&registry, &image).await;
            }
        }
    }

    async fn poll_one(&mut self, registry: &str, image: &str) {
        let Ok(r) = ImageRef::parse(image) else {
            return;
        };
        match self.head(&r).await {
            Probe::Digest(digest, media) => {
                if let Some(b) = self.backoff.get_mut(registry) {
                    b.on_success();
                }
                let changed = self.last.get(image) != Some(&digest);
                self.last.insert(image.to_string(), digest.clone());
                if changed {
                    let update = poll::poll_update(&r, &digest, media.as_deref());
                    let deps = UpdateDeps {
                        store: self.store.as_ref(),
                        clock: self.clock.as_ref(),
                        registry: self.cfg.registry.as_deref(),
                    };
                    match reghook::process_and_record(
                        &deps,
                        &update,
                        EventSource::Poll,
                        "poll",
                        serde_json::json!({}),
                    )
                    .await
                    {
                        Ok((_, runs)) => crate::worker::dispatch_later(
                            self.queue.clone(),
                            runs.into_iter().map(|r| r.run_id).collect(),
                            self.cfg.settle_window,
                        ),
                        Err(e) => {
                            tracing::warn!(image, error = %e, "poll result could not be recorded")
                        }
                    }
                } else {
                    self.record(
                        image,
                        Outcome::Unchanged,
                        format!("{image} is still {digest}"),
                    )
                    .await;
                }
            }
            Probe::Backoff(retry_after, why) => {
                let wait = self
                    .backoff
                    .entry(registry.to_string())
                    .or_default()
                    .on_failure(self.clock.now(), retry_after);
                self.record(
                    image,
                    Outcome::Ignored,
                    format!("{why}; backing off {} s", wait.as_secs()),
                )
                .await;
            }
            Probe::Failed(why) => self.record(image, Outcome::Ignored, why).await,
        }
    }

    async fn record(&self, image: &str, outcome: Outcome, reason: String) {
        let Ok(id) = self.store.next_event_id().await else {
            return;
        };
        let _ = self
            .store
            .record_event(&EventRecord {
                id,
                source: EventSource::Poll,
                delivery_id: None,
                received_at: self.clock.now(),
                outcome,
                reason,
                runs: Vec::new(),
                detail: serde_json::json!({"image": image}),
            })
            .await;
    }

    async fn head(&self, r: &ImageRef) -> Probe {
        let url = poll::manifest_url(r, &self.cfg.insecure);
        let mut token: Option<String> = None;
        for _ in 0..2 {
            let mut req = self.http.head(&url).header("Accept", poll::MANIFEST_ACCEPT);
            if let Some(t) = &token {
                req = req.bearer_auth(t);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => return Probe::Failed(format!("HEAD {url} failed: {e}")),
            };
            let status = resp.status().as_u16();
            let pairs: Vec<(String, String)> = resp
                .headers()
                .iter()
                .filter_map(|(k, v)| {
                    v.to_str()
                        .ok()
                        .map(|v| (k.as_str().to_string(), v.to_string()))
                })
                .collect();
            let headers = Headers::new(&pairs);
            if resp.status().is_success() {
                return match poll::digest_from_headers(&headers) {
                    Some(d) => Probe::Digest(
                        d,
                        resp.headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                    ),
                    None => Probe::Failed(format!("{url} answered without Docker-Content-Digest")),
                };
            }
            if poll::is_backoff_status(status) {
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| poll::parse_retry_after(v, self.clock.now()));
                return Probe::Backoff(retry, format!("{url} answered {status}"));
            }
            if status == 401 && token.is_none() {
                let challenge = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .and_then(poll::parse_www_authenticate);
                let Some(c) = challenge else {
                    return Probe::Failed(format!("{url} wants credentials crtask does not have"));
                };
                let scope = poll::pull_scope(r);
                match self.http.get(c.token_url(Some(&scope))).send().await {
                    Ok(t) if t.status().is_success() => {
                        let body = t.bytes().await.unwrap_or_default();
                        match poll::parse_token_response(&body) {
                            Ok(tr) => token = Some(tr.token),
                            Err(e) => return Probe::Failed(format!("token for {url}: {e}")),
                        }
                    }
                    Ok(t) => {
                        return Probe::Failed(format!(
                            "anonymous token for {url} refused ({})",
                            t.status()
                        ))
                    }
                    Err(e) => return Probe::Failed(format!("anonymous token for {url}: {e}")),
                }
                continue;
            }
            return Probe::Failed(format!("{url} answered {status}"));
        }
        Probe::Failed(format!("{url} refused the anonymous token"))
    }
}
