//! The `git-webhook` function: git provider webhooks through a Lambda
//! Function URL, served by the same core handler as `POST /webhooks/git` of
//! the local server ([`crtask_core::trigger::git::handler::handle`]), on the AWS ports:
//! DynamoDB store, CodeBuild builder, Secrets Manager secrets.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use crtask_aws::config::{self, FunctionEnv};
use crtask_aws::SecretsManagerSecrets;
use crtask_core::ports::{Builder, Clock, Store, SystemClock};
use crtask_core::trigger::answer::Answer;
use crtask_core::trigger::git;
use crtask_core::trigger::git::handler::{GitHookDeps, DEFAULT_BODY_LIMIT};
use std::sync::Arc;

/// The environment variable naming the webhook secret (its ARN).
pub const SECRET_ARN_VAR: &str = "CRTASK_GIT_WEBHOOK_SECRET_ARN";

/// What the function reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub env: FunctionEnv,
    /// `CRTASK_GIT_WEBHOOK_SECRET_ARN`: every valid version verifies.
    pub secret_arn: String,
}

impl Config {
    pub fn from_env() -> crtask_aws::Result<Self> {
        let get = |k: &str| std::env::var(k).ok();
        Ok(Config {
            env: FunctionEnv::from_lookup(get)?,
            secret_arn: config::required(get, SECRET_ARN_VAR)?,
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
    body_limit: usize,
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
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

/// The function's routes: `POST /webhooks/git`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/webhooks/git", post(git_webhook))
        // The handler enforces its own limit (and records the rejection);
        // Lambda caps request payloads anyway.
        .layer(DefaultBodyLimit::disable())
        .with_state(app)
}

async fn git_webhook(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let secrets = match app.secrets.valid_values(&app.secret_arn).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the webhook secret");
            let msg = "the webhook secret cannot be read: see the function's log";
            return answer_response(Answer::rejected(503, msg));
        }
    };
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let deps = GitHookDeps {
        store: app.store.as_ref(),
        builder: app.builder.as_ref(),
        clock: app.clock.as_ref(),
        secrets: &secrets,
        body_limit: app.body_limit,
    };
    let answer = git::handler::handle(&deps, &pairs, &body).await;
    tracing::info!(status = answer.status, outcome = ?answer.outcome, "git webhook handled");
    answer_response(answer)
}

/// A handler's answer as the Function URL's HTTP response.
fn answer_response(answer: Answer) -> Response {
    let code = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(answer.body())).into_response()
}
