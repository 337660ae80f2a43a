//! The `registry-event` function: base-image updates from registries, on
//! the AWS ports, decided by the same core handler as the local server's
//! `POST /webhooks/registry` ([`crtask_core::trigger::registry::handler`]).
//!
//! It takes two kinds of invocation:
//!
//! - **EventBridge "ECR Image Action"** events, delivered by the template's
//!   rule (only EventBridge may invoke the function that way: IAM is the
//!   authentication). Answered with a JSON summary; a store failure is an
//!   error, so EventBridge retries and finally dead-letters the event.
//! - **Function URL** requests (payload format 2.0) carrying CNCF
//!   distribution notification envelopes from external registries,
//!   authenticated by a bearer token or an HMAC signature over the raw body
//!   (every valid version of the registry webhook secret is accepted as
//!   either). Answered with an HTTP response; 202 means recorded.
//!
//! Runs an update starts are dispatched after the settle window, so several
//! tags or architectures of one push fold into one run per task.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::http::header::{HeaderValue, CONTENT_TYPE};
use base64::Engine as _;
use crtask_aws::config::{self, FunctionEnv};
use crtask_aws::SecretsManagerSecrets;
use crtask_core::domain::model::{EventSource, Outcome, Run};
use crtask_core::ports::{Builder, Clock, Store, SystemClock};
use crtask_core::trigger::answer::{Answer, EventSummary, OtherVerdict};
use crtask_core::trigger::registry;
use crtask_core::trigger::registry::event;
use crtask_core::trigger::registry::handler::{RegistryAuth, UpdateDeps};
use serde::{Deserialize as _, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The environment variable naming the registry webhook secret (its ARN).
pub const SECRET_ARN_VAR: &str = "CRTASK_REGISTRY_WEBHOOK_SECRET_ARN";
/// The environment variable with the settle window in seconds.
pub const SETTLE_VAR: &str = "CRTASK_SETTLE_WINDOW";
/// The settle window when the variable is not set.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(3);
/// The longest settle window the function waits (it runs inside a Lambda
/// invocation with a timeout).
pub const MAX_SETTLE: Duration = Duration::from_secs(20);
/// The largest notification body read (Function URL requests).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What the function reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub env: FunctionEnv,
    /// `CRTASK_REGISTRY_WEBHOOK_SECRET_ARN`
    pub secret_arn: String,
    /// `CRTASK_SETTLE_WINDOW` (seconds, at most [`MAX_SETTLE`]).
    pub settle: Duration,
}

impl Config {
    /// Reads the settings from the process environment.
    pub fn from_env() -> crtask_aws::Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> crtask_aws::Result<Self> {
        let settle = match get(SETTLE_VAR).filter(|v| !v.trim().is_empty()) {
            None => DEFAULT_SETTLE,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if Duration::from_secs(n) <= MAX_SETTLE => Duration::from_secs(n),
                _ => {
                    return Err(crtask_aws::Error::Config(format!(
                        "{SETTLE_VAR} is '{v}': it must be a whole number of seconds from 0 to {}",
                        MAX_SETTLE.as_secs()
                    )))
                }
            },
        };
        Ok(Config {
            env: FunctionEnv::from_lookup(&get)?,
            secret_arn: config::required(&get, SECRET_ARN_VAR)?,
            settle,
        })
    }
}

/// The clients, built once per process.
pub struct App {
    store: Arc<dyn Store>,
    builder: Arc<dyn Builder>,
    clock: Arc<dyn Clock>,
    secrets: SecretsManagerSecrets,
    secret_arn: String,
    registry: Option<String>,
    settle: Duration,
}

/// How an invocation arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Function URL request (payload format 2.0).
    FunctionUrl,
    /// An EventBridge event.
    EventBridge,
}

/// Tells the two invocation shapes apart.
pub fn kind_of(event: &Value) -> Option<Kind> {
    if event.get("requestContext").is_some() && event.get("rawPath").is_some() {
        Some(Kind::FunctionUrl)
    } else if event.get("detail-type").is_some() {
        Some(Kind::EventBridge)
    } else {
        None
    }
}

/// What an invocation is answered with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// The HTTP response to a Function URL request.
    Url(LambdaFunctionUrlResponse),
    /// The JSON summary of an EventBridge event (or of an invocation of
    /// neither kind).
    Event(Value),
}

/// A request's headers (names lower-cased) and raw body.
pub type RawRequest = (Vec<(String, String)>, Vec<u8>);

/// Reads a Function URL invocation as its typed request.
pub fn url_event(event: &Value) -> Result<LambdaFunctionUrlRequest, String> {
    LambdaFunctionUrlRequest::deserialize(event)
        .map_err(|e| format!("the function url request is malformed: {e}"))
}

