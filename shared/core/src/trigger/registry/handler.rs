//! Step 4 of a registry push, the handler: a tag moved (registry
//! notification, poll, or an upstream task's push) -> which dependent tasks
//! rebuild, exactly once.
//!
//! [`handle`] serves `POST /webhooks/registry` locally and the
//! registry-event function on AWS: [`super::verify`], [`super::event`],
//! then [`process_update`] per tag: a [`Snapshot`] of what the decision
//! reads, the pure [`plan`] (which applies [`super::decide`]), and
//! [`apply`], which records the runs. When a run ends, [`after_run`] feeds
//! what it pushed back in ([`cascade`]) or releases the tasks that waited
//! for it ([`release_waiters`]), so cascades (A -> B -> C) do not depend on
//! the registry sending notifications.

use crate::domain::imageref::ImageRef;
use crate::domain::model::{
    EventRecord, EventSource, Outcome, Run, RunStatus, RunType, Task, Trigger,
};
use crate::ports::{Clock, DeliveryRecorded, DeliverySummary, DeliveryWrite, Store, Summarize};
use crate::run::lease;
use crate::run::queue::{self, NewRun, Recorded};
use crate::signing::Secret;
use crate::trigger::answer::{Answer, EventSummary};
use crate::trigger::registry::decide::{self, Dependent, Verdict};
use crate::trigger::registry::event::{self, TagUpdate};
use crate::trigger::registry::verify;
use crate::trigger::request::Headers;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What deciding on updates needs.
pub struct UpdateDeps<'a> {
    pub store: &'a dyn Store,
    pub clock: &'a dyn Clock,
    /// Registry for rendering task image templates (`{{.Run.Registry}}`,
    /// unqualified tags) when finding which task produces an image.
    pub registry: Option<&'a str>,
}

/// What one update led to.
#[derive(Debug, Clone)]
pub struct UpdateResult {
    pub outcome: Outcome,
    pub reason: String,
    /// Runs recorded now (`Queued`), to be dispatched by the caller.
    pub new_runs: Vec<Run>,
    /// Every run the update is answered with (new, merged into, or existing).
    pub runs: Vec<String>,
}

/// The images a task's pushes produce, as far as they can be known without
/// running it: its image templates rendered with a placeholder run id
/// (templated tags such as `{{.Run.ID}}` never match a base reference).
fn produced_images(task: &Task, registry: Option<&str>) -> Vec<String> {
    let vars = crate::template::RunVars {
        id: "\u{0}".into(),
        registry: registry.unwrap_or_default().to_string(),
        task_name: task.name.clone(),
        ..Default::default()
    };
    let data = vars.to_data(&task.values);
    crate::build::quick::render_tags(&task.images, &data, registry)
        .map(|tags| {
            tags.iter()
                .map(ImageRef::tagged)
                .filter(|t| !t.contains('\u{0}'))
                .collect()
        })
        .unwrap_or_default()
}

/// The run each task has under way, read in one go: its newest `Queued`
/// Which tasks push which images (tagged references), as far as their
/// image templates tell without running them.
fn producers<'a>(
    tasks: impl IntoIterator<Item = &'a Task>,
    registry: Option<&str>,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in tasks {
        for image in produced_images(t, registry) {
            out.entry(image).or_default().push(t.name.clone());
        }
    }
    out
}

/// run, else its newest `Started`, else its newest `Running` one.
async fn pending_runs(store: &dyn Store) -> crate::Result<BTreeMap<String, Run>> {
    let order = [RunStatus::Queued, RunStatus::Started, RunStatus::Running];
    let mut out: BTreeMap<String, Run> = BTreeMap::new();
    // Oldest first, so a later run of the same rank replaces an earlier one.
    for run in store.runs_in_status(&order).await? {
        let Some(task) = run.task.clone() else {
            continue;
        };
        let rank = |r: &Run| {
            order
                .iter()
                .position(|s| *s == r.status)
                .unwrap_or(order.len())
        };
        match out.get(&task) {
            Some(held) if rank(held) < rank(&run) => {}
            _ => {
                out.insert(task, run);
            }
        }
    }
    Ok(out)
}

