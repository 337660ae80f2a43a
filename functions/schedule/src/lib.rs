//! The `schedule` function: invoked by EventBridge Scheduler with
//!
//! - a timer's signed payload (see [`crtask_core::trigger::timer::scheduler`]): verified against
//!   every valid version of the signing secret and turned into at most one
//!   run per (task, timer, scheduled time) by
//!   [`crtask_core::trigger::timer::handler::fire_scheduled`], which also records the
//!   event; forged, malformed and stale payloads are answered `rejected`
//!   (never an error, so Lambda does not retry them);
//! - the stack's poll tick (`{"kind":"poll-tick",...}`): one round of the
//!   base-image poller ([`crtask_registry::Poller`], kept across warm
//!   invocations); the runs it records are dispatched after the settle
//!   window;
//! - continuous patching's tick (`{"kind":"patch-tick",...}`, from the
//!   schedule `crtask patch config set` creates): the stored configuration's
//!   due occurrence, one Patch run per matching tag
//!   ([`crtask_core::patch::continuous::tick`]), tags listed with ECR
//!   `ListImages`.
//!
//! A store, Secrets Manager or CodeBuild failure is an error, so the
//! asynchronous invocation is retried (the occurrence key keeps a retried
//! delivery to one run).

use crtask_aws::config::{self, FunctionEnv};
use crtask_aws::SecretsManagerSecrets;
use crtask_core::ports::{Builder, Clock, Store, SystemClock};
use crtask_core::trigger::timer;
use crtask_core::trigger::timer::handler::ScheduledDeps;
use crtask_core::trigger::timer::scheduler::Skew;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The environment variable naming the schedule signing secret (its ARN).
pub const SECRET_ARN_VAR: &str = "CRTASK_SCHEDULE_SECRET_ARN";
/// Seconds between two polls of one registry (the poll tick).
pub const POLL_INTERVAL_VAR: &str = "CRTASK_POLL_INTERVAL";
/// Seconds to wait after a poll round before its runs are dispatched.
pub const SETTLE_WINDOW_VAR: &str = "CRTASK_SETTLE_WINDOW";
/// Registries whose pushes reach the stack as events (its own ECR, through
/// the EventBridge rule), comma-separated: never polled.
pub const EVENT_REGISTRIES_VAR: &str = "CRTASK_EVENT_REGISTRIES";
/// The prefix of registry credential secrets (`<prefix>/registries/<host>`:
/// the stack name).
pub const CREDENTIALS_PREFIX_VAR: &str = "CRTASK_REGISTRY_CREDENTIALS_PREFIX";
/// FOR TESTS ONLY: `HOST=URL,...` sends the poller's requests for a
/// registry host to another address (a local registry standing in for an
/// ECR host name). The template never sets it.
pub const TEST_ENDPOINTS_VAR: &str = "CRTASK_TEST_REGISTRY_ENDPOINTS";

/// What the function reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub env: FunctionEnv,
    /// `CRTASK_SCHEDULE_SECRET_ARN`: every valid version verifies.
    pub secret_arn: String,
    /// `CRTASK_POLL_INTERVAL` (default 300 s; 0 turns polling off).
    pub poll_interval: Duration,
    /// `CRTASK_SETTLE_WINDOW` (default 0 s).
    pub settle_window: Duration,
    /// `CRTASK_EVENT_REGISTRIES`.
    pub event_registries: Vec<String>,
    /// `CRTASK_REGISTRY_CREDENTIALS_PREFIX` (none: no stored credentials).
    pub credentials_prefix: Option<String>,
    /// `CRTASK_TEST_REGISTRY_ENDPOINTS` (tests only).
    pub test_endpoints: std::collections::BTreeMap<String, String>,
}

/// A whole number of seconds from `name`, or `default` when unset or empty.
fn seconds(
    get: impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
) -> crtask_aws::Result<Duration> {
    match get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| {
                crtask_aws::Error::Config(format!(
                    "{name} is '{v}': expected a whole number of seconds"
                ))
            }),
    }
}

