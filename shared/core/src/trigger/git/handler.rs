//! Step 4 of a git webhook, the handler: raw request in, runs and an
//! answer out.
//!
//! The same function serves `POST /webhooks/git` of the local server and the
//! `git-webhook` Lambda. Order: size limit, provider, signature on the raw
//! bytes, redelivery check, parse, match every task, record runs, record the
//! event (durably), and only then hand the runs to the builder.

use crate::domain::model::{
    ContextSource, EventRecord, EventSource, Outcome, RunType, Task, Trigger,
};
use crate::ports::{Builder, Clock, Store};
use crate::run::queue::{self, NewRun, Recorded};
use crate::signing::Secret;
use crate::trigger::git::decide::{self, Decision, SourceTrigger};
use crate::trigger::git::event::{self, GitEvent};
use crate::trigger::git::verify;
use crate::trigger::request::{Headers, HookAnswer};
use serde_json::{json, Value};

/// Default largest body accepted (GitHub caps payloads at 25 MB).
pub const DEFAULT_BODY_LIMIT: usize = 25 * 1024 * 1024;

/// What the handler needs.
pub struct GitHookDeps<'a> {
    pub store: &'a dyn Store,
    pub builder: &'a dyn Builder,
    pub clock: &'a dyn Clock,
    /// Every currently valid secret (rotation: any one verifies).
    pub secrets: &'a [Secret],
    pub body_limit: usize,
}

