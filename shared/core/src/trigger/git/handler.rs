//! Step 4 of a git webhook, the handler: raw request in, runs and an
//! answer out.
//!
//! The same function serves `POST /webhooks/git` of the local server and the
//! `git-webhook` Lambda. Order: size limit, provider, signature on the raw
//! bytes, redelivery check, parse, match every task, record runs, record the
//! event (durably), and only then hand the runs to the builder.

use crate::domain::model::{
    ContextSource, EventRecord, EventSource, Outcome, Run, RunType, Task, Trigger,
};
use crate::domain::text::inert_owned;
use crate::ports::{
    Builder, Clock, Decide, Decided, DeliveryRecorded, DeliverySummary, DeliveryWrite, Store,
};
use crate::run::queue::{self, NewRun};
use crate::signing::Secret;
use crate::trigger::answer::Answer;
use crate::trigger::git::decide::{self, Decision, SourceTrigger};
use crate::trigger::git::event::{self, GitEvent};
use crate::trigger::git::verify;
use crate::trigger::request::Headers;
use serde_json::{json, Value};
use std::sync::Arc;

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

/// Handles one delivery: [`intake`] (verify and parse, or refuse), then
/// [`apply`]: a redelivery check, [`plan`] (pure: which task builds what)
/// against the tasks the store reads, record the runs and the event, then
/// dispatch. Never panics on
/// input; 5xx only when the store fails.
pub async fn handle(deps: &GitHookDeps<'_>, headers: &[(String, String)], body: &[u8]) -> Answer {
    let received_at = deps.clock.now();
    let delivery = match intake(deps, headers, body) {
        Ok(d) => d,
        Err(refused) => {
            // Rejections are recorded too; failing to record one changes nothing.
            let _ = record(
                deps,
                Outcome::Rejected,
                refused.reason.clone(),
                Vec::new(),
                None,
                received_at,
                refused.detail,
            )
            .await;
            return Answer::rejected(refused.status, refused.reason);
        }
    };

    match apply(deps, delivery, received_at).await {
        Ok(answer) => answer,
        Err(e) => Answer::rejected(500, e.to_string()),
    }
}

/// A delivery that passed [`intake`]: its events and what the event record
/// says about it.
#[derive(Debug)]
pub struct Delivery {
    /// The provider's delivery id (`X-GitHub-Delivery`, ...), for dedupe.
    pub id: Option<String>,
    pub events: Vec<GitEvent>,
    /// Provider, delivery id, and what the first event is about.
    pub detail: Value,
}

/// Why a delivery was refused: the status, the reason, and the detail the
/// rejection is recorded with.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub reason: String,
    pub detail: Value,
}

/// Checks a delivery before anything is decided: size limit, provider,
/// signature on the raw bytes, then parsing. Reads no store.
pub fn intake(
    deps: &GitHookDeps<'_>,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Delivery, Refused> {
    let h = Headers::new(headers);
    let provider = verify::detect_provider(&h);
    let id = provider.and_then(|p| event::delivery_id(p, &h));
    let mut detail = json!({
        "provider": provider.map(|p| p.as_str()),
        "deliveryId": id,
    });
    let refuse = |status: u16, reason: String, detail: Value| Refused {
        status,
        reason,
        detail,
    };
    if body.len() > deps.body_limit {
        let reason = format!(
            "body of {} bytes is over the limit of {} bytes",
            body.len(),
            deps.body_limit
        );
        return Err(refuse(413, reason, detail));
    }
    let Some(provider) = provider else {
        let reason =
            "unknown sender: expected a GitHub, GitLab, Gitea, Forgejo or Bitbucket event header";
        return Err(refuse(400, reason.into(), detail));
    };
    if let Err(e) = verify::verify(provider, &h, body, deps.secrets) {
        return Err(refuse(401, e.to_string(), detail));
    }
    let content_type = h_get(headers, "content-type");
    let events = match event::parse_all(provider, &h, content_type.as_deref(), body) {
        Ok(ev) => ev,
        Err(e) => return Err(refuse(400, e.to_string(), detail)),
    };
    if let Some(first) = events.first() {
        describe(first, &mut detail);
    }
    Ok(Delivery { id, events, detail })
}

/// What a delivery asks for, decided without the world: the runs to record
/// and the reasons for everything else.
#[derive(Debug, Default)]
pub struct Plan {
    pub runs: Vec<NewRun>,
    pub reasons: Vec<String>,
}