impl Config {
    /// Reads the settings from the process environment.
    pub fn from_env() -> crtask_aws::Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> crtask_aws::Result<Self> {
        Ok(Config {
            env: FunctionEnv::from_lookup(&get)?,
            secret_arn: config::required(&get, SECRET_ARN_VAR)?,
            poll_interval: seconds(&get, POLL_INTERVAL_VAR, 300)?,
            settle_window: seconds(&get, SETTLE_WINDOW_VAR, 0)?,
            event_registries: get(EVENT_REGISTRIES_VAR)
                .unwrap_or_default()
                .split(',')
                .map(|r| r.trim().to_ascii_lowercase())
                .filter(|r| !r.is_empty())
                .collect(),
            credentials_prefix: get(CREDENTIALS_PREFIX_VAR).filter(|p| !p.trim().is_empty()),
            test_endpoints: crtask_registry::PollConfig::parse_endpoints(
                &get(TEST_ENDPOINTS_VAR).unwrap_or_default(),
            )
            .map_err(|e| crtask_aws::Error::Config(format!("{TEST_ENDPOINTS_VAR}: {e}")))?,
        })
    }
}

/// The poller's registry credentials: ECR tokens, and stored credentials
/// when the stack names their prefix.
fn credentials(
    config: &Config,
    sdk: &aws_config::SdkConfig,
) -> Arc<dyn crtask_core::trigger::registry::credentials::CredentialSource> {
    let mut c = crtask_aws::registry_credentials::AwsRegistryCredentials::new(sdk);
    if let Some(prefix) = &config.credentials_prefix {
        c = c.with_stored(
            config::Lazy::new(sdk, config::secretsmanager),
            prefix.clone(),
        );
    }
    Arc::new(c)
}

/// The clients, built once per process.
pub struct App {
    store: Arc<dyn Store>,
    builder: Arc<dyn Builder>,
    clock: Arc<dyn Clock>,
    secrets: SecretsManagerSecrets,
    secret_arn: String,
    skew: Skew,
    poll: poll::PollState,
    patch: patch::PatchTick,
}

impl App {
    /// Builds the AWS clients for `config` from `sdk`.
    pub fn new(config: &Config, sdk: &aws_config::SdkConfig) -> Self {
        let (store, builder) = config.env.ports(sdk);
        App {
            store,
            builder,
            clock: Arc::new(SystemClock),
            secrets: SecretsManagerSecrets::new(config::Lazy::new(sdk, config::secretsmanager)),
            secret_arn: config.secret_arn.clone(),
            skew: Skew::default(),
            poll: poll::PollState::new(config, credentials(config, sdk)),
            patch: patch::PatchTick::new(config, sdk),
        }
    }

    /// Handles one invocation: a poll tick or a timer payload. `remaining`
    /// is the time the invocation has left (from its deadline), which
    /// bounds the poll tick's settle window.
    pub async fn handle(
        &self,
        event: &Value,
        remaining: Option<Duration>,
    ) -> crtask_aws::Result<Value> {
        match event.get("kind").and_then(Value::as_str) {
            Some("poll-tick") => return self.poll_tick(remaining).await,
            Some("patch-tick") => {
                return self
                    .patch
                    .tick(
                        self.store.as_ref(),
                        self.builder.as_ref(),
                        self.clock.clone(),
                    )
                    .await
            }
            _ => {}
        }
        self.timer(event).await
    }

    /// A timer payload. A payload sent as a JSON string is read as the text
    /// of the payload (so a malformed one is rejected as such).
    async fn timer(&self, event: &Value) -> crtask_aws::Result<Value> {
        let body = match event {
            Value::String(s) => s.as_bytes().to_vec(),
            other => other.to_string().into_bytes(),
        };
        let secrets = self.secrets.valid_values(&self.secret_arn).await?;
        let deps = ScheduledDeps {
            store: self.store.as_ref(),
            builder: self.builder.as_ref(),
            clock: self.clock.as_ref(),
            secrets: &secrets,
            skew: self.skew,
        };
        let fired = timer::handler::fire_scheduled(&deps, &body).await?;
        let e = &fired.event;
        tracing::info!(event = %e.id, outcome = e.outcome.as_str(), reason = %e.reason, "timer payload handled");
        Ok(fired.answer().body())
    }