/// Handles one delivery. Never panics on input; 5xx only when the store fails.
pub async fn handle(
    deps: &GitHookDeps<'_>,
    headers: &[(String, String)],
    body: &[u8],
) -> HookAnswer {
    let h = Headers::new(headers);
    let received_at = deps.clock.now();
    let provider = verify::detect_provider(&h);
    let delivery = provider.and_then(|p| event::delivery_id(p, &h));
    let mut detail = json!({
        "provider": provider.map(|p| p.as_str()),
        "deliveryId": delivery,
    });

    let reject = |status: u16, reason: String, detail: Value| async move {
        // Rejections are recorded too; failing to record one changes nothing.
        if let Ok(id) = deps.store.next_event_id().await {
            let _ = deps
                .store
                .record_event(&EventRecord {
                    id,
                    source: EventSource::Git,
                    delivery_id: None,
                    received_at,
                    outcome: Outcome::Rejected,
                    reason: reason.clone(),
                    runs: Vec::new(),
                    detail,
                })
                .await;
        }
        HookAnswer::error(status, reason)
    };

    if body.len() > deps.body_limit {
        return reject(
            413,
            format!(
                "body of {} bytes is over the limit of {} bytes",
                body.len(),
                deps.body_limit
            ),
            detail,
        )
        .await;
    }
    let Some(provider) = provider else {
        return reject(
            400,
            "unknown sender: expected a GitHub, GitLab, Gitea, Forgejo or Bitbucket event header"
                .into(),
            detail,
        )
        .await;
    };
    if let Err(e) = verify::verify(provider, &h, body, deps.secrets) {
        return reject(401, e.to_string(), detail).await;
    }

    // A redelivery answers with what the first delivery did and starts nothing.
    if let Some(d) = &delivery {
        match deps.store.find_delivery(EventSource::Git, d).await {
            Ok(Some(prev)) => {
                let reason = format!("delivery {d} was already handled (event {})", prev.id);
                let answer = json!({
                    "outcome": prev.outcome, "reason": prev.reason, "runs": prev.runs,
                    "duplicate": true, "event": prev.id,
                });
                if let Err(e) = record(
                    deps,
                    Outcome::Duplicate,
                    reason,
                    prev.runs.clone(),
                    None,
                    received_at,
                    detail,
                )
                .await
                {
                    return HookAnswer::error(500, e.to_string());
                }
                return HookAnswer {
                    status: 202,
                    body: answer,
                };
            }
            Ok(None) => {}
            Err(e) => return HookAnswer::error(500, e.to_string()),
        }
    }

    let content_type = h_get(headers, "content-type");
    let events = match event::parse_all(provider, &h, content_type.as_deref(), body) {
        Ok(ev) => ev,
        Err(e) => return reject(400, e.to_string(), detail).await,
    };
    if let Some(first) = events.first() {
        describe(first, &mut detail);
    }

    let tasks = match deps.store.list_tasks().await {
        Ok(t) => t,
        Err(e) => return HookAnswer::error(500, e.to_string()),
    };
    let mut created = Vec::new();
    let mut existing = Vec::new();
    let mut reasons = Vec::new();
    for event in &events {
        if let GitEvent::Ping { .. } = event {
            reasons.push("ping: the webhook works, nothing to build".to_string());
            continue;
        }
        if let GitEvent::Ignored { reason, .. } = event {
            reasons.push(reason.clone());
            continue;
        }
        let mut tracked_any = false;
        for task in &tasks {
            let Some((url, branch)) = source_of(task) else {
                continue;
            };
            if !event_repo_matches(event, &url) {
                continue;
            }
            tracked_any = true;
            let trigger = SourceTrigger {
                repo_url: &url,
                branch: &branch,
                commit_enabled: task.commit_trigger_enabled,
                pull_request_enabled: task.pull_request_trigger_enabled,
                tags_enabled: task.tag_trigger_enabled,
                path_filters: &task.path_filters,
            };
            let decision = decide::decide(event, &trigger);
            let new = match new_run(task, &url, &decision) {
                Ok(Some(n)) => n,
                Ok(None) => {
                    if let Decision::Ignore(r) = decision {
                        reasons.push(format!("task {}: {r}", task.name));
                    }
                    continue;
                }
                Err(e) => {
                    reasons.push(format!("task {}: {e}", task.name));
                    continue;
                }
            };
            match queue::record(deps.store, deps.clock, new).await {
                Ok(Recorded::New(run)) => created.push(run),
                Ok(Recorded::Existing(run)) => {
                    reasons.push(format!(
                        "task {}: commit {} is already {} (run {})",
                        task.name,
                        short(run_commit(&run.trigger)),
                        if run.status.is_terminal() {
                            "built"
                        } else {
                            "queued or building"
                        },
                        run.run_id
                    ));
                    existing.push(run);
                }
                Err(e) => return HookAnswer::error(500, e.to_string()),
            }
        }
        if !tracked_any {
            if let Some(repo) = detail["repository"].as_str() {
                reasons.push(format!("no task tracks repository {repo}"));
            } else {
                reasons.push("no task tracks this repository".into());
            }
        }
    }

    let (outcome, reason, run_ids) = if !created.is_empty() {
        let ids: Vec<String> = created.iter().map(|r| r.run_id.clone()).collect();
        let what: Vec<String> = created
            .iter()
            .map(|r| format!("{} for task {}", r.run_id, r.task.as_deref().unwrap_or("?")))
            .collect();
        let mut reason = format!("started {}", what.join(", "));
        if !reasons.is_empty() {
            reason.push_str("; ");
            reason.push_str(&reasons.join("; "));
        }
        (Outcome::Triggered, reason, ids)
    } else if !existing.is_empty() {
        (
            Outcome::Duplicate,
            reasons.join("; "),
            existing.iter().map(|r| r.run_id.clone()).collect(),
        )
    } else {
        (Outcome::Ignored, reasons.join("; "), Vec::new())
    };

    let event_id = match record(
        deps,
        outcome,
        reason.clone(),
        run_ids.clone(),
        delivery.clone(),
        received_at,
        detail,
    )
    .await
    {
        Ok(id) => id,
        Err(e) => return HookAnswer::error(500, e.to_string()),
    };
    // The event and its runs are durable; now the builds may start.
    for run in &mut created {
        if let Err(e) = queue::dispatch(deps.store, deps.builder, run).await {
            return HookAnswer::error(500, e.to_string());
        }
    }
    HookAnswer {
        status: 202,
        body: json!({"outcome": outcome, "reason": reason, "runs": run_ids, "event": event_id}),
    }
}