/// Decides what `update` means for every dependent task and records the
/// runs it starts (not dispatched). `cause` is stored on each run's trigger.
///
/// Decisions read state (pending runs, queued runs) and then write runs:
/// two updates decided at once (both sides of a diamond finishing
/// together, in one process or in two function instances) must not both
/// see "nothing pending". Each decision holds the store's base-image lease
/// ([`lease::BASE_IMAGE_DECISIONS`]) from its first read to its last write.
pub async fn process_update(
    deps: &UpdateDeps<'_>,
    update: &TagUpdate,
    cause: &str,
) -> crate::Result<UpdateResult> {
    // Most pushes are of images nothing is built on: answer those without
    // taking the lease (two writes). Dependents that appear meanwhile are
    // found again under the lease, by `Snapshot::read`.
    if deps.store.dependents_of(&update.image).await?.is_empty() {
        return Ok(UpdateResult {
            outcome: Outcome::Ignored,
            reason: format!("no task depends on {}", update.image),
            new_runs: Vec::new(),
            runs: Vec::new(),
        });
    }
    let held = lease::acquire(deps.store, deps.clock, lease::BASE_IMAGE_DECISIONS).await?;
    let result = decide_and_record(deps, update, cause).await;
    held.release().await;
    result
}

async fn decide_and_record(
    deps: &UpdateDeps<'_>,
    update: &TagUpdate,
    cause: &str,
) -> crate::Result<UpdateResult> {
    let Some(snapshot) = Snapshot::read(deps, update).await? else {
        return Ok(UpdateResult {
            outcome: Outcome::Ignored,
            reason: format!("no task depends on {}", update.image),
            new_runs: Vec::new(),
            runs: Vec::new(),
        });
    };
    let plan = plan(update, cause, &snapshot)?;
    apply(deps, plan).await
}

/// Everything a decision on one update reads, read up front in a few
/// queries however many tasks depend on the image (no per-dependent reads
/// but for the few tasks that wait on an upstream: see docs/BENCHMARKS.md).
pub struct Snapshot {
    /// The tasks that depend on the image, with what the index says.
    pub dependents: Vec<Dependent>,
    pub tasks: BTreeMap<String, Task>,
    /// Which tasks push which images.
    pub producers: BTreeMap<String, Vec<String>>,
    /// The run each task has under way.
    pub pending: BTreeMap<String, Run>,
    /// Each dependent's newest successful run.
    pub last_ok: BTreeMap<String, Run>,
    /// For dependents with a base that a task under way will push again:
    /// the upstream task and run they wait for (confirmed by a direct read,
    /// since listings may lag).
    pub waiting_for: BTreeMap<String, (String, String)>,
}

impl Snapshot {
    /// Reads what deciding `update` needs; `None` when no task depends on
    /// the image.
    pub async fn read(deps: &UpdateDeps<'_>, update: &TagUpdate) -> crate::Result<Option<Self>> {
        let indexed = deps.store.dependents_of(&update.image).await?;
        if indexed.is_empty() {
            return Ok(None);
        }
        let all: BTreeMap<String, Task> = deps
            .store
            .list_tasks()
            .await?
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        let mut dependents = Vec::new();
        let mut tasks = BTreeMap::new();
        for (name, dep) in indexed {
            let Some(task) = all.get(&name) else {
                continue;
            };
            dependents.push(Dependent {
                task: name.clone(),
                image: dep.image,
                last_digest: dep.digest,
                runtime: dep.runtime,
                trigger_enabled: task.base_image_trigger_enabled,
                trigger_type: task.base_image_trigger_type,
                platforms: Vec::new(),
            });
            tasks.insert(name, task.clone());
        }
        let producers = producers(all.values(), deps.registry);
        let pending = pending_runs(deps.store).await?;
        let names: Vec<String> = tasks.keys().cloned().collect();
        let last_ok: BTreeMap<String, Run> = deps
            .store
            .last_succeeded_runs(&names)
            .await?
            .into_iter()
            .filter_map(|r| Some((r.task.clone()?, r)))
            .collect();
        // A multi-platform task's per-platform base digests live in its
        // last successful run's record.
        for d in dependents.iter_mut() {
            if let Some(r) = last_ok.get(&d.task) {
                d.platforms = platform_bases(r, &d.image);
            }
        }
        let waiting_for = waits(deps, &names, &producers, &pending).await?;
        Ok(Some(Snapshot {
            dependents,
            tasks,
            producers,
            pending,
            last_ok,
            waiting_for,
        }))
    }
}

