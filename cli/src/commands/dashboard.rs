//! `crtask dashboard`: the dashboard for the platform the CLI points at.
//!
//! - AWS: serves the UI and a read-only API ([`crtask_dashboard::readonly`])
//!   on a loopback address, reading DynamoDB, the builds' CloudWatch Logs
//!   streams (live, with `--aws-log-group`) and the S3 run logs with the
//!   caller's own AWS credentials. The API needs a random token made at
//!   start; the printed address carries it in its fragment (`/#token=...`),
//!   which the page keeps in the tab and the browser never sends.
//! - local: the server already serves the dashboard at `/` of its
//!   management API; this prints its address.

use crate::commands::Ctx;
use anyhow::{bail, Context, Result};
use crtask_core::domain::model::Run;
use crtask_core::ports::{Store, SystemClock};
use crtask_core::signing::Secret;
use crtask_dashboard::readonly::{self, Access, Logs};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct DashboardArgs {
    /// Address to serve the dashboard on (AWS platform). Loopback only:
    /// the page reads with your AWS credentials.
    #[arg(
        long,
        default_value = "127.0.0.1:7880",
        env = "CRTASK_DASHBOARD_LISTEN"
    )]
    pub listen: SocketAddr,
}

pub async fn run(ctx: &Ctx, a: DashboardArgs) -> Result<i32> {
    match ctx.platform {
        crate::Platform::Local => {
            let conn = ctx.local_connection()?;
            println!(
                "The local server serves the dashboard at {}/ (its --api-listen address; \
                 the page asks for the API token when the server has one)",
                conn.server.trim_end_matches('/')
            );
            Ok(0)
        }
        crate::Platform::Aws => serve_aws(ctx, a).await,
    }
}

/// A run's log on AWS. While the run is in progress and the builder's log
/// group is known (`--aws-log-group`): the executor's lines from the
/// build's CloudWatch Logs stream, read on from where the last read ended
/// (as `crtask task logs` follows them). Otherwise the log the builder
/// uploads to the bucket when the build ends (`logs/<run>.log`). A run
/// whose live log was served keeps being served from it, so the byte
/// offsets the page asks for stay those of one text.
struct AwsLogs {
    s3: crtask_aws::S3Contexts,
    live: Option<crtask_aws::BuildLogs>,
    followed: tokio::sync::Mutex<HashMap<String, Followed>>,
}

/// What was read of one run's build stream so far.
struct Followed {
    token: Option<String>,
    window: crtask_aws::ExecutorWindow,
    text: Vec<u8>,
}

/// Runs whose live log is kept at once; the oldest goes beyond that.
const FOLLOWED_MAX: usize = 32;

fn from(text: &[u8], offset: u64) -> Vec<u8> {
    usize::try_from(offset)
        .ok()
        .and_then(|o| text.get(o..))
        .unwrap_or_default()
        .to_vec()
}

#[async_trait::async_trait]
impl Logs for AwsLogs {
    async fn read(&self, run: &Run, offset: u64) -> crtask_dashboard::Result<Vec<u8>> {
        let mut followed = self.followed.lock().await;
        let build = run.builder_ref.as_deref();
        let live = match (&self.live, build) {
            (Some(logs), Some(build))
                if !run.status.is_terminal() || followed.contains_key(&run.run_id) =>
            {
                Some((logs, build))
            }
            _ => None,
        };
        if let Some((logs, build)) = live {
            if !followed.contains_key(&run.run_id) && followed.len() >= FOLLOWED_MAX {
                if let Some(k) = followed.keys().next().cloned() {
                    followed.remove(&k);
                }
            }
            let f = followed
                .entry(run.run_id.clone())
                .or_insert_with(|| Followed {
                    token: None,
                    window: crtask_aws::ExecutorWindow::new(&run.run_id),
                    text: Vec::new(),
                });
            let (lines, next) = logs
                .next(build, f.token.clone())
                .await
                .map_err(|e| crtask_dashboard::Error::Log(e.to_string()))?;
            f.token = next;
            for line in lines.iter().filter(|l| f.window.accept(l)) {
                f.text.extend_from_slice(line.as_bytes());
                f.text.push(b'\n');
            }
            return Ok(from(&f.text, offset));
        }
        drop(followed);
        match self.s3.get_log(&run.run_id, offset).await {
            Ok(log) => Ok(log.unwrap_or_default()),
            Err(e) => Err(crtask_dashboard::Error::Log(e.to_string())),
        }
    }
}

async fn serve_aws(ctx: &Ctx, a: DashboardArgs) -> Result<i32> {
    if !a.listen.ip().is_loopback() {
        bail!(
            "--listen {}: the dashboard reads with your AWS credentials, so it serves \
             only on a loopback address (127.0.0.1)",
            a.listen
        );
    }
    let settings = &ctx.aws;
    let table = settings.table.clone().filter(|t| !t.is_empty()).context(
        "the dashboard needs the stack's settings: run `crtask aws configure --stack NAME` \
         once (or set --aws-table, the TableName output)",
    )?;
    let bucket = settings.bucket.clone().filter(|b| !b.is_empty()).context(
        "the dashboard reads run logs from the stack's bucket: set --aws-bucket \
         (the BucketName output) or run `crtask aws configure`",
    )?;
    let conf = crate::backend::sdk_config(settings.region.as_deref()).await?;
    let store: Arc<dyn Store> = Arc::new(crtask_aws::DynamoStore::new(
        crtask_aws::config::dynamodb(&conf),
        table,
    ));
    let logs = Arc::new(AwsLogs {
        s3: crtask_aws::S3Contexts::new(crtask_aws::config::s3(&conf), bucket),
        live: settings
            .log_group
            .clone()
            .filter(|g| !g.trim().is_empty())
            .map(|g| crtask_aws::BuildLogs::new(crtask_aws::config::cloudwatchlogs(&conf), g)),
        followed: tokio::sync::Mutex::new(HashMap::new()),
    });
    let token = new_token()?;
    let app = readonly::router(
        store,
        Arc::new(SystemClock),
        logs,
        Access::new(Secret::new(token.clone())),
    );
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("--listen: cannot listen on {}", a.listen))?;
    let addr = listener.local_addr()?;
    // Written, not printed: a closed stdout (`| head -1`) must not stop the server.
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "Dashboard (AWS platform, read-only): http://{addr}/#token={token}\nStop it with Ctrl-C."
    );
    let _ = out.flush();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(0)
}

/// 32 random bytes from the OS, hex.
fn new_token() -> Result<String> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_differ() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
