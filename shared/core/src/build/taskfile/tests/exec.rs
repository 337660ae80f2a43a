//! Tests of the task-file graph and executor: orderings, parallelism,
//! fail-fast, retries, repeats, timeouts and cancellation, on a fake step
//! runner and tokio's paused clock.

use super::*;

// ---------------------------------------------------------------- graph

fn deps(tf: &TaskFile) -> Vec<(String, Vec<String>)> {
    let g = plan(tf);
    g.nodes
        .iter()
        .map(|n| {
            (
                n.id.clone(),
                g.dependencies_of(&n.id)
                    .unwrap()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn graph_orderings() {
    // sequential by default
    let tf = ok("steps:\n  - id: a\n    cmd: x\n  - id: b\n    cmd: x\n  - id: c\n    cmd: x\n");
    assert_eq!(plan(&tf).levels(), vec![vec!["a"], vec!["b"], vec!["c"]]);

    // A; B when ["-"]; C (no when): C waits for B only
    let tf = ok("steps:\n  - id: A\n    cmd: x\n  - id: B\n    cmd: x\n    when: [\"-\"]\n  - id: C\n    cmd: x\n");
    assert_eq!(
        deps(&tf),
        vec![
            ("A".to_string(), vec![]),
            ("B".to_string(), vec![]),
            ("C".to_string(), vec!["B".to_string()])
        ]
    );
    assert_eq!(plan(&tf).levels(), vec![vec!["A", "B"], vec!["C"]]);

    // fan-out then fan-in (diamond)
    let tf = ok(PIPELINE);
    let g = plan(&tf);
    assert_eq!(
        g.levels(),
        vec![vec!["build"], vec!["test", "scan"], vec!["push"]]
    );
    assert_eq!(g.dependencies_of("push").unwrap(), vec!["test", "scan"]);
    assert_eq!(g.nodes[0].dependents, vec![1, 2]);
    let secs = |s: u64| Duration::from_secs(s);
    assert_eq!(
        g.critical_path(&[secs(2), secs(5), secs(1), secs(1)]),
        secs(8)
    );

    // all parallel
    let tf = ok("steps:\n  - cmd: a\n    when: [\"-\"]\n  - cmd: b\n    when: [\"-\"]\n");
    assert_eq!(plan(&tf).levels(), vec![vec!["acb_step_0", "acb_step_1"]]);
    assert_eq!(plan(&tf).critical_path(&[secs(3), secs(4)]), secs(4));
}

// ---------------------------------------------------------------- executor

#[derive(Debug, Clone, PartialEq)]
struct Call {
    id: String,
    attempt: u32,
    start: Duration,
    end: Duration,
    canceled: bool,
}

/// Sleeps `secs` per id (default 1) and exits with the codes of `codes`
/// (per attempt; the last one repeats; default 0).
struct Fake {
    t0: Instant,
    secs: BTreeMap<String, u64>,
    codes: BTreeMap<String, Vec<i32>>,
    errors: Vec<String>,
    calls: Mutex<Vec<Call>>,
}

impl Fake {
    fn new(secs: &[(&str, u64)], codes: &[(&str, &[i32])]) -> Arc<Fake> {
        Arc::new(Fake {
            t0: Instant::now(),
            secs: secs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            codes: codes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
            errors: Vec::new(),
            calls: Mutex::new(Vec::new()),
        })
    }
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    fn started(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.id).collect()
    }
}

#[async_trait::async_trait]
impl StepRunner for Fake {
    async fn run(
        &self,
        step: &Step,
        attempt: u32,
        cancel: CancellationToken,
    ) -> crate::Result<i32> {
        if self.errors.contains(&step.id) {
            return Err(crate::Error::Builder("engine exploded".into()));
        }
        let start = self.t0.elapsed();
        let secs = self.secs.get(&step.id).copied().unwrap_or(1);
        let canceled = tokio::select! {
            _ = cancel.cancelled() => true,
            _ = tokio::time::sleep(Duration::from_secs(secs)) => false,
        };
        self.calls.lock().unwrap().push(Call {
            id: step.id.clone(),
            attempt,
            start,
            end: self.t0.elapsed(),
            canceled,
        });
        if canceled {
            return Ok(137);
        }
        let codes = self.codes.get(&step.id).cloned().unwrap_or_default();
        let idx = (attempt as usize).saturating_sub(1);
        Ok(codes.get(idx).or(codes.last()).copied().unwrap_or(0))
    }
}

async fn run(tf: &TaskFile, fake: Arc<Fake>) -> (ExecOutcome, Vec<StepEvent>) {
    let events = Mutex::new(Vec::new());
    let outcome = execute(tf, fake, &|e| events.lock().unwrap().push(e)).await;
    (outcome, events.into_inner().unwrap())
}

fn status_of(o: &ExecOutcome, id: &str) -> RunStatus {
    o.steps.iter().find(|s| s.id == id).unwrap().status
}

const PIPELINE: &str = "\
steps:
  - id: build
    build: -t app .
  - id: test
    cmd: app
    when: [build]
  - id: scan
    cmd: scanner app
    when: [build]
  - id: push
    push: [app]
    when: [test, scan]
";

#[tokio::test(start_paused = true)]
async fn parallel_steps_overlap_and_dependents_wait() {
    let tf = ok(PIPELINE);
    let fake = Fake::new(&[("build", 2), ("test", 3), ("scan", 5), ("push", 1)], &[]);
    let t0 = Instant::now();
    let (o, events) = run(&tf, fake.clone()).await;
    assert_eq!(o.status, RunStatus::Succeeded, "{o:?}");
    assert_eq!(o.error, None);
    // wall time is the critical path: 2 + 5 + 1
    assert_eq!(t0.elapsed(), Duration::from_secs(8));
    let calls = fake.calls();
    let get = |id: &str| calls.iter().find(|c| c.id == id).unwrap().clone();
    let (test, scan, push) = (get("test"), get("scan"), get("push"));
    assert_eq!(test.start, Duration::from_secs(2));
    assert_eq!(scan.start, Duration::from_secs(2));
    assert!(
        test.start < scan.end && scan.start < test.end,
        "test and scan overlap"
    );
    assert_eq!(push.start, Duration::from_secs(7), "push waits for both");
    assert!(o
        .steps
        .iter()
        .all(|s| s.status == RunStatus::Succeeded && s.exit_code == Some(0)));
    assert!(o
        .steps
        .iter()
        .all(|s| s.start_time.is_some() && s.finish_time.is_some()));
    // events: each step Started before Finished, in a sane order
    let names: Vec<String> = events
        .iter()
        .map(|e| match e {
            StepEvent::Started { id, .. } => format!("start {id}"),
            StepEvent::Finished { record, .. } => format!("end {}", record.id),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names[..3], ["start build", "end build", "start test"]);
    assert_eq!(names.last().map(String::as_str), Some("end push"));
    assert_eq!(names.len(), 8);
}

#[tokio::test(start_paused = true)]
async fn fail_fast_cancels_siblings_and_skips_dependents() {
    let tf = ok(PIPELINE);
    let fake = Fake::new(
        &[("build", 1), ("test", 2), ("scan", 10)],
        &[("test", &[3])],
    );
    let t0 = Instant::now();
    let (o, events) = run(&tf, fake.clone()).await;
    assert_eq!(o.status, RunStatus::Failed);
    assert_eq!(o.failed_step.as_deref(), Some("test"));
    assert_eq!(
        o.error.as_deref(),
        Some("step 'test' failed: exited with code 3")
    );
    assert_eq!(status_of(&o, "build"), RunStatus::Succeeded);
    assert_eq!(status_of(&o, "test"), RunStatus::Failed);
    assert_eq!(o.steps[1].exit_code, Some(3));
    assert_eq!(status_of(&o, "scan"), RunStatus::Canceled);
    let push = o.steps.iter().find(|s| s.id == "push").unwrap();
    assert_eq!((push.status, push.start_time), (RunStatus::Canceled, None));
    assert!(
        !fake.started().contains(&"push".to_string()),
        "push never starts"
    );
    let scan = fake.calls().into_iter().find(|c| c.id == "scan").unwrap();
    assert!(scan.canceled);
    assert_eq!(
        scan.end,
        Duration::from_secs(3),
        "scan stopped when test failed"
    );
    assert_eq!(t0.elapsed(), Duration::from_secs(3));
    assert!(events.contains(&StepEvent::Skipped { id: "push".into() }));
}

#[tokio::test(start_paused = true)]
async fn ignore_errors_lets_dependents_run() {
    let tf =
        ok("steps:\n  - id: flaky\n    cmd: x\n    ignoreErrors: true\n  - id: next\n    cmd: y\n");
    let fake = Fake::new(&[], &[("flaky", &[2])]);
    let (o, events) = run(&tf, fake.clone()).await;
    assert_eq!(o.status, RunStatus::Succeeded);
    assert_eq!(status_of(&o, "flaky"), RunStatus::Succeeded);
    assert_eq!(o.steps[0].exit_code, Some(2));
    assert_eq!(fake.started(), vec!["flaky", "next"]);
    assert!(events.iter().any(|e| matches!(e,
        StepEvent::Finished { record, message: Some(m) } if record.id == "flaky" && m.contains("ignored"))));
}

#[tokio::test(start_paused = true)]
async fn retries_on_non_zero_with_delay() {
    let tf = ok("steps:\n  - id: r\n    cmd: x\n    retries: 3\n    retryDelay: 2\n");
    // fails twice, then succeeds on the third attempt
    let fake = Fake::new(&[("r", 1)], &[("r", &[1, 1, 0])]);
    let t0 = Instant::now();
    let (o, events) = run(&tf, fake.clone()).await;
    assert_eq!(o.status, RunStatus::Succeeded);
    let attempts: Vec<u32> = fake.calls().iter().map(|c| c.attempt).collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    let starts: Vec<Duration> = fake.calls().iter().map(|c| c.start).collect();
    assert_eq!(
        starts,
        vec![
            Duration::from_secs(0),
            Duration::from_secs(3),
            Duration::from_secs(6)
        ]
    );
    assert_eq!(t0.elapsed(), Duration::from_secs(7));
    let retries = events
        .iter()
        .filter(|e| matches!(e, StepEvent::Retrying { .. }))
        .count();
    assert_eq!(retries, 2);

    // retries exhausted: 1 + 2 attempts, then Failed
    let tf = ok("steps:\n  - id: r\n    cmd: x\n    retries: 2\n    retryDelay: 1\n");
    let fake = Fake::new(&[], &[("r", &[5])]);
    let (o, _) = run(&tf, fake.clone()).await;
    assert_eq!(o.status, RunStatus::Failed);
    assert_eq!(fake.calls().len(), 3);
    assert_eq!(o.steps[0].exit_code, Some(5));
}

#[tokio::test(start_paused = true)]
async fn runner_errors_are_not_retried() {
    let tf = ok("steps:\n  - id: e\n    cmd: x\n    retries: 3\n");
    let mut fake = Fake::new(&[], &[]);
    Arc::get_mut(&mut fake).unwrap().errors.push("e".into());
    let (o, _) = run(&tf, fake).await;
    assert_eq!(o.status, RunStatus::Failed);
    assert_eq!(
        o.error.as_deref(),
        Some("step 'e' failed: builder: engine exploded")
    );
}

#[tokio::test(start_paused = true)]
async fn repeat_runs_n_plus_one_and_fails_if_any_fails() {
    let tf = ok("steps:\n  - id: r\n    cmd: x\n    repeat: 2\n");
    let fake = Fake::new(&[], &[]);
    let (o, _) = run(&tf, fake.clone()).await;
    assert_eq!(o.status, RunStatus::Succeeded);
    assert_eq!(fake.calls().len(), 3);

    // As in ACR: every repetition runs, and the step fails with all the
    // failures.
    let fake = Fake::new(&[], &[("r", &[0, 4, 0])]);
    let (o, _) = run(&tf, fake.clone()).await;
    assert_eq!(o.status, RunStatus::Failed);
    assert_eq!(fake.calls().len(), 3);
    assert_eq!(
        o.error.as_deref(),
        Some("step 'r' failed: repetition 2 of 3 exited with code 4")
    );
    let fake = Fake::new(&[], &[("r", &[3, 0, 5])]);
    let (o, _) = run(&tf, fake.clone()).await;
    assert_eq!(fake.calls().len(), 3);
    assert_eq!(
        o.error.as_deref(),
        Some("step 'r' failed: repetition 1 of 3 exited with code 3; repetition 3 of 3 exited with code 5")
    );
    assert_eq!(o.steps[0].exit_code, Some(3), "the first failure's code");

    // Retries apply per repetition; a repetition that passes on a retry
    // does not count as failed.
    let tf =
        ok("steps:\n  - id: r\n    cmd: x\n    repeat: 1\n    retries: 1\n    retryDelay: 1\n");
    let fake = Fake::new(&[], &[("r", &[1, 0, 2, 2])]);
    let (o, _) = run(&tf, fake.clone()).await;
    assert_eq!(fake.calls().len(), 4);
    assert_eq!(
        o.error.as_deref(),
        Some("step 'r' failed: repetition 2 of 2 exited with code 2")
    );

    // ignoreErrors: every repetition ran, the step counts as succeeded.
    let tf = ok("steps:\n  - id: r\n    cmd: x\n    repeat: 2\n    ignoreErrors: true\n  - id: next\n    cmd: y\n");
    let fake = Fake::new(&[], &[("r", &[1])]);
    let (o, _) = run(&tf, fake.clone()).await;
    assert_eq!(o.status, RunStatus::Succeeded);
    assert_eq!(fake.started(), ["r", "r", "r", "next"]);
}

/// Writes what it runs into the same journal as the events: a step's
/// output must never come before its "started", "retrying" or
/// "repetition" line. Step `a` exits with `codes` per attempt.
struct Journaling {
    journal: Arc<Mutex<Vec<String>>>,
    codes: Vec<i32>,
}

#[async_trait::async_trait]
impl StepRunner for Journaling {
    async fn run(
        &self,
        step: &Step,
        attempt: u32,
        _cancel: CancellationToken,
    ) -> crate::Result<i32> {
        self.journal
            .lock()
            .unwrap()
            .push(format!("output {} {attempt}", step.id));
        if step.id != "a" {
            return Ok(0);
        }
        let idx = (attempt as usize).saturating_sub(1);
        Ok(self.codes.get(idx).copied().unwrap_or(0))
    }
}

#[tokio::test(start_paused = true)]
async fn step_lines_come_before_the_steps_own_output() {
    let tf = ok("steps:\n  - id: a\n    cmd: x\n    retries: 1\n    retryDelay: 1\n    repeat: 1\n  - id: b\n    cmd: y\n    when: [\"-\"]\n");
    let journal = Arc::new(Mutex::new(Vec::new()));
    let runner = Arc::new(Journaling {
        journal: journal.clone(),
        codes: vec![3, 0, 0],
    });
    let j = journal.clone();
    let events = move |e: StepEvent| {
        let line = match e {
            StepEvent::Started { id, .. } => format!("started {id}"),
            StepEvent::Retrying {
                id, next_attempt, ..
            } => format!("retrying {id} {next_attempt}"),
            StepEvent::Repeating { id, repetition, of } => {
                format!("repetition {id} {repetition}/{of}")
            }
            StepEvent::Finished { record, .. } => format!("finished {}", record.id),
            StepEvent::Skipped { id } => format!("skipped {id}"),
        };
        j.lock().unwrap().push(line);
    };
    let o = execute(&tf, runner, &events).await;
    assert_eq!(o.status, RunStatus::Succeeded);
    let lines = journal.lock().unwrap().clone();
    let of = |id: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.split(' ').nth(1) == Some(id))
            .cloned()
            .collect()
    };
    assert_eq!(
        of("a"),
        [
            "started a",
            "output a 1",
            "retrying a 2",
            "output a 2",
            "repetition a 2/2",
            "output a 3",
            "finished a"
        ]
    );
    assert_eq!(of("b"), ["started b", "output b 1", "finished b"]);
}

#[tokio::test(start_paused = true)]
async fn timeout_covers_retries_and_repeats() {
    // each attempt takes 4 s and fails; 3 attempts + 2 s delays would need 16 s
    let tf = ok("steps:\n  - id: slow\n    cmd: x\n    retries: 2\n    retryDelay: 2\n    timeout: 9\n  - id: after\n    cmd: y\n");
    let fake = Fake::new(&[("slow", 4)], &[("slow", &[1])]);
    let t0 = Instant::now();
    let (o, _) = run(&tf, fake.clone()).await;
    assert_eq!(o.status, RunStatus::Failed);
    assert_eq!(status_of(&o, "slow"), RunStatus::Timeout);
    assert_eq!(o.error.as_deref(), Some("step 'slow' timed out after 9s"));
    assert_eq!(t0.elapsed(), Duration::from_secs(9));
    let calls = fake.calls();
    assert_eq!(
        calls.len(),
        2,
        "the second attempt was cut by the timeout: {calls:?}"
    );
    assert!(calls[1].canceled);
    assert!(!fake.started().contains(&"after".to_string()));

    // repeats count too
    let tf = ok("steps:\n  - id: rep\n    cmd: x\n    repeat: 5\n    timeout: 3\n");
    let fake = Fake::new(&[("rep", 1)], &[]);
    let (o, _) = run(&tf, fake.clone()).await;
    assert_eq!(status_of(&o, "rep"), RunStatus::Timeout);
    assert_eq!(fake.calls().iter().filter(|c| !c.canceled).count(), 3);
}

#[tokio::test(start_paused = true)]
async fn start_delay_is_before_the_timeout() {
    let tf = ok("steps:\n  - id: d\n    cmd: x\n    startDelay: 5\n    timeout: 2\n");
    let fake = Fake::new(&[("d", 1)], &[]);
    let (o, _) = run(&tf, fake.clone()).await;
    assert_eq!(o.status, RunStatus::Succeeded);
    assert_eq!(fake.calls()[0].start, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn push_steps_ignore_retries() {
    let tf = ok("steps:\n  - id: p\n    push: [app]\n    retries: 4\n");
    let fake = Fake::new(&[], &[("p", &[1])]);
    let (o, _) = run(&tf, fake.clone()).await;
    assert_eq!(o.status, RunStatus::Failed);
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn caller_cancel_stops_the_run() {
    let tf = ok(PIPELINE);
    let fake = Fake::new(&[("build", 5)], &[]);
    let opts = ExecOptions::default();
    let cancel = opts.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        cancel.cancel();
    });
    let o = execute_with(&tf, fake.clone(), &|_| {}, opts).await;
    assert_eq!(o.status, RunStatus::Canceled);
    assert_eq!(o.failed_step, None);
    assert_eq!(status_of(&o, "build"), RunStatus::Canceled);
    assert_eq!(fake.started(), vec!["build"]);
}

/// A runner that ignores cancellation is cut off after the grace period.
struct Stubborn;

#[async_trait::async_trait]
impl StepRunner for Stubborn {
    async fn run(&self, _: &Step, _: u32, _: CancellationToken) -> crate::Result<i32> {
        tokio::time::sleep(Duration::from_secs(1000)).await;
        Ok(0)
    }
}

#[tokio::test(start_paused = true)]
async fn stubborn_runner_is_dropped_after_grace() {
    let tf = ok("steps:\n  - id: s\n    cmd: x\n    timeout: 5\n");
    let t0 = Instant::now();
    let opts = ExecOptions {
        cancel: CancellationToken::new(),
        cancel_grace: Duration::from_secs(3),
    };
    let o = execute_with(&tf, Arc::new(Stubborn), &|_| {}, opts).await;
    assert_eq!(status_of(&o, "s"), RunStatus::Timeout);
    assert_eq!(t0.elapsed(), Duration::from_secs(8));
}

#[tokio::test(start_paused = true)]
async fn push_backoff() {
    let b = PushBackoff::default();
    assert_eq!(
        (0..6).map(|r| b.delay(r)).collect::<Vec<_>>(),
        [250, 500, 1000, 2000, 4000, 5000].map(Duration::from_millis)
    );
    let tries = Mutex::new(Vec::new());
    let t0 = Instant::now();
    let cancel = CancellationToken::new();
    let r: crate::Result<&str> = push_with_retries(b, &cancel, |a| {
        tries.lock().unwrap().push((a, t0.elapsed()));
        async move {
            if a < 3 {
                Err(crate::Error::Builder(format!("push {a} refused")))
            } else {
                Ok("sha256:abc")
            }
        }
    })
    .await;
    assert_eq!(r.unwrap(), "sha256:abc");
    assert_eq!(
        tries.into_inner().unwrap(),
        vec![
            (1, Duration::ZERO),
            (2, Duration::from_millis(250)),
            (3, Duration::from_millis(750))
        ]
    );

    let n = Mutex::new(0);
    let r: crate::Result<()> = push_with_retries(b, &cancel, |a| {
        *n.lock().unwrap() += 1;
        async move { Err(crate::Error::Builder(format!("push {a} refused"))) }
    })
    .await;
    assert_eq!(r.unwrap_err().to_string(), "builder: push 3 refused");
    assert_eq!(*n.lock().unwrap(), 3);

    cancel.cancel();
    let r: crate::Result<()> = push_with_retries(b, &cancel, |_| async {
        Err(crate::Error::Builder("x".into()))
    })
    .await;
    assert_eq!(r.unwrap_err().to_string(), "builder: push canceled");
}

#[test]
fn execute_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let tf = ok("steps:\n  - cmd: x\n");
    let fake: Arc<dyn StepRunner> = Fake::new(&[], &[]);
    let fut = execute(&tf, fake, &|_| {});
    assert_send(&fut);
}