/// The per-platform digests `run` recorded for the base `image` (a
/// normalised tagged reference); empty for a single-platform build.
pub fn platform_bases(run: &Run, image: &str) -> Vec<crate::domain::model::PlatformImage> {
    run.base_images
        .iter()
        .filter(|b| {
            crate::domain::imageref::ImageRef::parse(&b.image).is_ok_and(|r| r.tagged() == image)
        })
        .filter_map(|b| {
            Some(crate::domain::model::PlatformImage {
                platform: b.platform.clone()?,
                digest: b.digest.clone(),
            })
        })
        .collect()
}

/// For each of `names`, the upstream task (and its run) it waits for: one
/// that is rebuilding an image the task is also built on, so its push will
/// trigger the task once, after both.
async fn waits(
    deps: &UpdateDeps<'_>,
    names: &[String],
    producers: &BTreeMap<String, Vec<String>>,
    pending: &BTreeMap<String, Run>,
) -> crate::Result<BTreeMap<String, (String, String)>> {
    let mut out = BTreeMap::new();
    // Images that a task with a run under way will push again.
    let pending_images: BTreeSet<&String> = producers
        .iter()
        .filter(|(_, tasks)| tasks.iter().any(|t| pending.contains_key(t)))
        .map(|(image, _)| image)
        .collect();
    if pending_images.is_empty() {
        return Ok(out);
    }
    'task: for name in names {
        let bases = deps.store.dependencies_of(name).await?;
        for base in bases.iter().filter(|b| pending_images.contains(&b.image)) {
            for up in producers.get(&base.image).into_iter().flatten() {
                let Some(r) = pending.get(up).filter(|_| up != name) else {
                    continue;
                };
                // Listings may lag (a DynamoDB index): the run itself decides.
                let still = deps.store.get_run(&r.run_id).await?.is_some_and(|r| {
                    matches!(
                        r.status,
                        RunStatus::Queued | RunStatus::Started | RunStatus::Running
                    )
                });
                if still {
                    out.insert(name.clone(), (up.clone(), r.run_id.clone()));
                    continue 'task;
                }
            }
        }
    }
    Ok(out)
}

/// What one update decides, before anything is written: the runs to
/// record (with the verdict each comes from) and what became of the rest.
#[derive(Debug, Default)]
pub struct UpdatePlan {
    /// `(verdict, task, image, new digest, run)`.
    pub record: Vec<(String, String, String, String, NewRun)>,
    /// Runs under way that stand for this update.
    pub runs: Vec<String>,
    pub reasons: Vec<String>,
    pub debounced: bool,
    pub duplicate: bool,
    pub unchanged: bool,
    pub other: bool,
}

