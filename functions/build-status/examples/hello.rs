//! A hello-world `lambda_runtime` function that echoes its event: the
//! baseline of `infra/bench/lambda.sh` (built with the same release profile
//! and the same tokio runtime as the real functions, no AWS SDK).

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, lambda_runtime::Error>(event.payload)
    }))
    .await
}
