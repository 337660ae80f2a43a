//! Exactly-once intake under crashes: a stream of signed GitHub deliveries
//! to the real `crtask serve`, SIGKILLed at random points and restarted,
//! with unacknowledged deliveries sent again as a provider would. Then:
//! every acknowledged (2xx) delivery id has exactly one event, the one its
//! answers named; no commit has two builds that were not interrupted; no run
//! is left queued or running (queued runs are resumed after a restart).

use crtask_tests::{github_signature, GitServer, Registry, Server};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "crash-test-secret";
const DELIVERIES: usize = 300;
const KILLS: usize = 6;
const SENDERS: usize = 3;

/// One delivery as the provider would (re)send it.
#[derive(Clone)]
struct Delivery {
    id: String,
    body: Vec<u8>,
}

/// What a 2xx answer said.
#[derive(Debug)]
struct Ack {
    delivery: String,
    event: String,
    outcome: String,
}

fn push_body(url: &str, branch: &str, commit: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": format!("refs/heads/{branch}"),
        "before": "0000000000000000000000000000000000000000",
        "after": commit,
        "created": false, "deleted": false, "forced": false,
        "commits": [{"id": commit, "message": "change", "added": [], "removed": [], "modified": ["v.txt"]}],
        "head_commit": {"id": commit, "message": "change", "added": [], "removed": [], "modified": ["v.txt"]},
        "repository": {"full_name": "test/repo", "clone_url": url, "html_url": url, "default_branch": "main"},
        "pusher": {"name": "tester"}
    }))
    .unwrap()
}

/// The stream: new deliveries of a few real commits, redeliveries of
/// earlier ids, and pushes to a branch no task tracks.
fn stream(url: &str, commits: &[String]) -> Vec<Delivery> {
    let mut out: Vec<Delivery> = Vec::new();
    for i in 0..DELIVERIES {
        let roll = fastrand::u8(0..100);
        let d = if roll < 15 && !out.is_empty() {
            out[fastrand::usize(0..out.len())].clone()
        } else {
            let branch = if roll < 30 { "dev" } else { "main" };
            let commit = &commits[fastrand::usize(0..commits.len())];
            Delivery {
                id: format!("crash-{i}"),
                body: push_body(url, branch, commit),
            }
        };
        out.push(d);
    }
    out
}

/// Sends one delivery; `None` when it was not acknowledged (server down).
fn send(client: &reqwest::blocking::Client, url: &str, d: &Delivery) -> Option<(u16, Value)> {
    let resp = client
        .post(format!("{url}/webhooks/git"))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", &d.id)
        .header("X-Hub-Signature-256", github_signature(SECRET, &d.body))
        .header("Content-Type", "application/json")
        .body(d.body.clone())
        .send()
        .ok()?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().ok()?;
    Some((status, body))
}

