//! The `build-status` function: CodeBuild "Build State Change" events from
//! EventBridge -> run status, steps, output digests and base-image digests
//! in the store ([`crtask_core::buildstatus`] decides; this wires AWS).

use crtask_aws::config::{self, FunctionEnv};
use crtask_aws::{DynamoStore, S3Contexts};
use crtask_core::buildstatus::{self, Applied, ExecResult};
use crtask_core::ports::{Clock, Store, SystemClock};
use serde_json::{json, Value};
use std::sync::Arc;

/// The clients, built once per process.
pub struct App {
    store: Arc<dyn Store>,
    bucket: S3Contexts,
    clock: Arc<dyn Clock>,
}

impl App {
    /// Builds the AWS clients for `env` from `sdk`.
    pub fn new(env: &FunctionEnv, sdk: &aws_config::SdkConfig) -> Self {
        App {
            store: Arc::new(DynamoStore::new(config::dynamodb(sdk), env.table.clone())),
            bucket: S3Contexts::new(config::s3(sdk), env.bucket.clone()),
            clock: Arc::new(SystemClock),
        }
    }

    /// Handles one EventBridge event. An event that is not about a crtask
    /// run is answered (and ignored); a store or S3 failure is an error, so
    /// the asynchronous invocation is retried.
    pub async fn handle(&self, event: &Value) -> crtask_aws::Result<Value> {
        let change = match buildstatus::parse(event) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "event ignored");
                return Ok(json!({"outcome": "ignored", "reason": e.to_string()}));
            }
        };
        let result = match (&change.run_id, change.state.is_final()) {
            (Some(run), true) => self.result(run).await?,
            _ => None,
        };
        let (run, applied) = buildstatus::record(
            self.store.as_ref(),
            &change,
            result.as_ref(),
            self.clock.now(),
        )
        .await?;
        let answer = match &applied {
            Applied::Updated(status) => {
                tracing::info!(run = ?run, build = %change.build_id, %status, "run updated");
                json!({"outcome": "updated", "run": run, "status": status})
            }
            Applied::Ignored(reason) => {
                tracing::info!(run = ?run, build = %change.build_id, %reason, "event ignored");
                json!({"outcome": "ignored", "run": run, "reason": reason})
            }
        };
        Ok(answer)
    }

    /// The executor's result for `run`, when it is there and readable.
    async fn result(&self, run: &str) -> crtask_aws::Result<Option<ExecResult>> {
        let Some(bytes) = self.bucket.get_result(run).await? else {
            tracing::warn!(run, "no executor result in the bucket");
            return Ok(None);
        };
        match ExecResult::from_json(&bytes) {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                tracing::warn!(run, error = %e, "executor result ignored");
                Ok(None)
            }
        }
    }
}