/// Decides, without the world, what `update` means for every dependent
/// task in `snap`. `cause` is stored on each run's trigger.
pub fn plan(update: &TagUpdate, cause: &str, snap: &Snapshot) -> crate::Result<UpdatePlan> {
    let mut p = UpdatePlan::default();
    for verdict in decide::decide(update, &snap.dependents) {
        let Verdict::Trigger {
            task: name,
            image,
            old_digest,
            new_digest,
        } = &verdict
        else {
            match verdict {
                Verdict::Unchanged { .. } => p.unchanged = true,
                _ => p.other = true,
            }
            p.reasons.push(verdict.to_string());
            continue;
        };
        let Some(task) = snap.tasks.get(name) else {
            continue;
        };

        // A task never rebuilds for a tag it pushes itself (no loops). This
        // holds while its run is still pushing (the registry's notification
        // arrives before the run ends) and does not depend on how fresh a
        // listing of its runs is.
        if snap
            .producers
            .get(image.as_str())
            .is_some_and(|ts| ts.iter().any(|t| t == name))
        {
            p.other = true;
            p.reasons.push(format!(
                "task {name}: {image} is its own output (it pushes that tag)"
            ));
            continue;
        }
        // Nor for a digest its last run pushed under another tag.
        if let Some(r) = snap.last_ok.get(name) {
            if r.output_images.iter().any(|o| &o.digest == new_digest) {
                p.other = true;
                p.reasons.push(format!(
                    "task {name}: {image} {new_digest} is its own output (run {})",
                    r.run_id
                ));
                continue;
            }
        }

        // Wait for an upstream task that is rebuilding one of this task's
        // other bases: its push will trigger this task once, after both.
        if let Some((up, run)) = snap.waiting_for.get(name) {
            p.debounced = true;
            p.reasons.push(format!("task {name}: waits for task {up} (run {run}) to finish rebuilding; its push will trigger {name} once"));
            continue;
        }

        // Several updates in a row (tags, architectures, cascades) fold into
        // one queued run; a task never built yet whose first run is under
        // way gets the current image from that run.
        if let Some(r) = snap.pending.get(name) {
            if old_digest.is_none() {
                p.debounced = true;
                p.reasons.push(format!(
                    "task {name}: run {} is under way and builds on the current {image}",
                    r.run_id
                ));
                p.runs.push(r.run_id.clone());
                continue;
            }
            if let Trigger::ImageUpdate {
                image: queued_image,
                new_digest: queued_digest,
                ..
            } = &r.trigger
            {
                if queued_image == image && queued_digest == new_digest {
                    p.duplicate = true;
                    p.reasons.push(format!(
                        "task {name}: {image} {new_digest} already has run {}",
                        r.run_id
                    ));
                    p.runs.push(r.run_id.clone());
                    continue;
                }
            }
            if r.status == RunStatus::Queued && matches!(r.trigger, Trigger::ImageUpdate { .. }) {
                p.debounced = true;
                p.reasons
                    .push(format!("task {name}: merged into queued run {}", r.run_id));
                p.runs.push(r.run_id.clone());
                continue;
            }
        }

        let spec = queue::spec_from_task(task, &BTreeMap::new())?;
        let run_type = if crate::build::taskfile::is_task_file(&spec.file) {
            RunType::AutoRun
        } else {
            RunType::AutoBuild
        };
        let new = NewRun {
            task: Some(name.clone()),
            run_type,
            trigger: Trigger::ImageUpdate {
                image: image.clone(),
                old_digest: old_digest.clone(),
                new_digest: new_digest.clone(),
                cause: Some(cause.to_string()),
            },
            spec,
            dedupe_key: Some(format!("image:{name}@{image}@{new_digest}")),
        };
        p.record.push((
            verdict.to_string(),
            name.clone(),
            image.clone(),
            new_digest.clone(),
            new,
        ));
    }
    Ok(p)
}

/// Records `plan`'s runs (every run of the update in one go: one durable
/// commit for the fan-out) and sums up the outcome.
pub async fn apply(deps: &UpdateDeps<'_>, plan: UpdatePlan) -> crate::Result<UpdateResult> {
    let (news, tally) = plan.split();
    let recorded = queue::record_many(deps.store, deps.clock, news).await?;
    Ok(tally.result(recorded))
}

/// An [`UpdatePlan`] without its runs: what sums up the outcome once the
/// store said which runs were recorded.
#[derive(Debug, Clone)]
pub struct Tally {
    /// `(verdict, task, image, new digest)` of each run to record, in order.
    whys: Vec<(String, String, String, String)>,
    runs: Vec<String>,
    reasons: Vec<String>,
    debounced: bool,
    duplicate: bool,
    unchanged: bool,
    other: bool,
}

impl UpdatePlan {
    /// The runs to record and the [`Tally`] that sums them up.
    pub fn split(self) -> (Vec<NewRun>, Tally) {
        let (whys, news): (Vec<_>, Vec<_>) = self
            .record
            .into_iter()
            .map(|(why, name, image, digest, new)| ((why, name, image, digest), new))
            .unzip();
        let tally = Tally {
            whys,
            runs: self.runs,
            reasons: self.reasons,
            debounced: self.debounced,
            duplicate: self.duplicate,
            unchanged: self.unchanged,
            other: self.other,
        };
        (news, tally)
    }
}