#[test]
fn acknowledged_deliveries_survive_sigkill_exactly_once() {
    let reg = Registry::start().unwrap();
    reg.seed("base:1", "v1").unwrap();
    let git = GitServer::start().unwrap();
    let dockerfile = format!("FROM {}/base:1\nCOPY v.txt /v.txt\n", reg.host);
    let mut commits = vec![git
        .commit("main", &[("Dockerfile", &dockerfile), ("v.txt", "0")], "c0")
        .unwrap()];
    for i in 1..4 {
        commits.push(
            git.commit("main", &[("v.txt", &i.to_string())], &format!("c{i}"))
                .unwrap(),
        );
    }
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let secret_arg = secret.display().to_string();
    let mut srv = Server::start(&reg, &["--git-webhook-secret-file", &secret_arg]).unwrap();
    let url = git.url();
    srv.cli_json(&[
        "task",
        "create",
        "--name",
        "app",
        "-c",
        &format!("{url}#main"),
        "-t",
        "app:c-{{.Run.Commit}}",
    ])
    .unwrap();

    let queue: Arc<Mutex<VecDeque<Delivery>>> =
        Arc::new(Mutex::new(stream(&url, &commits).into_iter().collect()));
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (queue, acks, errors, in_flight) = (
                queue.clone(),
                acks.clone(),
                errors.clone(),
                in_flight.clone(),
            );
            let base = srv.url.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                loop {
                    let next = {
                        let mut q = queue.lock().unwrap();
                        let d = q.pop_front();
                        if d.is_some() {
                            in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        d
                    };
                    let Some(d) = next else {
                        if in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    match send(&client, &base, &d) {
                        Some((status, body)) if (200..300).contains(&status) => {
                            acks.lock().unwrap().push(Ack {
                                delivery: d.id.clone(),
                                event: body["event"].as_str().unwrap_or_default().to_string(),
                                outcome: body["outcome"].as_str().unwrap_or_default().to_string(),
                            });
                        }
                        Some((status, body)) => {
                            errors.lock().unwrap().push(format!("{status} {body}"));
                        }
                        None => {
                            // Not acknowledged: the provider sends it again later.
                            queue.lock().unwrap().push_back(d);
                            std::thread::sleep(Duration::from_millis(30));
                        }
                    }
                    in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();

    // SIGKILL at random points of the stream, then restart on the same data.
    let mut kills = 0;
    while kills < KILLS && !queue.lock().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(fastrand::u64(100..900)));
        srv.kill();
        kills += 1;
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..200)));
        srv.restart().unwrap();
    }
    for s in senders {
        s.join().unwrap();
    }
    // A last crash with builds in flight, so a restart must resume them.
    srv.kill();
    srv.restart().unwrap();

    let errors = errors.lock().unwrap();
    assert!(errors.is_empty(), "non-2xx answers: {errors:?}");
    let acks = acks.lock().unwrap();
    assert!(kills > 0, "the stream ended before any crash");

    // Every acknowledged delivery id: exactly one event, the one every answer named.
    let events = srv
        .cli_json(&["events", "list", "--source", "git", "--top", "100000"])
        .unwrap();
    let mut by_delivery: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in events.as_array().unwrap() {
        if let Some(d) = e["deliveryId"].as_str() {
            by_delivery.entry(d.to_string()).or_default().push(e);
        }
    }
    for ack in acks.iter() {
        let rows = by_delivery
            .get(&ack.delivery)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        assert_eq!(rows.len(), 1, "delivery {}: {rows:?}", ack.delivery);
        assert_eq!(
            rows[0]["id"],
            ack.event.as_str(),
            "delivery {}",
            ack.delivery
        );
        assert_eq!(
            rows[0]["outcome"],
            ack.outcome.as_str(),
            "delivery {}",
            ack.delivery
        );
    }
    for (d, rows) in &by_delivery {
        assert_eq!(rows.len(), 1, "delivery {d} recorded twice: {rows:?}");
    }

    // No run stuck: every queued run is resumed and ends.
    let start = Instant::now();
    let runs = loop {
        let runs = srv
            .cli_json(&["task", "list-runs", "--top", "1000"])
            .unwrap();
        let open = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| matches!(r["status"].as_str(), Some("Queued" | "Started" | "Running")))
            .count();
        if open == 0 {
            break runs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "runs still open after a restart: {runs}\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };

    // No commit built twice: per commit, every run but one ended in Error
    // (interrupted by a SIGKILL); none failed.
    let mut by_commit: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for r in runs.as_array().unwrap() {
        let commit = r["trigger"]["commit"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        by_commit
            .entry(commit)
            .or_default()
            .push(r["status"].as_str().unwrap_or_default());
    }
    for (commit, statuses) in &by_commit {
        let completed = statuses.iter().filter(|s| **s != "Error").count();
        assert!(
            completed <= 1,
            "commit {commit} built more than once: {statuses:?}\n{}",
            srv.log()
        );
        assert!(
            !statuses.contains(&"Failed"),
            "commit {commit}: {statuses:?}\n{}",
            srv.log()
        );
    }
    let acked: std::collections::BTreeSet<&str> =
        acks.iter().map(|a| a.delivery.as_str()).collect();
    eprintln!(
        "{} deliveries acknowledged ({} distinct ids), {kills} SIGKILLs, {} runs over {} commits",
        acks.len(),
        acked.len(),
        runs.as_array().unwrap().len(),
        by_commit.len()
    );
}
