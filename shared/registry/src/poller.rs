//! The digest poller's round: which registries are due, one `HEAD` per
//! distinct tracked reference, and what each answer is recorded as.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use crtask_core::domain::model::{EventRecord, EventSource, Outcome, Run};
use crtask_core::ports::{Clock, Store};
use crtask_core::trigger::registry;
use crtask_core::trigger::registry::credentials::CredentialSource;
use crtask_core::trigger::registry::handler::UpdateDeps;
use crtask_core::trigger::registry::poll::{self, Backoff};

use crate::client::{Probe, RegistryClient};
use crate::config::PollConfig;

/// What one [`Poller::round`] did.
#[derive(Debug, Clone, Default)]
pub struct PollRound {
    /// Runs recorded (`Queued`, not dispatched): the caller dispatches them
    /// after its settle window.
    pub new_runs: Vec<Run>,
    /// `HEAD` requests sent this round.
    pub requests: usize,
}

/// The poller and its in-memory state: the last digest seen per reference,
/// per-registry backoff and when each registry is next due. The state lives
/// as long as the value (a process, or a warm Lambda); after a restart the
/// first answer per reference is handed to [`crtask_core::trigger::registry::handler`], which
/// compares it with the digest each task last built from.
#[derive(Debug)]
pub struct Poller {
    cfg: PollConfig,
    client: RegistryClient,
    last: HashMap<String, String>,
    backoff: HashMap<String, Backoff>,
    next_due: HashMap<String, DateTime<Utc>>,
    /// The credential problem last recorded per reference: recorded once,
    /// again only when it changes or after the reference answered.
    refused: HashMap<String, String>,
    seed: u32,
}

impl Poller {
    /// A poller with empty state (every registry is due at once).
    pub fn new(cfg: PollConfig) -> Self {
        let nanos = Utc::now().timestamp_subsec_nanos();
        let seed = (std::process::id() ^ nanos).wrapping_mul(2_654_435_761) | 1;
        Poller {
            client: RegistryClient::new(cfg.insecure.clone()).with_endpoints(cfg.endpoints.clone()),
            cfg,
            last: HashMap::new(),
            backoff: HashMap::new(),
            next_due: HashMap::new(),
            refused: HashMap::new(),
            seed,
        }
    }

    /// Uses `source` for registries that want credentials (ECR tokens,
    /// stored credentials).
    pub fn with_credentials(mut self, source: Arc<dyn CredentialSource>) -> Self {
        self.client = self.client.with_credentials(source);
        self
    }

    /// The settings.
    pub fn config(&self) -> &PollConfig {
        &self.cfg
    }

    fn rnd(&mut self) -> u32 {
        // xorshift: jitter only, no need for a real generator.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 17;
        self.seed ^= self.seed << 5;
        self.seed
    }

