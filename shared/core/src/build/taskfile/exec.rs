//! Running a task file's steps with ACR's semantics, through a [`StepRunner`].
//!
//! - Every step whose dependencies succeeded starts at once (its own tokio
//!   task), so independent steps really overlap.
//! - Fail fast: the first step that fails without `ignoreErrors` cancels the
//!   running steps (their runners get the cancellation and
//!   [`ExecOptions::cancel_grace`] to clean up) and no further step starts.
//! - `startDelay` is waited before the step starts and is not part of its
//!   `timeout`; the `timeout` covers every retry, retry delay and repeat.
//! - An execution is retried (after `retryDelay`) only when it exits
//!   non-zero; a runner error (`Err`, an engine failure) fails the step at
//!   once. `repeat` runs the step `repeat + 1` times; as in ACR every
//!   repetition runs and the step fails with all their failures (an
//!   execution canceled by fail-fast or the timeout ends the step). Push
//!   steps are executed once per repetition:
//!   `retries` does not apply to them; the runner retries each push itself
//!   with [`push_with_retries`] (3 attempts, 250 ms doubling, at most 5 s).
//! - `ignoreErrors` turns a failed or timed-out step into a success (its
//!   exit code is kept) so its dependents run.

use super::{plan, Step, TaskFile};
use crate::domain::model::{RunStatus, StepRecord};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Runs one execution of a step on an engine.
#[async_trait::async_trait]
pub trait StepRunner: Send + Sync {
    /// Runs `step` once and returns its exit code (0 is success).
    ///
    /// `attempt` counts executions of this step from 1, over retries and
    /// repeats. When `cancel` fires (fail-fast, timeout or a canceled run)
    /// the runner should stop the work, clean up and return promptly.
    /// For a push step (`step.is_push()`), push every reference, each with
    /// [`push_with_retries`]. Return `Err` for failures of the engine
    /// itself; they are not retried.
    async fn run(&self, step: &Step, attempt: u32, cancel: CancellationToken)
        -> crate::Result<i32>;
}

/// Progress of a run, for logs (step boundaries) and live status.
#[derive(Debug, Clone, PartialEq)]
pub enum StepEvent {
    /// The step's start delay is over and its first execution begins.
    Started { id: String, time: DateTime<Utc> },
    /// An execution exited non-zero; the next one starts after `delay`.
    Retrying {
        id: String,
        /// The attempt that comes next (1-based).
        next_attempt: u32,
        exit_code: i32,
        delay: Duration,
    },
    /// A repetition after the first (`repeat`) begins.
    Repeating {
        id: String,
        /// The repetition that begins (2-based: the first is `Started`).
        repetition: u32,
        /// How many there are (`repeat + 1`).
        of: u32,
    },
    /// The step is over. `message` says why it failed (or what was ignored).
    Finished {
        record: StepRecord,
        message: Option<String>,
    },
    /// The step never started because the run stopped first.
    Skipped { id: String },
}

/// Options of [`execute_with`].
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Cancels the whole run (a user's cancel, the run's own timeout).
    pub cancel: CancellationToken,
    /// How long a canceled or timed-out runner may take to return before
    /// its work is dropped.
    pub cancel_grace: Duration,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            cancel: CancellationToken::new(),
            cancel_grace: Duration::from_secs(10),
        }
    }
}

/// How a run of a task file ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecOutcome {
    /// `Succeeded`, `Failed` (a step failed or timed out) or `Canceled`
    /// (the caller's token fired).
    pub status: RunStatus,
    /// The step that failed the run.
    pub failed_step: Option<String>,
    /// Why the run did not succeed, naming the step.
    pub error: Option<String>,
    /// One record per step, in file order. A step that never started has
    /// status `Canceled` and no times (the model has no `Skipped` status).
    pub steps: Vec<StepRecord>,
}

/// Runs `tf` with default [`ExecOptions`].
pub async fn execute(
    tf: &TaskFile,
    runner: Arc<dyn StepRunner>,
    events: &(dyn Fn(StepEvent) + Sync),
) -> ExecOutcome {
    execute_with(tf, runner, events, ExecOptions::default()).await
}

