//! Table and text rendering of API answers.
//!
//! Every cell and value goes through [`text::inert`] before it is printed:
//! event reasons, branch names and error texts come from webhook senders,
//! and a raw escape sequence or NUL would act on the user's terminal.

mod formats;

pub use formats::Printer;

use chrono::{DateTime, Utc};
use crtask_core::domain::text;
use serde_json::Value;

/// Prints rows as aligned columns under a header, control characters
/// escaped.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", render_table(header, rows));
}

/// The text [`table`] prints.
pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| text::inert(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{:<w$}  ", c, w = widths[i]));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(header.iter().map(|h| h.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        line(r);
    }
    out
}

/// Prints `key value` on one line, the value's control characters escaped.
pub fn kv(width: usize, key: &str, value: &str) {
    println!("{key:<width$} {}", text::inert(value));
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Duration of a run: start (or create) to finish (or now).
pub fn duration(run: &Value) -> String {
    let start = time(&run["startTime"]).or_else(|| time(&run["createTime"]));
    let end = time(&run["finishTime"]).unwrap_or_else(Utc::now);
    match start {
        Some(s) => crtask_executor::execute::human(end - s),
        None => "-".into(),
    }
}

/// A trigger as one word plus its detail.
pub fn trigger(run: &Value) -> String {
    let t = &run["trigger"];
    match t["type"].as_str().unwrap_or("") {
        "Commit" => format!("Commit {}", short(t["commit"].as_str().unwrap_or(""))),
        "PullRequest" => format!("PullRequest #{}", t["number"]),
        "ImageUpdate" => "Image Update".into(),
        "Timer" => format!("Timer {}", t["timerName"].as_str().unwrap_or("")),
        other => other.to_string(),
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `list-runs` table.
pub fn runs_table(runs: &[Value]) {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                s(&r["runId"]),
                s(&r["task"]),
                s(&r["platform"]),
                s(&r["status"]),
                trigger(r),
                time(&r["startTime"])
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_else(|| "-".into()),
                if r["startTime"].is_null() {
                    "-".into()
                } else {
                    duration(r)
                },
            ]
        })
        .collect();
    table(
        &[
            "RUN ID", "TASK", "PLATFORM", "STATUS", "TRIGGER", "STARTED", "DURATION",
        ],
        &rows,
    );
}

/// `show-run` as key/value lines.
pub fn run_details(r: &Value) {
    let kv = |k: &str, v: String| kv(14, k, &v);
    kv("Run ID:", s(&r["runId"]));
    kv("Task:", s(&r["task"]));
    kv("Run type:", s(&r["runType"]));
    kv("Status:", s(&r["status"]));
    kv("Trigger:", trigger(r));
    if r["trigger"]["type"] == "ImageUpdate" {
        let t = &r["trigger"];
        kv(
            "Base update:",
            format!(
                "{} {} -> {}",
                s(&t["image"]),
                s(&t["oldDigest"]),
                s(&t["newDigest"])
            ),
        );
        kv("Cause:", s(&t["cause"]));
    }
    kv("Platform:", s(&r["platform"]));
    kv("Created:", s(&r["createTime"]));
    kv("Started:", s(&r["startTime"]));
    kv("Finished:", s(&r["finishTime"]));
    kv("Duration:", duration(r));
    if let Some(e) = r["error"].as_str() {
        kv("Error:", e.to_string());
    }
    for (i, o) in r["outputImages"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        kv(
            if i == 0 { "Images:" } else { "" },
            format!(
                "{}/{}:{} {}",
                s(&o["registry"]),
                s(&o["repository"]),
                s(&o["tag"]),
                s(&o["digest"])
            ),
        );
    }
    for (i, b) in r["baseImages"].as_array().into_iter().flatten().enumerate() {
        let kind = if b["runtime"] == true {
            "runtime"
        } else {
            "build-time"
        };
        kv(
            if i == 0 { "Base images:" } else { "" },
            format!("{} {} ({kind})", s(&b["image"]), s(&b["digest"])),
        );
    }
    for (i, st) in r["steps"].as_array().into_iter().flatten().enumerate() {
        kv(
            if i == 0 { "Steps:" } else { "" },
            format!(
                "{} {} exit={}",
                s(&st["id"]),
                s(&st["status"]),
                s(&st["exitCode"])
            ),
        );
    }
}