impl Tally {
    /// The outcome, given what became of each run (in plan order).
    pub fn result(&self, recorded: Vec<Recorded>) -> UpdateResult {
        let mut run_ids = self.runs.clone();
        let mut reasons = self.reasons.clone();
        let mut duplicate = self.duplicate;
        let mut debounced = self.debounced;
        let mut new_runs = Vec::new();
        for ((verdict, name, image, new_digest), rec) in self.whys.iter().zip(recorded) {
            match rec {
                Recorded::New(run) => {
                    reasons.push(format!("task {name}: {verdict} (run {})", run.run_id));
                    run_ids.push(run.run_id.clone());
                    new_runs.push(run);
                }
                // Another update's run of the task, still queued (the
                // store allows one): this update merges into it.
                Recorded::Existing(run)
                    if run.status == RunStatus::Queued
                        && !matches!(&run.trigger, Trigger::ImageUpdate { image: i, new_digest: d, .. } if i == image && d == new_digest) =>
                {
                    debounced = true;
                    reasons.push(format!(
                        "task {name}: merged into queued run {}",
                        run.run_id
                    ));
                    run_ids.push(run.run_id);
                }
                Recorded::Existing(run) => {
                    duplicate = true;
                    reasons.push(format!(
                        "task {name}: {image} {new_digest} already rebuilt (run {})",
                        run.run_id
                    ));
                    run_ids.push(run.run_id);
                }
            }
        }
        let outcome = if !new_runs.is_empty() {
            Outcome::Triggered
        } else if debounced {
            Outcome::Debounced
        } else if duplicate {
            Outcome::Duplicate
        } else if self.unchanged && !self.other {
            Outcome::Unchanged
        } else {
            Outcome::Ignored
        };
        UpdateResult {
            outcome,
            reason: reasons.join("; "),
            new_runs,
            runs: run_ids,
        }
    }
}

/// Processes one update and records it as an event of `source` together
/// with the runs it starts, in one store write ([`Store::record_delivery`]:
/// one transaction, one `TransactWriteItems` on DynamoDB), so a crash can
/// leave neither runs without their event nor an event without its runs.
/// An update whose event id was recorded already (a redelivered
/// notification) answers the first event and records nothing.
pub async fn process_and_record(
    deps: &UpdateDeps<'_>,
    update: &TagUpdate,
    source: EventSource,
    cause: &str,
    mut detail: Value,
) -> crate::Result<(EventRecord, Vec<Run>)> {
    let received_at = deps.clock.now();
    if let Some(d) = detail.as_object_mut() {
        d.insert("image".into(), json!(update.image));
        d.insert("digest".into(), json!(update.digest));
        d.insert("cause".into(), json!(cause));
    }
    let write = |runs: Vec<Run>| DeliveryWrite {
        source,
        delivery_id: update.event_id.clone(),
        received_at,
        detail: detail.clone(),
        runs,
    };
    let nobody = || UpdatePlan {
        reasons: vec![format!("no task depends on {}", update.image)],
        other: true,
        ..UpdatePlan::default()
    };
    // Most pushes are of images nothing is built on: no lease for those.
    if deps.store.dependents_of(&update.image).await?.is_empty() {
        return record_delivery(deps, write, nobody()).await;
    }
    let held = lease::acquire(deps.store, deps.clock, lease::BASE_IMAGE_DECISIONS).await?;
    let result = async {
        let plan = match Snapshot::read(deps, update).await? {
            Some(snapshot) => plan(update, cause, &snapshot)?,
            None => nobody(),
        };
        record_delivery(deps, write, plan).await
    }
    .await;
    held.release().await;
    result
}

/// Records `plan`'s runs and its event in one [`Store::record_delivery`].
async fn record_delivery(
    deps: &UpdateDeps<'_>,
    write: impl Fn(Vec<Run>) -> DeliveryWrite,
    plan: UpdatePlan,
) -> crate::Result<(EventRecord, Vec<Run>)> {
    let (news, tally) = plan.split();
    let now = deps.clock.now();
    let runs = news
        .into_iter()
        .map(|new| queue::new_run_record(String::new(), new, now))
        .collect();
    let summarize: Summarize = Arc::new(move |runs: &[Run], blocked: &[Option<Run>]| {
        let recorded = runs
            .iter()
            .zip(blocked)
            .map(|(run, b)| match b {
                Some(existing) => Recorded::Existing(existing.clone()),
                None => Recorded::New(run.clone()),
            })
            .collect();
        let r = tally.result(recorded);
        DeliverySummary {
            outcome: r.outcome,
            reason: crate::domain::text::inert_owned(r.reason),
            runs: r.runs,
        }
    });
    match deps.store.record_delivery(write(runs), summarize).await? {
        DeliveryRecorded::New { event, new_runs } => Ok((event, new_runs)),
        DeliveryRecorded::Seen(first) => Ok((first, Vec::new())),
    }
}

