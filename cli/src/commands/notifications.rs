//! `crtask task notifications --run-id ID`: where a run's notifications
//! went and how each attempt ended.

use super::Ctx;
use crate::output;
use crtask_core::domain::time::rfc3339;
use crtask_core::notify::NotificationRecord;

/// Prints the deliveries (one row each; `-o json|yaml|tsv` and `--query`
/// see every attempt).
pub fn show(ctx: &Ctx, list: &[NotificationRecord]) -> anyhow::Result<()> {
    ctx.out.emit(&list, || table(list))
}

fn table(list: &[NotificationRecord]) {
    if list.is_empty() {
        println!("No notifications for this run (no --notify URL was set when it ran).");
        return;
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|n| {
            let last = n.attempts.last().map(|a| match (a.http_status, &a.error) {
                (Some(s), _) => format!("HTTP {s}"),
                (None, Some(e)) => e.clone(),
                (None, None) => "-".into(),
            });
            vec![
                n.id.clone(),
                n.event.as_str().to_string(),
                n.state.as_str().to_string(),
                n.attempts.len().to_string(),
                n.next_attempt.map(rfc3339).unwrap_or_else(|| "-".into()),
                n.url.clone(),
                last.unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "EVENT",
            "STATE",
            "ATTEMPTS",
            "NEXT",
            "URL",
            "LAST RESULT",
        ],
        &rows,
    );
}
