//! `registry-event`: ECR pushes (EventBridge) and distribution notifications
//! (Function URL) -> image-update runs.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    crtask_aws::function_log::init();
    let config = registry_event::Config::from_env()?;
    let sdk = crtask_aws::config::load_for_function();
    let app = &registry_event::App::new(&config, &sdk);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, lambda_runtime::Error>(app.handle(&event.payload).await?)
    }))
    .await
}