/// Feeds the images a successful run pushed back in as tag updates, so the
/// tasks built on them rebuild next (cascades A -> B -> C, a diamond's bottom
/// once after both sides). Call it once the run is stored as `Succeeded`:
/// the "upstream still rebuilding" check of [`process_update`] reads that
/// status. Returns the runs recorded (`Queued`), for the caller to dispatch.
///
/// The registry's own notification of the same push (ECR events, distribution
/// notifications) then finds the run already recorded (dedupe key).
pub async fn cascade(deps: &UpdateDeps<'_>, run: &Run) -> crate::Result<Vec<Run>> {
    let cause = format!(
        "pushed by run {} of {}",
        run.run_id,
        run.task
            .as_deref()
            .map(|t| format!("task {t}"))
            .unwrap_or_else(|| match run.run_type {
                crate::domain::model::RunType::Patch => "a patch".into(),
                _ => "a quick build".into(),
            })
    );
    let mut new_runs = Vec::new();
    for out in &run.output_images {
        let update = TagUpdate {
            image: format!("{}/{}:{}", out.registry, out.repository, out.tag),
            digest: out.digest.clone(),
            media_type: None,
            event_id: None,
            first_sighting: false,
            platforms: None,
        };
        if deps.store.dependents_of(&update.image).await?.is_empty() {
            continue;
        }
        let detail = json!({"via": "cascade", "run": run.run_id});
        let (_, runs) =
            process_and_record(deps, &update, EventSource::Registry, &cause, detail).await?;
        new_runs.extend(runs);
    }
    Ok(new_runs)
}

/// What a finished run means for base-image triggers: a `Succeeded` run's
/// pushes rebuild what is built on them ([`cascade`]); a run that ended any
/// other way releases the tasks that were waiting for it ([`release_waiters`]).
/// Call it once the run's final status is stored. Returns the runs recorded
/// (`Queued`), for the caller to dispatch.
pub async fn after_run(deps: &UpdateDeps<'_>, run: &Run) -> crate::Result<Vec<Run>> {
    match run.status {
        RunStatus::Succeeded => cascade(deps, run).await,
        s if s.is_terminal() => release_waiters(deps, run).await,
        _ => Ok(Vec::new()),
    }
}

/// A task built on the outputs of several tasks waits while any of them is
/// rebuilding, because that one's push will trigger it ([`process_update`]).
/// When that rebuild fails (or is canceled) there is no push: this decides
/// again, for every task built on the failed task's images, the updates its
/// other upstream tasks pushed meanwhile, so a diamond's bottom still
/// rebuilds on the side that succeeded. Updates already acted on find their
/// runs recorded (dedupe keys).
pub async fn release_waiters(deps: &UpdateDeps<'_>, run: &Run) -> crate::Result<Vec<Run>> {
    let Some(name) = run.task.as_deref() else {
        return Ok(Vec::new());
    };
    let all = deps.store.list_tasks().await?;
    let Some(failed) = all.iter().find(|t| t.name == name) else {
        return Ok(Vec::new());
    };
    let mut waiting = BTreeSet::new();
    for image in produced_images(failed, deps.registry) {
        for (task, _) in deps.store.dependents_of(&image).await? {
            if task != name {
                waiting.insert(task);
            }
        }
    }
    if waiting.is_empty() {
        return Ok(Vec::new());
    }
    let producers = producers(&all, deps.registry);
    // The updates to decide again: each upstream's last push that a waiting
    // task has not built on.
    let mut updates: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for task in &waiting {
        for base in deps.store.dependencies_of(task).await? {
            let ups: Vec<String> = producers
                .get(&base.image)
                .into_iter()
                .flatten()
                .filter(|p| *p != task && p.as_str() != name)
                .cloned()
                .collect();
            for last in deps.store.last_succeeded_runs(&ups).await? {
                let pushed = last
                    .output_images
                    .iter()
                    .find(|o| format!("{}/{}:{}", o.registry, o.repository, o.tag) == base.image);
                if let Some(out) = pushed {
                    if base.digest.as_deref() != Some(out.digest.as_str()) {
                        updates.insert(
                            (base.image.clone(), out.digest.clone()),
                            (last.run_id.clone(), last.task.clone().unwrap_or_default()),
                        );
                    }
                }
            }
        }
    }
    let mut new_runs = Vec::new();
    for ((image, digest), (by_run, by_task)) in updates {
        let update = TagUpdate {
            image,
            digest,
            media_type: None,
            event_id: None,
            first_sighting: false,
            platforms: None,
        };
        let cause = format!(
            "pushed by run {by_run} of task {by_task}; decided again when run {} of task {name} ended {}",
            run.run_id, run.status
        );
        let detail = json!({"via": "release", "run": run.run_id});
        let (_, runs) =
            process_and_record(deps, &update, EventSource::Registry, &cause, detail).await?;
        new_runs.extend(runs);
    }
    Ok(new_runs)
}