/// What a step task reports back.
struct Done {
    index: usize,
    status: RunStatus,
    start: Option<DateTime<Utc>>,
    finish: DateTime<Utc>,
    exit_code: Option<i32>,
    message: Option<String>,
}

/// Runs every step of `tf` (see the module documentation). `events` is
/// called from this future, in order, never concurrently; it must be `Sync`
/// so that the returned future is `Send` (it can be spawned).
pub async fn execute_with(
    tf: &TaskFile,
    runner: Arc<dyn StepRunner>,
    events: &(dyn Fn(StepEvent) + Sync),
    opts: ExecOptions,
) -> ExecOutcome {
    let graph = plan(tf);
    let steps: Vec<Arc<Step>> = tf.steps.iter().cloned().map(Arc::new).collect();
    let mut waiting: Vec<usize> = graph.nodes.iter().map(|n| n.depends_on.len()).collect();
    let mut records: Vec<Option<StepRecord>> = vec![None; steps.len()];
    let run_token = opts.cancel.child_token();
    let (tx, mut rx) = mpsc::unbounded_channel::<Sent>();
    let mut set: JoinSet<Done> = JoinSet::new();
    let mut task_ids: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut failure: Option<(String, String)> = None;

    let spawn =
        |i: usize, set: &mut JoinSet<Done>, task_ids: &mut HashMap<tokio::task::Id, usize>| {
            if let Some(step) = steps.get(i) {
                let fut = run_step(
                    i,
                    step.clone(),
                    runner.clone(),
                    run_token.clone(),
                    opts.cancel_grace,
                    tx.clone(),
                );
                let handle = set.spawn(fut);
                task_ids.insert(handle.id(), i);
            }
        };

    for (i, w) in waiting.iter().enumerate() {
        if *w == 0 {
            spawn(i, &mut set, &mut task_ids);
        }
    }

    while !set.is_empty() {
        tokio::select! {
            biased;
            Some(sent) = rx.recv() => deliver(events, sent),
            joined = set.join_next_with_id() => {
                let done = match joined {
                    Some(Ok((_, done))) => done,
                    Some(Err(e)) => {
                        let Some(index) = task_ids.get(&e.id()).copied() else { continue };
                        Done {
                            index,
                            status: RunStatus::Failed,
                            start: None,
                            finish: Utc::now(),
                            exit_code: None,
                            message: Some("the step runner crashed".to_string()),
                        }
                    }
                    None => break,
                };
                // Events the step sent are delivered before its end.
                while let Ok(sent) = rx.try_recv() {
                    deliver(events, sent);
                }
                let Some(step) = steps.get(done.index) else { continue };
                let record = StepRecord {
                    id: step.id.clone(),
                    status: done.status,
                    start_time: done.start,
                    finish_time: Some(done.finish),
                    exit_code: done.exit_code,
                    when: waited_for(&graph, &step.id),
                    cache: None,
                };
                if let Some(slot) = records.get_mut(done.index) {
                    *slot = Some(record.clone());
                }
                events(StepEvent::Finished { record, message: done.message.clone() });
                match done.status {
                    RunStatus::Succeeded => {
                        if run_token.is_cancelled() {
                            continue;
                        }
                        let dependents = graph.nodes.get(done.index).map(|n| n.dependents.clone()).unwrap_or_default();
                        for d in dependents {
                            if let Some(w) = waiting.get_mut(d) {
                                *w = w.saturating_sub(1);
                                if *w == 0 {
                                    spawn(d, &mut set, &mut task_ids);
                                }
                            }
                        }
                    }
                    RunStatus::Canceled => {}
                    _ => {
                        if failure.is_none() {
                            let why = done.message.unwrap_or_else(|| "failed".to_string());
                            failure = Some((step.id.clone(), format!("step '{}' {why}", step.id)));
                        }
                        run_token.cancel();
                    }
                }
            }
        }
    }
    while let Ok(sent) = rx.try_recv() {
        deliver(events, sent);
    }

    let mut out = Vec::with_capacity(steps.len());
    for (step, rec) in steps.iter().zip(records) {
        match rec {
            Some(r) => out.push(r),
            None => {
                events(StepEvent::Skipped {
                    id: step.id.clone(),
                });
                out.push(StepRecord {
                    id: step.id.clone(),
                    status: RunStatus::Canceled,
                    start_time: None,
                    finish_time: None,
                    exit_code: None,
                    when: waited_for(&graph, &step.id),
                    cache: None,
                });
            }
        }
    }
    let (status, failed_step, error) = match failure {
        Some((id, msg)) => (RunStatus::Failed, Some(id), Some(msg)),
        None if opts.cancel.is_cancelled() => (
            RunStatus::Canceled,
            None,
            Some("the run was canceled".to_string()),
        ),
        None => (RunStatus::Succeeded, None, None),
    };
    ExecOutcome {
        status,
        failed_step,
        error,
        steps: out,
    }
}

