//! `schedule`: EventBridge Scheduler timer payloads and poll ticks -> runs.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    crtask_aws::function_log::init();
    let config = schedule::Config::from_env()?;
    let sdk = crtask_aws::config::load_for_function();
    let app = &schedule::App::new(&config, &sdk);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let remaining = std::time::UNIX_EPOCH
            .checked_add(std::time::Duration::from_millis(event.context.deadline))
            .and_then(|d| d.duration_since(std::time::SystemTime::now()).ok());
        Ok::<_, lambda_runtime::Error>(app.handle(&event.payload, remaining).await?)
    }))
    .await
}
