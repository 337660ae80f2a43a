//! `build-status`: CodeBuild build state changes (EventBridge) -> runs.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    crtask_aws::function_log::init();
    let env = crtask_aws::config::FunctionEnv::from_env()?;
    let sdk = crtask_aws::config::load_for_function();
    let app = &build_status::App::new(&env, &sdk);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, lambda_runtime::Error>(app.handle(&event.payload).await?)
    }))
    .await
}