/// The ids of the steps `id` waits for, as a run's record lists them.
fn waited_for(graph: &super::graph::Graph, id: &str) -> Vec<String> {
    graph
        .dependencies_of(id)
        .unwrap_or_default()
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// The result of a step's executions.
/// An event on its way from a step's task to `events`, with the sender to
/// tell the step it was delivered.
type Sent = (StepEvent, oneshot::Sender<()>);

/// Sends `ev` and waits until `events` has had it, so that a step's own
/// log lines never come before its "started" or "retrying" line (they are
/// written by the step's task, the events by the run's). Returns at once
/// when the run's loop is gone.
async fn announce(tx: &mpsc::UnboundedSender<Sent>, ev: StepEvent) {
    let (ack, delivered) = oneshot::channel();
    if tx.send((ev, ack)).is_ok() {
        let _ = delivered.await;
    }
}

fn deliver(events: &(dyn Fn(StepEvent) + Sync), (ev, ack): Sent) {
    events(ev);
    let _ = ack.send(());
}

struct Body {
    ok: bool,
    exit_code: Option<i32>,
    message: Option<String>,
}

async fn run_step(
    index: usize,
    step: Arc<Step>,
    runner: Arc<dyn StepRunner>,
    run_token: CancellationToken,
    grace: Duration,
    tx: mpsc::UnboundedSender<Sent>,
) -> Done {
    let token = run_token.child_token();
    let canceled = |start, exit_code| Done {
        index,
        status: RunStatus::Canceled,
        start,
        finish: Utc::now(),
        exit_code,
        message: Some("was canceled".to_string()),
    };
    if step.start_delay > 0 {
        tokio::select! {
            biased;
            _ = token.cancelled() => return canceled(None, None),
            _ = tokio::time::sleep(Duration::from_secs(step.start_delay)) => {}
        }
    }
    let start = Utc::now();
    announce(
        &tx,
        StepEvent::Started {
            id: step.id.clone(),
            time: start,
        },
    )
    .await;

    let body = executions(&step, runner.as_ref(), &token, &tx);
    tokio::pin!(body);
    let deadline = tokio::time::sleep(Duration::from_secs(step.timeout));
    tokio::pin!(deadline);
    enum End {
        Body(Body),
        Canceled,
        Timeout,
    }
    let end = tokio::select! {
        biased;
        b = &mut body => End::Body(b),
        _ = run_token.cancelled() => End::Canceled,
        _ = &mut deadline => End::Timeout,
    };
    let finish_after_grace = |body_done: Option<Body>| body_done.and_then(|b| b.exit_code);
    match end {
        End::Body(b) if b.ok => Done {
            index,
            status: RunStatus::Succeeded,
            start: Some(start),
            finish: Utc::now(),
            exit_code: b.exit_code,
            message: None,
        },
        End::Body(b) if run_token.is_cancelled() => canceled(Some(start), b.exit_code),
        End::Body(b) => {
            let why = b.message.unwrap_or_else(|| "failed".to_string());
            if step.ignore_errors {
                Done {
                    index,
                    status: RunStatus::Succeeded,
                    start: Some(start),
                    finish: Utc::now(),
                    exit_code: b.exit_code,
                    message: Some(format!("{why} (ignored: ignoreErrors)")),
                }
            } else {
                Done {
                    index,
                    status: RunStatus::Failed,
                    start: Some(start),
                    finish: Utc::now(),
                    exit_code: b.exit_code,
                    message: Some(why),
                }
            }
        }
        End::Canceled => {
            token.cancel();
            let late = tokio::time::timeout(grace, &mut body).await.ok();
            canceled(Some(start), finish_after_grace(late))
        }
        End::Timeout => {
            token.cancel();
            let late = tokio::time::timeout(grace, &mut body).await.ok();
            let why = format!("timed out after {}s", step.timeout);
            Done {
                index,
                status: if step.ignore_errors {
                    RunStatus::Succeeded
                } else {
                    RunStatus::Timeout
                },
                start: Some(start),
                finish: Utc::now(),
                exit_code: finish_after_grace(late),
                message: Some(if step.ignore_errors {
                    format!("{why} (ignored: ignoreErrors)")
                } else {
                    why
                }),
            }
        }
    }
}

/// Every execution of a step: repeats, each with its retries. As ACR's
/// executor does, every repetition runs even when an earlier one failed,
/// and the step fails with the failures of all of them.
async fn executions(
    step: &Step,
    runner: &dyn StepRunner,
    token: &CancellationToken,
    tx: &mpsc::UnboundedSender<Sent>,
) -> Body {
    let mut attempt: u32 = 0;
    let mut last: Option<i32> = None;
    let mut failures: Vec<String> = Vec::new();
    let mut first_failed_code: Option<i32> = None;
    let tries = step.attempts();
    let repetitions = step.repeat.saturating_add(1);
    for repetition in 1..=repetitions {
        if token.is_cancelled() {
            break;
        }
        if repetition > 1 {
            announce(
                tx,
                StepEvent::Repeating {
                    id: step.id.clone(),
                    repetition,
                    of: repetitions,
                },
            )
            .await;
        }
        let mut outcome: Result<(), String> = Err("failed".to_string());
        for t in 0..tries {
            if t > 0 {
                let delay = Duration::from_secs(step.retry_delay);
                announce(
                    tx,
                    StepEvent::Retrying {
                        id: step.id.clone(),
                        next_attempt: attempt.saturating_add(1),
                        exit_code: last.unwrap_or(-1),
                        delay,
                    },
                )
                .await;
                tokio::select! {
                    biased;
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            attempt = attempt.saturating_add(1);
            match runner.run(step, attempt, token.clone()).await {
                Ok(0) => {
                    last = Some(0);
                    outcome = Ok(());
                    break;
                }
                Ok(code) => {
                    last = Some(code);
                    outcome = Err(format!("exited with code {code}"));
                }
                // An engine failure is not retried, but the next
                // repetition still runs.
                Err(e) => {
                    outcome = Err(e.to_string());
                    break;
                }
            }
            if token.is_cancelled() {
                break;
            }
        }
        if let Err(why) = outcome {
            if first_failed_code.is_none() {
                first_failed_code = last.filter(|c| *c != 0);
            }
            failures.push(if repetitions > 1 {
                format!("repetition {repetition} of {repetitions} {why}")
            } else {
                why
            });
        }
    }
    if failures.is_empty() {
        return Body {
            ok: true,
            exit_code: last,
            message: None,
        };
    }
    Body {
        ok: false,
        exit_code: first_failed_code.or(last),
        message: Some(format!("failed: {}", failures.join("; "))),
    }
}

/// Retry policy of pushes (ACR: 3 attempts, 250 ms doubling up to 5 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushBackoff {
    /// Total attempts (at least 1 is made).
    pub attempts: u32,
    /// Delay before the second attempt.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for PushBackoff {
    fn default() -> Self {
        PushBackoff {
            attempts: 3,
            initial: Duration::from_millis(250),
            max: Duration::from_secs(5),
        }
    }
}

impl PushBackoff {
    /// The delay before retry number `retry` (0 = before the second attempt).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// Runs `op` (given the attempt number from 1) until it succeeds or the
/// attempts of `backoff` are used, sleeping between attempts. Stops early
/// when `cancel` fires. Returns the last error.
pub async fn push_with_retries<T, F, Fut>(
    backoff: PushBackoff,
    cancel: &CancellationToken,
    mut op: F,
) -> crate::Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = crate::Result<T>>,
{
    let attempts = backoff.attempts.max(1);
    let mut last = None;
    for a in 1..=attempts {
        if a > 1 {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(backoff.delay(a - 2)) => {}
            }
        }
        if cancel.is_cancelled() {
            break;
        }
        match op(a).await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| crate::Error::Builder("push canceled".to_string())))
}
