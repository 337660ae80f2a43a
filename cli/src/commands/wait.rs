//! Following a run: stream its log, then report how it ended.

use super::Ctx;
use crate::backend::Backend as Client;
use crate::client::RunJson;
use anyhow::Result;

/// After a run was queued: prints `Queued a <noun> with ID: <id>` (or, with
/// `--no-wait` in JSON mode, the run), then follows it unless `no_wait`.
pub async fn queued(
    ctx: &Ctx,
    client: &Client,
    run: RunJson,
    noun: &str,
    no_wait: bool,
    no_logs: bool,
) -> Result<i32> {
    let id = run["runId"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the server answered without a run id"))?
        .to_string();
    if !ctx.out.human() && no_wait {
        ctx.out.emit(&run, || {})?;
        return Ok(0);
    }
    if ctx.out.human() {
        println!("Queued a {noun} with ID: {id}");
    } else {
        // stdout carries only the final document.
        eprintln!("Queued a {noun} with ID: {id}");
    }
    if no_wait {
        return Ok(0);
    }
    follow(ctx, client, &id, no_logs).await
}

/// Streams the log (unless `no_logs`), waits for the end, prints the final
/// line (or the run as JSON) and returns the exit code: 0 only on success.
pub async fn follow(ctx: &Ctx, client: &Client, run_id: &str, no_logs: bool) -> Result<i32> {
    if !no_logs {
        // With -o json|yaml|tsv or --query stdout carries only the final document.
        let res = if !ctx.out.human() {
            client.log(run_id, true, &mut std::io::stderr()).await
        } else {
            client.log(run_id, true, &mut std::io::stdout()).await
        };
        if let Err(e) = res {
            eprintln!("warning: {e:#}; waiting for the run to finish");
        }
    }
    let run = wait_terminal(client, run_id).await?;
    report(ctx, &run)
}

async fn wait_terminal(client: &Client, run_id: &str) -> Result<RunJson> {
    loop {
        let run = client.run(run_id).await?;
        if is_terminal(&run) {
            return Ok(run);
        }
        tokio::time::sleep(client.poll_interval()).await;
    }
}

pub fn is_terminal(run: &RunJson) -> bool {
    matches!(
        run["status"].as_str(),
        Some("Succeeded" | "Failed" | "Canceled" | "Error" | "Timeout")
    )
}

/// Prints how the run ended; returns the exit code.
pub fn report(ctx: &Ctx, run: &RunJson) -> Result<i32> {
    let ok = run["status"] == "Succeeded";
    let id = run["runId"].as_str().unwrap_or("?");
    ctx.out.emit(run, || {
        let took = crate::output::duration(run);
        if ok {
            println!("Run ID: {id} was successful after {took}");
        } else {
            println!(
                "Run ID: {id} failed after {took}. Error: {}",
                crtask_core::domain::text::inert(
                    run["error"]
                        .as_str()
                        .unwrap_or(run["status"].as_str().unwrap_or("unknown"))
                )
            );
        }
    })?;
    if ok {
        Ok(0)
    } else {
        eprintln!(
            "error: run {id} {}: {}",
            run["status"].as_str().unwrap_or("failed").to_lowercase(),
            crtask_core::domain::text::inert(run["error"].as_str().unwrap_or("no reason recorded"))
        );
        Ok(1)
    }
}