    /// One poller round; its runs are dispatched after the settle window.
    async fn poll_tick(&self, remaining: Option<Duration>) -> crtask_aws::Result<Value> {
        let answer = self
            .poll
            .tick(
                self.store.as_ref(),
                self.builder.as_ref(),
                self.clock.as_ref(),
                remaining,
            )
            .await?;
        tracing::info!(answer = %answer, "poll tick handled");
        Ok(answer)
    }
}

mod patch {
    //! Continuous patching's tick: the configuration `crtask patch config
    //! set` stored in the table, its due occurrence handled once.

    use super::Config;
    use chrono::{DateTime, Utc};
    use crtask_aws::ecr_tags::EcrTags;
    use crtask_aws::DynamoStore;
    use crtask_core::patch::continuous;
    use crtask_core::ports::{Builder, Clock, Store};
    use crtask_core::trigger::answer::{Answer, OtherVerdict};
    use serde_json::Value;
    use std::sync::Arc;

    /// Scheduler may deliver an occurrence a little before the instant the
    /// configuration computes for it; a tick this early still handles it.
    const EARLY: chrono::Duration = chrono::Duration::seconds(60);

    /// The clock a tick decides with: [`EARLY`] ahead.
    struct Ahead(Arc<dyn Clock>);

    impl Clock for Ahead {
        fn now(&self) -> DateTime<Utc> {
            self.0.now() + EARLY
        }
    }

    pub struct PatchTick {
        configs: DynamoStore,
        tags: EcrTags,
        registry: Option<String>,
    }

    impl PatchTick {
        pub fn new(config: &Config, sdk: &aws_config::SdkConfig) -> Self {
            PatchTick {
                configs: DynamoStore::new(
                    crtask_aws::config::Lazy::new(sdk, crtask_aws::config::dynamodb),
                    config.env.table.clone(),
                ),
                tags: EcrTags::new(sdk),
                registry: config.env.registry_host.clone(),
            }
        }

        pub async fn tick(
            &self,
            store: &dyn Store,
            builder: &dyn Builder,
            clock: Arc<dyn Clock>,
        ) -> crtask_aws::Result<Value> {
            let Some(schedule) = self.configs.patch_schedule().await? else {
                return Ok(Answer::new(
                    OtherVerdict::Patched,
                    "no continuous patching configuration is stored",
                )
                .body());
            };
            let Some(registry) = &self.registry else {
                return Ok(Answer::new(
                    OtherVerdict::Patched,
                    "continuous patching needs the stack's registry (CRTASK_REGISTRY_HOST)",
                )
                .body());
            };
            let runs = continuous::tick(
                store,
                builder,
                &Ahead(clock),
                &self.tags,
                registry,
                &schedule,
            )
            .await?;
            let ids: Vec<String> = runs.iter().map(|r| r.run_id.clone()).collect();
            tracing::info!(runs = ?ids, "continuous patching tick handled");
            let reason = match ids.len() {
                0 => "no occurrence due, or no tag to patch".to_string(),
                n => format!("queued {n} patch run(s)"),
            };
            Ok(Answer::new(OtherVerdict::Patched, reason)
                .with_runs(ids)
                .body())
        }
    }
}

mod poll {
    //! The poll tick: one round of the base-image poller, whose state (last
    //! digests, backoff, due times) lives as long as the warm process.

    use super::Config;
    use crtask_core::ports::{Builder, Clock, Store};
    use crtask_core::run::queue;
    use crtask_core::trigger::answer::{Answer, OtherVerdict};
    use crtask_core::trigger::registry::credentials::CredentialSource;
    use crtask_registry::{PollConfig, Poller};
    use serde_json::Value;
    use std::sync::Arc;
    use std::sync::OnceLock;
    use std::time::Duration;
    use tokio::sync::Mutex;

