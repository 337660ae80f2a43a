//! Cold start and warm latency of the Lambda function binaries (issue #4),
//! run by `infra/bench/lambda.sh`.
//!
//! Each binary runs as a process against a Lambda Runtime API emulator in
//! this process; its AWS calls go (`AWS_ENDPOINT_URL`) to a timing proxy in
//! this process that forwards them to `moto_server` and records how long
//! each one took. Measured:
//!
//! - init: process spawn -> its first `GET /next` (the runtime is ready);
//! - cold start: process spawn -> the `POST .../response` of the first
//!   event, which was queued before the spawn (N fresh processes);
//! - warm: one process, K events back to back; per invocation, the event
//!   handed out on `/next` -> its `/response` arriving;
//! - "excl. AWS": the same minus the time the proxy spent on the AWS calls
//!   made inside that window (from the request's first byte at the proxy to
//!   the answer's last byte written back). The SDK's own work (building,
//!   signing, parsing) stays in the function's time.
//!
//! The baseline is `examples/hello.rs` (echo, same profile); the emulator's
//! own cost is shown by a raw HTTP client that plays the runtime
//! (`GET /next`, `POST /response`) with no function at all.
//!
//! Usage: `lambda_bench --moto URL --hello PATH [--function NAME=PATH]...
//! [--event NAME=FILE]... [--env KEY=VALUE]... [--cold N] [--warm K]`.
//! Known names: `git-webhook`, `build-status`, `registry-event`, `schedule`;
//! a missing binary is skipped with a note.

use aws_sdk_dynamodb::config::Credentials;
use chrono::Utc;
use crtask_core::domain::model::Run;
use crtask_core::ports::Store;
use crtask_testkit::{sign, GithubPush, RunBuilder};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

mod cases;
mod emulator;
mod http;
mod measure;

use cases::*;
use emulator::*;
use http::*;
use measure::*;

// ------------------------------------------------------------ reporting

/// Nearest-rank percentile of `v` (`p` in 0..=100).
fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn mean(v: &[usize]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().sum::<usize>() as f64 / v.len() as f64
}

