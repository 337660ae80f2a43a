//! `git-webhook`: the Lambda Function URL for git provider webhooks.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    crtask_aws::function_log::init();
    let config = git_webhook::Config::from_env()?;
    let sdk = crtask_aws::config::load_for_function();
    let app = Arc::new(git_webhook::App::new(&config, &sdk));
    lambda_http::run(git_webhook::router(app)).await
}