async fn record(
    deps: &GitHookDeps<'_>,
    outcome: Outcome,
    reason: String,
    runs: Vec<String>,
    delivery_id: Option<String>,
    received_at: chrono::DateTime<chrono::Utc>,
    detail: Value,
) -> crate::Result<String> {
    let id = deps.store.next_event_id().await?;
    deps.store
        .record_event(&EventRecord {
            id: id.clone(),
            source: EventSource::Git,
            delivery_id,
            received_at,
            outcome,
            reason,
            runs,
            detail,
        })
        .await?;
    Ok(id)
}

fn h_get(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn run_commit(t: &Trigger) -> &str {
    match t {
        Trigger::Commit { commit, .. } | Trigger::PullRequest { commit, .. } => commit,
        _ => "",
    }
}

/// The task's repository URL and tracked branch, for git-context tasks.
fn source_of(task: &Task) -> Option<(String, String)> {
    match ContextSource::parse_task_context(&task.context).ok()? {
        ContextSource::Git { url, reference, .. } => {
            let branch = task
                .branch
                .clone()
                .or(reference)
                .unwrap_or_else(|| decide::DEFAULT_BRANCH.to_string());
            Some((url, branch))
        }
        _ => None,
    }
}

fn event_repo_matches(event: &GitEvent, url: &str) -> bool {
    match event {
        GitEvent::Push(p) => decide::repo_matches(&p.repository, url),
        GitEvent::PullRequest(pr) => decide::repo_matches(&pr.repository, url),
        _ => false,
    }
}

/// The run a decision asks for; `None` when it says to ignore.
fn new_run(task: &Task, url: &str, decision: &Decision) -> crate::Result<Option<NewRun>> {
    let mut spec = queue::spec_from_task(task, &Default::default())?;
    let (trigger, key) = match decision {
        Decision::Ignore(_) => return Ok(None),
        Decision::Build {
            commit,
            branch,
            is_tag,
        } => (
            Trigger::Commit {
                commit: commit.clone(),
                branch: branch.clone(),
                repository: url.to_string(),
            },
            if *is_tag {
                // A tag of an already built commit still builds (its tags differ).
                format!("tag:{}@{commit}:{branch}", task.name)
            } else {
                format!("commit:{}@{commit}", task.name)
            },
        ),
        Decision::BuildPullRequest {
            number,
            commit,
            branch,
            from_fork,
        } => {
            // Pull requests are untrusted code: never secrets; push only on opt-in, never from forks.
            spec.build_args.retain(|a| !a.secret);
            spec.push = spec.push && task.pull_request_push_enabled && !from_fork;
            (
                Trigger::PullRequest {
                    number: *number,
                    commit: commit.clone(),
                    branch: branch.clone(),
                    repository: Some(url.to_string()),
                },
                format!("pr:{}@{commit}", task.name),
            )
        }
    };
    Ok(Some(NewRun {
        task: Some(task.name.clone()),
        run_type: if crate::build::taskfile::is_task_file(&task.file) {
            RunType::AutoRun
        } else {
            RunType::AutoBuild
        },
        trigger,
        spec,
        dedupe_key: Some(key),
    }))
}

fn repo_name(r: &event::RepoUrls) -> Option<String> {
    r.urls.first().cloned().or_else(|| r.full_name.clone())
}

/// Adds what the event is about to the record's detail.
fn describe(event: &GitEvent, detail: &mut Value) {
    let Some(d) = detail.as_object_mut() else {
        return;
    };
    d.insert("event".into(), json!(event.kind()));
    match event {
        GitEvent::Push(p) => {
            d.insert("repository".into(), json!(repo_name(&p.repository)));
            d.insert("ref".into(), json!(p.git_ref));
            d.insert("commit".into(), json!(p.after));
        }
        GitEvent::PullRequest(pr) => {
            d.insert("repository".into(), json!(repo_name(&pr.repository)));
            d.insert("number".into(), json!(pr.number));
            d.insert("commit".into(), json!(pr.head_sha));
            d.insert("action".into(), json!(pr.action));
        }
        _ => {}
    }
}