/// Credentials for `POST /webhooks/registry`.
pub struct RegistryAuth<'a> {
    /// Valid bearer tokens (empty ones are skipped).
    pub tokens: &'a [Secret],
    /// Valid HMAC secrets for `X-Crtask-Signature` (empty ones are skipped).
    pub hmac_secrets: &'a [Secret],
    /// The registry host users write in FROM lines, when the registry's
    /// own view (`request.host`) differs.
    pub registry_host: Option<&'a str>,
}

/// Handles one registry notification: authenticate, parse, decide, record.
/// Returns the answer and the runs to dispatch (after the settle window).
pub async fn handle(
    deps: &UpdateDeps<'_>,
    auth: &RegistryAuth<'_>,
    headers: &[(String, String)],
    body: &[u8],
) -> (Answer, Vec<Run>) {
    let h = Headers::new(headers);
    let received_at = deps.clock.now();
    let reject = |status: u16, reason: String| async move {
        if let Ok(id) = deps.store.next_event_id().await {
            let _ = deps
                .store
                .record_event(&EventRecord {
                    id,
                    source: EventSource::Registry,
                    delivery_id: None,
                    received_at,
                    outcome: Outcome::Rejected,
                    reason: crate::domain::text::inert_owned(reason.clone()),
                    runs: Vec::new(),
                    detail: json!({}),
                })
                .await;
        }
        (Answer::rejected(status, reason), Vec::new())
    };
    if let Err(e) = verify::verify_registry(&h, body, auth.tokens, auth.hmac_secrets) {
        return reject(401, e.to_string()).await;
    }
    let parsed = match event::parse_registry_event(body, auth.registry_host) {
        Ok(p) => p,
        Err(e) => return reject(400, e.to_string()).await,
    };
    let mut all_runs = Vec::new();
    let mut new_runs = Vec::new();
    let mut events = Vec::new();
    let mut reasons = Vec::new();
    for update in &parsed.updates {
        let detail = json!({"mediaType": update.media_type});
        match process_and_record(
            deps,
            update,
            EventSource::Registry,
            "registry notification",
            detail,
        )
        .await
        {
            Ok((event, runs)) => {
                all_runs.extend(event.runs.iter().cloned());
                reasons.push(format!("{}: {}", update.image, event.reason));
                events.push(EventSummary::from(&event));
                new_runs.extend(runs);
            }
            Err(e) => return (Answer::rejected(500, e.to_string()), new_runs),
        }
    }
    if parsed.updates.is_empty() {
        let reason = if parsed.ignored.is_empty() {
            "no events".to_string()
        } else {
            parsed.ignored.join("; ")
        };
        // Blob pushes and pulls arrive constantly; they are answered, not recorded.
        return (Answer::new(Outcome::Ignored, reason), Vec::new());
    }
    let outcome = summary_outcome(&events);
    let answer = Answer::new(outcome, reasons.join("; "))
        .with_runs(all_runs)
        .with_events(events);
    (answer, new_runs)
}

/// The outcome that sums up several recorded events: the most consequential
/// one (a run started, then debounced, duplicate, unchanged, else ignored).
pub fn summary_outcome(events: &[EventSummary]) -> Outcome {
    [
        Outcome::Triggered,
        Outcome::Debounced,
        Outcome::Duplicate,
        Outcome::Unchanged,
    ]
    .into_iter()
    .find(|o| events.iter().any(|e| e.outcome == *o))
    .unwrap_or(Outcome::Ignored)
}