    /// Time left for dispatching after the settle window.
    const DISPATCH_MARGIN: Duration = Duration::from_secs(10);
    /// A queued run without a build this long after its settle window has
    /// lost its dispatcher (the longest function timeout is 60 s).
    const STALLED_AFTER: Duration = Duration::from_secs(120);

    /// The poller kept across warm invocations, built by the first poll
    /// tick (a timer invocation never needs its HTTP client).
    pub struct PollState {
        cfg: PollConfig,
        poller: OnceLock<Mutex<Poller>>,
        settle: Duration,
        credentials: Arc<dyn CredentialSource>,
    }

    impl PollState {
        pub fn new(config: &Config, credentials: Arc<dyn CredentialSource>) -> Self {
            let cfg = PollConfig {
                interval: config.poll_interval,
                registry: config.env.registry_host.clone(),
                settle_window: config.settle_window,
                // PollTickSchedule: rate(1 minute).
                tick: Duration::from_secs(60),
                covered_by_events: config.event_registries.clone(),
                endpoints: config.test_endpoints.clone(),
                ..PollConfig::default()
            };
            PollState {
                cfg,
                poller: OnceLock::new(),
                settle: config.settle_window,
                credentials,
            }
        }

        /// One round; its runs are dispatched after the settle window (cut
        /// short to leave [`DISPATCH_MARGIN`] of `remaining`, the time the
        /// invocation has left).
        pub async fn tick(
            &self,
            store: &dyn Store,
            builder: &dyn Builder,
            clock: &dyn Clock,
            remaining: Option<Duration>,
        ) -> crtask_aws::Result<Value> {
            let poller = self.poller.get_or_init(|| {
                Mutex::new(Poller::new(self.cfg.clone()).with_credentials(self.credentials.clone()))
            });
            let round = poller.lock().await.round(store, clock).await;
            let mut new_runs = round.new_runs;
            if !new_runs.is_empty() {
                let mut wait = self.settle;
                if let Some(left) = remaining {
                    let cap = left.saturating_sub(DISPATCH_MARGIN);
                    if cap < wait {
                        tracing::warn!(
                            settle = wait.as_secs(),
                            waited = cap.as_secs(),
                            "settle window cut short: the invocation would time out"
                        );
                        wait = cap;
                    }
                }
                tokio::time::sleep(wait).await;
            }
            let mut ids = Vec::new();
            for run in &mut new_runs {
                queue::dispatch(store, builder, run).await?;
                ids.push(run.run_id.clone());
            }
            // Runs whose dispatcher died before handing them over (or that
            // CodeBuild refused) are not lost: every tick resumes them.
            let stalled = self.settle + STALLED_AFTER;
            let resumed = queue::resume_stalled(store, builder, clock, stalled).await?;
            if !resumed.is_empty() {
                tracing::warn!(runs = ?resumed, "queued runs that never reached CodeBuild handed over");
            }
            let mut answer = Answer::new(OtherVerdict::Polled, "").with_runs(ids);
            answer.reason = None;
            answer.requests = Some(round.requests as u64);
            answer.resumed = Some(resumed);
            Ok(answer.body())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_bad_and_missing_variables() {
        let vars = [
            ("CRTASK_TABLE", "t"),
            ("CRTASK_BUCKET", "b"),
            ("CRTASK_BUILDER_PROJECT", "p"),
            (SECRET_ARN_VAR, "arn:s"),
            (POLL_INTERVAL_VAR, "60"),
            (SETTLE_WINDOW_VAR, ""),
        ];
        let get = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let c = Config::from_lookup(get).unwrap();
        assert_eq!(c.poll_interval, Duration::from_secs(60));
        assert_eq!(c.settle_window, Duration::ZERO);
        let e = Config::from_lookup(|k| get(k).filter(|_| k != SECRET_ARN_VAR)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("CRTASK_SCHEDULE_SECRET_ARN is not set"),
            "{e}"
        );
        let e = Config::from_lookup(|k| {
            if k == SETTLE_WINDOW_VAR {
                Some("soon".into())
            } else {
                get(k)
            }
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "CRTASK_SETTLE_WINDOW is 'soon': expected a whole number of seconds"
        );
    }
}
