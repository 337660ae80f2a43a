//! [`BuildLogs`] against `moto_server`'s CloudWatch Logs: a build's stream
//! read in order, page by page, and from where the last read stopped.

use crtask_aws::BuildLogs;
use crtask_testkit::aws::{self as harness, logs as build_logs};

/// A fresh log group and a client for it.
async fn group() -> (aws_sdk_cloudwatchlogs::Client, String) {
    let conf = harness::sdk_config().await;
    let client = crtask_aws::config::cloudwatchlogs(&conf);
    let group = format!("/aws/codebuild/{}", harness::unique("crtask-builder"));
    client
        .create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("create log group");
    (client, group)
}

async fn create_stream(client: &aws_sdk_cloudwatchlogs::Client, group: &str, stream: &str) {
    client
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .expect("create log stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_logs_reads_a_stream_in_order_and_goes_on_from_the_token() {
    let (client, group) = group().await;
    let build = "crtask-builder:4b6f3d2a-1111-2222-3333-444455556666";
    let logs = BuildLogs::new(client.clone(), &group);
    assert_eq!(logs.group(), group);

    // The build has not started: no stream yet, no lines, no token.
    let (lines, token) = logs.next(build, None).await.expect("missing stream");
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(token, None);

    // The stream is named after the build id's part after the colon.
    create_stream(&client, &group, "4b6f3d2a-1111-2222-3333-444455556666").await;
    let (lines, token) = logs.next(build, None).await.expect("empty stream");
    assert!(lines.is_empty(), "{lines:?}");

    build_logs::put_build_log(
        &client,
        &group,
        "4b6f3d2a-1111-2222-3333-444455556666",
        &["one", "two", "three"],
    )
    .await;
    let (lines, token) = logs.next(build, token).await.expect("first lines");
    assert_eq!(lines, ["one", "two", "three"]);
    let token = token.expect("a token to go on from");

    // Nothing new: no lines, and the same token back.
    let (lines, again) = logs
        .next(build, Some(token.clone()))
        .await
        .expect("caught up");
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(again.as_deref(), Some(token.as_str()));

    // New lines only, from where the last read stopped.
    build_logs::put_build_log(
        &client,
        &group,
        "4b6f3d2a-1111-2222-3333-444455556666",
        &["four", "  five  "],
    )
    .await;
    let (lines, _) = logs.next(build, Some(token)).await.expect("new lines");
    assert_eq!(lines, ["four", "  five  "]);

    // From the start again: everything, in order.
    let (lines, _) = logs.next(build, None).await.expect("whole stream");
    assert_eq!(lines, ["one", "two", "three", "four", "  five  "]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_logs_follows_next_forward_tokens_across_pages() {
    let (client, group) = group().await;
    let stream = "9a8b7c6d-0000-1111-2222-333344445555";
    create_stream(&client, &group, stream).await;
    let want: Vec<String> = (1..=7).map(|i| format!("line {i}")).collect();
    let refs: Vec<&str> = want.iter().map(String::as_str).collect();
    build_logs::put_build_log(&client, &group, stream, &refs).await;

    // Two events a page: one call reads all four pages, in order.
    let logs = BuildLogs::new(client.clone(), &group).with_page_limit(2);
    let build = format!("proj:{stream}");
    let (lines, token) = logs.next(&build, None).await.expect("paged read");
    assert_eq!(lines, want);
    let (lines, same) = logs.next(&build, token.clone()).await.expect("caught up");
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(same, token);

    build_logs::put_build_log(&client, &group, stream, &["line 8", "line 9", "line 10"]).await;
    let (lines, _) = logs.next(&build, token).await.expect("more pages");
    assert_eq!(lines, ["line 8", "line 9", "line 10"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_logs_reports_unreadable_input() {
    let (client, group) = group().await;
    let logs = BuildLogs::new(client.clone(), &group);
    // A build id that names no stream.
    let e = logs
        .next("proj:", None)
        .await
        .expect_err("empty stream name");
    assert!(
        e.to_string()
            .starts_with("cloudwatch logs GetLogEvents proj:: the build id names no log stream"),
        "{e}"
    );
    // A token the service rejects: the error names the group and stream.
    create_stream(&client, &group, "s1").await;
    build_logs::put_build_log(&client, &group, "s1", &["x"]).await;
    let e = logs
        .next("proj:s1", Some("not-a-token".into()))
        .await
        .expect_err("forged token");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("cloudwatch logs GetLogEvents {group}/s1: ")),
        "{msg}"
    );
    assert!(msg.contains("nextToken"), "{msg}");
    // The error converts to the store error at the port boundary.
    let core: crtask_core::Error = e.into();
    assert!(matches!(core, crtask_core::Error::Store(_)), "{core:?}");
}