/// Decides, for every event of a delivery and every task, what it builds;
/// `repository` (the delivery's, as its record names it) is for the reason
/// when no task tracks it.
pub fn plan(events: &[GitEvent], repository: Option<&str>, tasks: &[Task]) -> Plan {
    let mut plan = Plan::default();
    for event in events {
        if let GitEvent::Ping { .. } = event {
            plan.reasons
                .push("ping: the webhook works, nothing to build".to_string());
            continue;
        }
        if let GitEvent::Ignored { reason, .. } = event {
            plan.reasons.push(reason.clone());
            continue;
        }
        let mut tracked_any = false;
        for task in tasks {
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
            match new_run(task, &url, &decision) {
                Ok(Some(n)) => plan.runs.push(n),
                Ok(None) => {
                    if let Decision::Ignore(r) = decision {
                        plan.reasons.push(format!("task {}: {r}", task.name));
                    }
                }
                Err(e) => plan.reasons.push(format!("task {}: {e}", task.name)),
            }
        }
        if !tracked_any {
            match repository {
                Some(repo) => plan
                    .reasons
                    .push(format!("no task tracks repository {repo}")),
                None => plan.reasons.push("no task tracks this repository".into()),
            }
        }
    }
    plan
}

/// Records the delivery, decided ([`plan`]) against the tasks the store
/// reads for it, with its runs (a run whose dedupe key already stands is not
/// recorded again) and its event in one transaction
/// ([`Store::record_decided_delivery`]), and only then hands the new runs to
/// the builder. A delivery id seen before answers with what the first
/// delivery did and starts nothing.
pub async fn apply(
    deps: &GitHookDeps<'_>,
    delivery: Delivery,
    received_at: chrono::DateTime<chrono::Utc>,
) -> crate::Result<Answer> {
    let now = deps.clock.now();
    let Delivery { id, events, detail } = delivery;
    let repository = detail["repository"].as_str().map(str::to_string);
    let decide: Decide = Box::new(move |tasks| {
        let plan = plan(&events, repository.as_deref(), tasks);
        let reasons = plan.reasons;
        Decided {
            runs: plan
                .runs
                .into_iter()
                .map(|new| queue::new_run_record(String::new(), new, now))
                .collect(),
            summarize: Arc::new(move |runs, blocked| summarize(&reasons, runs, blocked)),
        }
    });
    let write = DeliveryWrite {
        source: EventSource::Git,
        delivery_id: id,
        received_at,
        detail,
        runs: Vec::new(),
    };
    match deps.store.record_decided_delivery(write, decide).await? {
        DeliveryRecorded::Seen(prev) => Ok(Answer::new(prev.outcome, prev.reason.clone())
            .with_runs(prev.runs.clone())
            .with_event(prev.id.clone())
            .duplicate()),
        DeliveryRecorded::New {
            event,
            mut new_runs,
        } => {
            // The event and its runs are durable; now the builds may start.
            for run in &mut new_runs {
                queue::dispatch(deps.store, deps.builder, run).await?;
            }
            Ok(Answer::new(event.outcome, event.reason)
                .with_runs(event.runs)
                .with_event(event.id))
        }
    }
}

/// What a delivery's event record says, once the store knows which of the
/// planned `runs` were recorded: `blocked[i]` is the existing run whose
/// dedupe key kept `runs[i]` from being recorded.
pub fn summarize(reasons: &[String], runs: &[Run], blocked: &[Option<Run>]) -> DeliverySummary {
    // Reasons may quote payload text (an action, a branch): recorded inert.
    let mut reasons: Vec<String> = reasons.iter().cloned().map(inert_owned).collect();
    let mut created = Vec::new();
    let mut existing = Vec::new();
    for (new, block) in runs.iter().zip(blocked) {
        match block {
            None => created.push(new),
            Some(run) => {
                reasons.push(format!(
                    "task {}: commit {} is already {} (run {})",
                    new.task.as_deref().unwrap_or_default(),
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
        }
    }
    if !created.is_empty() {
        let what: Vec<String> = created
            .iter()
            .map(|r| format!("{} for task {}", r.run_id, r.task.as_deref().unwrap_or("?")))
            .collect();
        let mut reason = format!("started {}", what.join(", "));
        if !reasons.is_empty() {
            reason.push_str("; ");
            reason.push_str(&reasons.join("; "));
        }
        DeliverySummary {
            outcome: Outcome::Triggered,
            reason,
            runs: created.iter().map(|r| r.run_id.clone()).collect(),
        }
    } else if !existing.is_empty() {
        DeliverySummary {
            outcome: Outcome::Duplicate,
            reason: reasons.join("; "),
            runs: existing.iter().map(|r| r.run_id.clone()).collect(),
        }
    } else {
        DeliverySummary {
            outcome: Outcome::Ignored,
            reason: reasons.join("; "),
            runs: Vec::new(),
        }
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
            // The reason may quote payload text (a refused ref name, a
            // header): stored inert, so no reader's terminal or log acts on it.
            reason: inert_owned(reason),
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
