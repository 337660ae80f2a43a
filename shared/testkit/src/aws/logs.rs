//! Writing build logs into CloudWatch Logs as CodeBuild does.

/// Appends `lines` to a build's log stream as CodeBuild does: one event a
/// line, each message ending with a line break.
pub async fn put_build_log(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    lines: &[&str],
) {
    use aws_sdk_cloudwatchlogs::types::InputLogEvent;
    let now = chrono::Utc::now().timestamp_millis();
    let events = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            InputLogEvent::builder()
                .timestamp(now + i as i64)
                .message(format!("{l}\n"))
                .build()
                .expect("log event")
        })
        .collect();
    client
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .expect("PutLogEvents");
}