fn size(path: &Path) -> String {
    std::fs::metadata(path)
        .map(|m| format!("{:.1} MiB", m.len() as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|_| "-".into())
}

fn summarize(ops: &[String]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for op in ops {
        match counts.iter_mut().find(|(o, _)| o == op) {
            Some((_, n)) => *n += 1,
            None => counts.push((op.clone(), 1)),
        }
    }
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(o, n)| {
            if *n > 1 {
                format!("{o} x{n}")
            } else {
                o.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

struct Args {
    moto: String,
    hello: PathBuf,
    functions: Vec<(String, PathBuf)>,
    events: HashMap<String, Value>,
    env: Vec<(String, String)>,
    cold: usize,
    warm: usize,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        moto: String::new(),
        hello: PathBuf::new(),
        functions: Vec::new(),
        events: HashMap::new(),
        env: Vec::new(),
        cold: 20,
        warm: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let pair = |v: String| -> Res<(String, String)> {
            v.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or(format!("'{v}' is not NAME=VALUE"))
        };
        match flag.as_str() {
            "--moto" => a.moto = value()?,
            "--hello" => a.hello = value()?.into(),
            "--function" => {
                let (k, v) = pair(value()?)?;
                a.functions.push((k, v.into()));
            }
            "--event" => {
                let (k, v) = pair(value()?)?;
                let text =
                    std::fs::read_to_string(&v).map_err(|e| format!("cannot read {v}: {e}"))?;
                let e = serde_json::from_str(&text).map_err(|e| format!("{v}: {e}"))?;
                a.events.insert(k, e);
            }
            "--env" => a.env.push(pair(value()?)?),
            "--cold" => a.cold = value()?.parse().map_err(|e| format!("--cold: {e}"))?,
            "--warm" => a.warm = value()?.parse().map_err(|e| format!("--warm: {e}"))?,
            other => {
                return Err(format!(
                    "unknown argument '{other}' (see the file's header)"
                ))
            }
        }
    }
    if a.moto.is_empty() || a.hello.as_os_str().is_empty() {
        return Err("--moto URL and --hello PATH are required".into());
    }
    if a.cold == 0 || a.warm == 0 {
        return Err("--cold and --warm must be at least 1".into());
    }
    Ok(a)
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("lambda_bench: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Res<()> {
    let args = parse_args()?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| format!("tokio: {e}"))?;
    // One queued run per build-status event (cold reps, warm start, warm).
    let mut env = rt.block_on(setup(&args.moto, args.cold + args.warm + 1))?;
    env.extend(args.env.iter().cloned());
    let proxy = Proxy::start(&args.moto)?;

    let hello_case = Case {
        label: "hello (lambda_runtime echo, baseline)".into(),
        binary: args.hello.clone(),
        env: Vec::new(),
        event: Box::new(|i| json!({"hello": "world", "n": i})),
        check: Box::new(|o| match o {
            Outcome::Response(v) if v["hello"] == "world" => Ok(()),
            other => Err(format!("hello did not echo its event: {other:?}")),
        }),
        note: None,
    };
    let mut cases = vec![hello_case];
    let mut skipped = Vec::new();
    for (name, path) in &args.functions {
        if !path.is_file() {
            skipped.push(format!("{name}: no binary at {}: skipped", path.display()));
            continue;
        }
        cases.extend(cases_for(name, path, &env, &args.events)?);
    }

    let emulator = measure_emulator(args.warm)?;
    eprintln!("cold starts: {} x {} cases ...", args.cold, cases.len());
    let mut results = Vec::new();
    for (case, r) in cases
        .iter()
        .zip(measure(&cases, &proxy, args.cold, args.warm))
    {
        match r {
            Ok(m) => results.push((case, m)),
            Err(e) => skipped.push(format!("{}: failed: {e}", case.label)),
        }
    }

    let Some((_, hello)) = results.first() else {
        return Err(format!("the hello baseline failed: {}", skipped.join("; ")));
    };
    let (hello_init, hello_cold, hello_cold_excl) = (
        pct(&hello.init, 50.0),
        pct(&hello.cold, 50.0),
        pct(&hello.cold_excl, 50.0),
    );
    println!(
        "{} cold starts and {} warm invocations per row; times in ms.\n",
        args.cold, args.warm
    );
    println!("| function (event) | binary | init p50 (x hello) | cold start min / p50 / p90 | cold p50 excl. AWS | cold ratio to hello (raw / excl. AWS) | warm p50 / p99 | warm excl. AWS p50 / p99 | AWS calls (cold / warm) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (case, m) in &results {
        println!(
            "| {} | {} | {:.2} ({:.2}) | {:.2} / {:.2} / {:.2} | {:.2} | {:.2} / {:.2} | {:.3} / {:.3} | {:.3} / {:.3} | {:.1} / {:.1} |",
            case.label,
            size(&case.binary),
            pct(&m.init, 50.0),
            pct(&m.init, 50.0) / hello_init,
            pct(&m.cold, 0.0),
            pct(&m.cold, 50.0),
            pct(&m.cold, 90.0),
            pct(&m.cold_excl, 50.0),
            pct(&m.cold, 50.0) / hello_cold,
            pct(&m.cold_excl, 50.0) / hello_cold_excl,
            pct(&m.warm, 50.0),
            pct(&m.warm, 99.0),
            pct(&m.warm_excl, 50.0),
            pct(&m.warm_excl, 99.0),
            mean(&m.cold_calls),
            mean(&m.warm_calls),
        );
    }
    println!(
        "| emulator alone (raw HTTP client as the runtime, no process) | - | - | - | - | - | {:.3} / {:.3} | - | 0 |",
        pct(&emulator.warm, 50.0),
        pct(&emulator.warm, 99.0)
    );
    println!("\nAWS calls (first cold invocation; one warm invocation):\n");
    for (case, m) in &results {
        println!(
            "- {}: cold: {}; warm: {}",
            case.label,
            summarize(&m.cold_ops),
            summarize(&m.warm_ops)
        );
    }
    println!(
        "\nOne warm invocation, in order (ms; \"own\" is the function's time between AWS calls):\n"
    );
    for (case, m) in &results {
        println!("- {}: {}", case.label, m.timeline);
    }
    skipped.push(format!(
        "the functions opened {} connections to the AWS proxy for {} calls",
        proxy.connections.load(Ordering::Relaxed),
        lock(&proxy.calls).len()
    ));
    let notes: Vec<String> = results
        .iter()
        .flat_map(|(c, m)| {
            c.note
                .iter()
                .map(move |n| format!("{}: {n}", c.label))
                .chain(m.notes.iter().map(move |n| format!("{}: {n}", c.label)))
        })
        .chain(skipped.iter().cloned())
        .collect();
    if !notes.is_empty() {
        println!("\nNotes:\n");
        for n in notes {
            println!("- {n}");
        }
    }
    Ok(())
}