    /// One pass at `clock.now()`: polls every registry whose interval is due
    /// (jittered ±10 %), honouring backoff; records events as the local
    /// poller always has (`Unchanged`, `Ignored` with the reason, and changed
    /// digests through [`registry::handler::process_and_record`] with
    /// [`EventSource::Poll`], cause `poll`); returns the runs recorded
    /// (`Queued`) that the caller must dispatch after its settle window,
    /// plus how many `HEAD` requests were made. A registry that asks us to
    /// slow down is left alone for the rest of the round.
    pub async fn round(&mut self, store: &dyn Store, clock: &dyn Clock) -> PollRound {
        let mut out = PollRound::default();
        let tracked = match store.tracked_images().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "poller cannot read the dependency index");
                return out;
            }
        };
        let plan = poll::plan_round(&tracked);
        // Forget references no task depends on any more.
        let planned: BTreeSet<&String> = plan.values().flatten().collect();
        self.last.retain(|image, _| planned.contains(image));
        self.refused.retain(|image, _| planned.contains(image));
        let now = clock.now();
        for (registry, refs) in &plan {
            let interval = self.cfg.interval_for(registry);
            if interval.is_zero() {
                continue;
            }
            let early = chrono::Duration::from_std(self.cfg.tick / 2).unwrap_or_default();
            if self
                .next_due
                .get(registry)
                .is_some_and(|due| now.checked_add_signed(early).unwrap_or(now) < *due)
            {
                continue;
            }
            if self.backoff.get(registry).is_some_and(|b| !b.ready(now)) {
                continue;
            }
            let wait = poll::jittered(interval, self.rnd());
            let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            let due = now
                .checked_add_signed(wait)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            self.next_due.insert(registry.clone(), due);
            for image in refs {
                if !self.poll_one(store, clock, registry, image, &mut out).await {
                    break;
                }
            }
        }
        out
    }

    /// Polls one reference; `false` when its registry went into backoff.
    async fn poll_one(
        &mut self,
        store: &dyn Store,
        clock: &dyn Clock,
        registry: &str,
        image: &str,
        out: &mut PollRound,
    ) -> bool {
        let head = self.client.head_manifest(image, clock.now()).await;
        out.requests += head.requests;
        if !matches!(head.probe, Probe::Unauthorized(_)) {
            self.refused.remove(image);
        }
        match head.probe {
            Probe::Digest { digest, media_type } => {
                if let Some(b) = self.backoff.get_mut(registry) {
                    b.on_success();
                }
                let previous = self.last.insert(image.to_string(), digest.clone());
                let changed = previous.as_ref() != Some(&digest);
                if !changed {
                    record(
                        store,
                        clock,
                        image,
                        Outcome::Unchanged,
                        format!("{image} is still {digest}"),
                    )
                    .await;
                    return true;
                }
                let Ok(r) = crtask_core::domain::imageref::ImageRef::parse(image) else {
                    return true;
                };
                let mut update = poll::poll_update(&r, &digest, media_type.as_deref());
                update.first_sighting = previous.is_none();
                // An index that moved: read which manifest each platform
                // now has, so that a multi-platform task rebuilds only when
                // one of its own platforms moved (one GET per change; a
                // first sighting moves nothing and needs none).
                if !update.first_sighting
                    && media_type
                        .as_deref()
                        .is_some_and(crtask_core::trigger::registry::event::is_index_media_type)
                {
                    let by_digest = crtask_core::domain::imageref::ImageRef {
                        tag: None,
                        digest: Some(digest.clone()),
                        ..r.clone()
                    };
                    out.requests += 1;
                    update.platforms = self.client.index_platforms(&by_digest, clock.now()).await;
                }
                let deps = UpdateDeps {
                    store,
                    clock,
                    registry: self.cfg.registry.as_deref(),
                };
                match registry::handler::process_and_record(
                    &deps,
                    &update,
                    EventSource::Poll,
                    "poll",
                    serde_json::json!({}),
                )
                .await
                {
                    Ok((_, runs)) => out.new_runs.extend(runs),
                    Err(e) => {
                        // Try again next round rather than lose the change.
                        self.last.remove(image);
                        tracing::warn!(image, error = %e, "poll result could not be recorded");
                    }
                }
                true
            }
            Probe::Backoff {
                retry_after,
                reason,
            } => {
                let wait = self
                    .backoff
                    .entry(registry.to_string())
                    .or_default()
                    .on_failure(clock.now(), retry_after);
                record(
                    store,
                    clock,
                    image,
                    Outcome::Ignored,
                    format!("{reason}; backing off {} s", wait.as_secs()),
                )
                .await;
                false
            }
            Probe::Unauthorized(why) => {
                // Every reference of the registry would be refused alike:
                // one recorded reason per reference, not one per round.
                if self.refused.get(image) != Some(&why) {
                    tracing::warn!(image, reason = %why, "registry refused the poll");
                    record(store, clock, image, Outcome::Rejected, why.clone()).await;
                    self.refused.insert(image.to_string(), why);
                }
                true
            }
            Probe::Failed(why) => {
                record(store, clock, image, Outcome::Ignored, why).await;
                true
            }
        }
    }
}

/// Records a poll event that started no run.
async fn record(
    store: &dyn Store,
    clock: &dyn Clock,
    image: &str,
    outcome: Outcome,
    reason: String,
) {
    let id = match store.next_event_id().await {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(image, error = %e, "poll event could not be recorded");
            return;
        }
    };
    let event = EventRecord {
        id,
        source: EventSource::Poll,
        delivery_id: None,
        received_at: clock.now(),
        outcome,
        reason,
        runs: Vec::new(),
        detail: serde_json::json!({"image": image}),
    };
    if let Err(e) = store.record_event(&event).await {
        tracing::warn!(image, error = %e, "poll event could not be recorded");
    }
}