/// The headers and raw body of a Function URL request. A header whose value
/// is not visible ASCII is left out.
pub fn url_request(req: &LambdaFunctionUrlRequest) -> Result<RawRequest, String> {
    let headers = req
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = match &req.body {
        None => Vec::new(),
        Some(b) if req.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| format!("the request body is not valid base64: {e}"))?,
        Some(b) => b.clone().into_bytes(),
    };
    Ok((headers, body))
}

/// A Function URL response carrying `answer`'s body as JSON.
pub fn url_response(answer: &Answer) -> LambdaFunctionUrlResponse {
    let mut r = LambdaFunctionUrlResponse::default();
    r.status_code = i64::from(answer.status);
    r.headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.body = Some(answer.body().to_string());
    r
}

/// A refusal: `status` with the reason as both `reason` and `error`.
fn url_rejection(status: u16, msg: &str) -> LambdaFunctionUrlResponse {
    url_response(&Answer::rejected(status, msg))
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
            registry: config.env.registry_host.clone(),
            settle: config.settle,
        }
    }

    fn deps(&self) -> UpdateDeps<'_> {
        UpdateDeps {
            store: self.store.as_ref(),
            clock: self.clock.as_ref(),
            registry: self.registry.as_deref(),
        }
    }

    /// Handles one invocation of either kind.
    pub async fn handle(&self, event: &Value) -> crtask_aws::Result<Reply> {
        match kind_of(event) {
            Some(Kind::FunctionUrl) => Ok(Reply::Url(match url_event(event) {
                Ok(req) => self.handle_url(&req).await,
                Err(msg) => url_rejection(400, &msg),
            })),
            Some(Kind::EventBridge) => self.handle_eventbridge(event).await.map(Reply::Event),
            None => {
                tracing::warn!(
                    "invocation is neither a Function URL request nor an EventBridge event"
                );
                Ok(Reply::Event(
                    Answer::new(
                        Outcome::Ignored,
                        "the invocation is neither a function url request nor an eventbridge event",
                    )
                    .body(),
                ))
            }
        }
    }

    /// An ECR push through EventBridge.
    async fn handle_eventbridge(&self, event: &Value) -> crtask_aws::Result<Value> {
        let body = event.to_string();
        let parsed = match event::parse_ecr(body.as_bytes()) {
            Ok(p) => p,
            Err(e) => {
                // Not retried: the same event would fail the same way.
                tracing::warn!(error = %e, "eventbridge event ignored");
                return Ok(Answer::new(Outcome::Ignored, e.to_string()).body());
            }
        };
        if parsed.updates.is_empty() {
            let reason = parsed.ignored.join("; ");
            tracing::info!(%reason, "no tag moved");
            return Ok(Answer::new(Outcome::Ignored, reason).body());
        }
        let deps = self.deps();
        let mut runs = Vec::new();
        let mut events = Vec::new();
        let mut new_runs = Vec::new();
        for update in &parsed.updates {
            let detail = json!({"mediaType": update.media_type, "via": "ecr"});
            let (event, created) = registry::handler::process_and_record(
                &deps,
                update,
                EventSource::Registry,
                "ECR push",
                detail,
            )
            .await?;
            tracing::info!(image = %update.image, outcome = ?event.outcome, reason = %event.reason, "ecr push decided");
            runs.extend(event.runs.iter().cloned());
            events.push(EventSummary::from(&event));
            new_runs.extend(created);
        }
        self.dispatch_after_settle(new_runs).await?;
        let reason = events
            .iter()
            .map(|e| e.reason.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        Ok(Answer::new(OtherVerdict::Recorded, reason)
            .with_runs(runs)
            .with_events(events)
            .body())
    }

    /// A distribution notification through the Function URL.
    async fn handle_url(&self, req: &LambdaFunctionUrlRequest) -> LambdaFunctionUrlResponse {
        if req.request_context.http.method.as_deref().unwrap_or("POST") != "POST" {
            return url_rejection(
                405,
                "only POST is accepted: point the registry's notifications at this url",
            );
        }
        let (headers, body) = match url_request(req) {
            Ok(r) => r,
            Err(msg) => return url_rejection(400, &msg),
        };
        if body.len() > BODY_LIMIT {
            let msg = format!(
                "the notification is {} bytes, more than the {BODY_LIMIT} accepted",
                body.len()
            );
            return url_rejection(413, &msg);
        }
        let secrets = match self.secrets.valid_values(&self.secret_arn).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the registry webhook secret");
                return url_rejection(
                    503,
                    "the registry webhook secret cannot be read: see the function's log",
                );
            }
        };
        let auth = RegistryAuth {
            tokens: &secrets,
            hmac_secrets: &secrets,
            registry_host: None,
        };
        let (answer, new_runs) =
            registry::handler::handle(&self.deps(), &auth, &headers, &body).await;
        tracing::info!(status = answer.status, outcome = ?answer.outcome, "registry notification handled");
        if let Err(e) = self.dispatch_after_settle(new_runs).await {
            // The runs are recorded (Queued, with the reason): answered 202.
            tracing::error!(error = %e, "runs not dispatched");
        }
        url_response(&answer)
    }

    /// Waits the settle window (later deliveries of the same push fold into
    /// these queued runs meanwhile), then hands each run that is still
    /// queued to CodeBuild. A run that cannot be dispatched stays `Queued`
    /// with the reason.
    async fn dispatch_after_settle(&self, runs: Vec<Run>) -> crtask_aws::Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(self.settle).await;
        crtask_core::run::queue::hand_over(
            self.store.as_ref(),
            self.builder.as_ref(),
            self.clock.as_ref(),
            &runs,
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    const BASE: [(&str, &str); 4] = [
        ("CRTASK_TABLE", "t"),
        ("CRTASK_BUCKET", "b"),
        ("CRTASK_BUILDER_PROJECT", "p"),
        (
            SECRET_ARN_VAR,
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
        ),
    ];

    #[test]
    fn settle_window_defaults_and_bounds() {
        let c = Config::from_lookup(vars(&BASE)).unwrap();
        assert_eq!(c.settle, DEFAULT_SETTLE);
        let mut with = BASE.to_vec();
        with.push((SETTLE_VAR, "0"));
        assert_eq!(
            Config::from_lookup(vars(&with)).unwrap().settle,
            Duration::ZERO
        );
        for bad in ["-1", "2.5", "ten", "21"] {
            let mut with = BASE.to_vec();
            with.push((SETTLE_VAR, bad));
            let e = Config::from_lookup(vars(&with)).unwrap_err().to_string();
            assert!(e.contains(SETTLE_VAR) && e.contains(bad), "{e}");
        }
        let e = Config::from_lookup(vars(&BASE[..3]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(SECRET_ARN_VAR), "{e}");
    }

    #[test]
    fn invocations_are_told_apart() {
        let url = json!({"version": "2.0", "rawPath": "/", "requestContext": {"http": {"method": "POST"}}});
        assert_eq!(kind_of(&url), Some(Kind::FunctionUrl));
        let eb = json!({"source": "aws.ecr", "detail-type": "ECR Image Action", "detail": {}});
        assert_eq!(kind_of(&eb), Some(Kind::EventBridge));
        assert_eq!(kind_of(&json!({"hello": "world"})), None);
        assert_eq!(kind_of(&json!([1, 2])), None);
    }

    /// A Function URL request (payload format 2.0) with `extra` merged in.
    fn url(extra: Value) -> Value {
        let mut v = json!({
            "version": "2.0",
            "rawPath": "/",
            "requestContext": {"http": {"method": "POST"}, "timeEpoch": 0},
            "isBase64Encoded": false,
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    #[test]
    fn url_requests_decode_headers_and_bodies() {
        let read = |extra: Value| url_request(&url_event(&url(extra))?);
        let plain = json!({"headers": {"Authorization": "Bearer x"}, "body": "{}"});
        let (h, b) = read(plain).unwrap();
        assert_eq!(
            h,
            vec![("authorization".to_string(), "Bearer x".to_string())]
        );
        assert_eq!(b, b"{}");
        let encoded = json!({"body": "eyJhIjoxfQ==", "isBase64Encoded": true});
        assert_eq!(read(encoded).unwrap().1, br#"{"a":1}"#);
        let bad = json!({"body": "***", "isBase64Encoded": true});
        assert!(read(bad).unwrap_err().contains("base64"));
        assert!(read(json!({"body": 5})).unwrap_err().contains("malformed"));
        assert!(read(json!({"headers": []}))
            .unwrap_err()
            .contains("malformed"));
        assert_eq!(read(json!({})).unwrap(), (Vec::new(), Vec::new()));
        assert_eq!(
            read(json!({"headers": {}, "body": null})).unwrap(),
            (Vec::new(), Vec::new())
        );
    }

    #[test]
    fn responses_carry_json_bodies() {
        let r = serde_json::to_value(Reply::Url(url_rejection(401, "no"))).unwrap();
        assert_eq!(r["statusCode"], 401);
        assert_eq!(r["headers"]["content-type"], "application/json");
        assert_eq!(r["isBase64Encoded"], false);
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["outcome"], "rejected");
        let e = serde_json::to_value(Reply::Event(json!({"outcome": "ignored"}))).unwrap();
        assert_eq!(e, json!({"outcome": "ignored"}));
    }
}
