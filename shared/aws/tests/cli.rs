//! The real `crtask` binary with `--platform aws` against `moto_server`:
//! tasks in DynamoDB, runs started on CodeBuild, quick-build contexts and
//! logs in S3, all with the caller's credentials from the environment.
//!
//! Needs `cargo build -p crtask` first (or `CRTASK_BIN`).

use crtask_aws::S3Contexts;
use crtask_core::domain::model::{ContextSource, RunStatus, RunType};
use crtask_core::ports::Store;
use crtask_testkit::aws::{self as harness, codebuild, crtask_bin, logs as build_logs};
use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The stack as the CLI sees it.
struct Stack {
    table: String,
    bucket: String,
    project: String,
}

impl Stack {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(crtask_bin());
        c.args(["--platform", "aws"])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
            .env("AWS_ENDPOINT_URL", harness::endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("CRTASK_AWS_TABLE", &self.table)
            .env("CRTASK_AWS_BUCKET", &self.bucket)
            .env("CRTASK_AWS_PROJECT", &self.project)
            .env(
                "CRTASK_AWS_REGISTRY",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            )
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run crtask: {e}"))
    }

    /// Runs `crtask --platform aws ARGS -o json`, which must succeed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "crtask {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "crtask {} printed no JSON ({e}): {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

async fn builds_of(cb: &aws_sdk_codebuild::Client, project: &str) -> Vec<String> {
    cb.list_builds_for_project()
        .project_name(project)
        .send()
        .await
        .expect("ListBuildsForProject")
        .ids
        .unwrap_or_default()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_on_aws_tasks_runs_builds_and_logs() {
    let conf = harness::sdk_config().await;
    let cb = crtask_aws::config::codebuild(&conf);
    let store = harness::store().await;
    let (s3_client, bucket) = harness::bucket().await;
    let s3 = S3Contexts::new(s3_client.clone(), bucket.clone());
    let stack = Stack {
        table: store.table().to_string(),
        bucket: bucket.clone(),
        project: codebuild::project(&cb, "crtask-cli").await,
    };

    // A secret build argument would reach CodeBuild as plaintext: refused,
    // nothing stored.
    let o = stack.run(&[
        "task",
        "create",
        "-n",
        "web",
        "-c",
        "https://github.com/acme/app.git#main",
        "--secret-build-arg",
        "TOKEN=s3cret",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("secret build argument 'TOKEN' cannot be used on AWS yet"),
        "{}",
        stderr(&o)
    );
    assert!(store.get_task("web").await.unwrap().is_none());

    // Create: the task is in DynamoDB.
    let t = stack.json(&[
        "task",
        "create",
        "-n",
        "web",
        "-c",
        "https://github.com/acme/app.git#main",
        "-t",
        "app:{{.Run.ID}}",
        "--build-arg",
        "MODE=release",
    ]);
    assert_eq!(t["name"], "web");
    let stored = store
        .get_task("web")
        .await
        .unwrap()
        .expect("task in DynamoDB");
    assert_eq!(stored.context, "https://github.com/acme/app.git#main");
    assert_eq!(stored.build_args[0].value, "release");
    let list = stack.json(&["task", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["name"], "web");
    let shown = stack.json(&["task", "show", "-n", "web"]);
    assert_eq!(shown["context"], "https://github.com/acme/app.git#main");
    assert_eq!(shown["dependencies"], serde_json::json!([]));
    let up = stack.json(&["task", "update", "-n", "web", "--branch", "release"]);
    assert_eq!(up["branch"], "release");
    let stored = store.get_task("web").await.unwrap().expect("task");
    assert_eq!(stored.build_args[0].value, "release");
    // Nor can an update add one.
    let o = stack.run(&["task", "update", "-n", "web", "--secret-build-arg", "K=v"]);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot be used on AWS yet"),
        "{}",
        stderr(&o)
    );

    // A local directory cannot be a task context on AWS.
    let dir = std::env::temp_dir().join(harness::unique("crtask-cli-ctx"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM alpine:3.20\nRUN true\n").unwrap();
    let dir_s = dir.to_string_lossy().into_owned();
    let o = stack.run(&["task", "create", "-n", "local", "-c", &dir_s]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("local directory"), "{}", stderr(&o));

    // Run: recorded Queued with the CodeBuild build id, which moto lists.
    let run = stack.json(&["task", "run", "-n", "web", "--no-wait"]);
    let run_id = run["runId"].as_str().expect("run id").to_string();
    assert_eq!(run["status"], "Queued");
    assert_eq!(run["task"], "web");
    assert!(run.get("spec").is_none(), "{run}");
    let stored = store.get_run(&run_id).await.unwrap().expect("run");
    let build_id = stored.builder_ref.clone().expect("builder_ref recorded");
    assert_eq!(stored.run_type, RunType::AutoBuild);
    assert_eq!(builds_of(&cb, &stack.project).await, vec![build_id]);

    // Quick build of a local directory: the context goes to S3.
    let b = stack.json(&["build", "-t", "app:quick", "--no-wait", &dir_s]);
    let build_run = b["runId"].as_str().expect("run id").to_string();
    assert_eq!(b["runType"], "QuickBuild", "{b}");
    let stored = store.get_run(&build_run).await.unwrap().expect("run");
    let ContextSource::Uploaded { id } = &stored.spec.context else {
        panic!("not an uploaded context: {:?}", stored.spec.context);
    };
    let objects: Vec<String> = s3_client
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("contexts/")
        .send()
        .await
        .unwrap()
        .contents
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| o.key)
        .collect();
    assert_eq!(objects, vec![format!("contexts/{id}.tar.gz")]);
    let tarball = s3.get_context(id).await.unwrap().expect("context object");
    assert_eq!(&tarball[..2], &[0x1f, 0x8b], "gzip");
    assert!(stored.builder_ref.is_some());
    assert_eq!(builds_of(&cb, &stack.project).await.len(), 2);

    // Listing and showing runs.
    let runs = stack.json(&["task", "list-runs"]);
    let ids: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["runId"].as_str())
        .collect();
    assert_eq!(ids, [build_run.as_str(), run_id.as_str()], "newest first");
    let web_runs = stack.json(&["task", "list-runs", "-n", "web"]);
    assert_eq!(web_runs.as_array().map(Vec::len), Some(1));
    let shown = stack.json(&["task", "show-run", "--run-id", &run_id]);
    assert_eq!(shown["runId"], run_id.as_str());
    let o = stack.run(&["task", "list-runs"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&build_run));

    // Logs: the object the builder uploads, printed once the run ended.
    s3.put_log(&run_id, b"step 1\nbuilt\n".to_vec())
        .await
        .unwrap();
    let mut r = store.get_run(&run_id).await.unwrap().unwrap();
    r.status = RunStatus::Succeeded;
    store.update_run(&r).await.unwrap();
    let o = stack.run(&["task", "logs", "--run-id", &run_id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "step 1\nbuilt\n");
    let o = stack.run(&["task", "logs", "-n", "web"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "step 1\nbuilt\n");

    // Following a run in progress: ends when the run does.
    let started = Instant::now();
    let follower = stack
        .command(&["task", "logs", "--run-id", &build_run])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s3.put_log(&build_run, b"quick build log\n".to_vec())
        .await
        .unwrap();
    let mut r = store.get_run(&build_run).await.unwrap().unwrap();
    r.status = RunStatus::Failed;
    store.update_run(&r).await.unwrap();
    let o = follower.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "quick build log\n");
    assert!(started.elapsed() < Duration::from_secs(30));

    // Cancel stops the build.
    let run3 = stack.json(&["task", "run", "-n", "web", "--no-wait"]);
    let run3 = run3["runId"].as_str().unwrap().to_string();
    let c = stack.json(&["task", "cancel-run", "--run-id", &run3]);
    assert_eq!(c["status"], "Canceled");
    let o = stack.run(&["task", "cancel-run", "--run-id", &run3]);
    assert!(
        stderr(&o).contains("has already finished"),
        "{}",
        stderr(&o)
    );

    // Events and dependents read the same table.
    assert_eq!(stack.json(&["events", "list"]), serde_json::json!([]));
    let d = stack.json(&["image", "dependents", "alpine"]);
    assert_eq!(d["dependents"], serde_json::json!([]));

    // Unknown names: one line, exit 1.
    for args in [
        &["task", "show", "-n", "nope"][..],
        &["task", "run", "-n", "nope", "--no-wait"][..],
        &["task", "show-run", "--run-id", "ca999"][..],
    ] {
        let o = stack.run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = stderr(&o);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.starts_with("error: ") && e.contains("not found"), "{e}");
    }

    // Delete.
    let del = stack.json(&["task", "delete", "-n", "web"]);
    assert_eq!(del["deleted"], "web");
    assert!(store.get_task("web").await.unwrap().is_none());

    // Missing settings are named.
    let o = stack
        .command(&["task", "list"])
        .env_remove("CRTASK_AWS_TABLE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("CRTASK_AWS_TABLE"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The schedule function and the role Scheduler invokes it with (the stack
/// outputs `ScheduleTargetArn`, `SchedulerRoleArn`).
const SCHEDULE_TARGET: &str = "arn:aws:lambda:us-east-1:123456789012:function:crtask-schedule";
const SCHEDULER_ROLE: &str = "arn:aws:iam::123456789012:role/crtask-scheduler";

/// `args` followed by the schedule settings (group, target, role).
fn with_schedule_flags(args: &[&str], group: &str) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.extend([
        "--aws-schedule-group".into(),
        group.to_string(),
        "--aws-schedule-target".into(),
        SCHEDULE_TARGET.into(),
        "--aws-scheduler-role".into(),
        SCHEDULER_ROLE.into(),
    ]);
    v
}

/// A new schedule group named after `prefix`.
async fn schedule_group(sched: &crtask_aws::scheduler::Client, prefix: &str) -> String {
    let group = harness::unique(prefix);
    sched
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("create schedule group");
    group
}

/// The schedule of `name` in `group`, if any.
async fn schedule(
    client: &crtask_aws::scheduler::Client,
    group: &str,
    name: &str,
) -> Option<aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput> {
    match client
        .get_schedule()
        .group_name(group)
        .name(name)
        .send()
        .await
    {
        Ok(o) => Some(o),
        Err(e)
            if e.as_service_error()
                .is_some_and(|x| x.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("GetSchedule {name}: {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_on_aws_keeps_timer_schedules_in_step() {
    use crtask_core::trigger::timer::scheduler::{
        verify_schedule, Skew, SCHEDULED_TIME_PLACEHOLDER,
    };
    let conf = harness::sdk_config().await;
    let store = harness::store().await;
    let sched = crtask_aws::config::scheduler(&conf);
    let group = schedule_group(&sched, "crtask-timers").await;
    let key = "signing-key-kept-in-secrets-manager";
    let secret = crtask_aws::config::secretsmanager(&conf)
        .create_secret()
        .name(harness::unique("crtask/schedule/signing"))
        .secret_string(key)
        .send()
        .await
        .expect("create secret");
    let secret_arn = secret.arn().expect("secret arn").to_string();
    let stack = Stack {
        table: store.table().to_string(),
        bucket: "unused".into(),
        project: "unused".into(),
    };
    let (target, role) = (SCHEDULE_TARGET, SCHEDULER_ROLE);
    let flags = |args: &[&str]| -> Vec<String> {
        let mut v = with_schedule_flags(args, &group);
        v.extend(["--aws-schedule-secret".into(), secret_arn.clone()]);
        v
    };
    let with = |args: &[&str]| -> Value {
        let v = flags(args);
        stack.json(&v.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let create = [
        "task",
        "create",
        "-n",
        "nightly",
        "-c",
        "/dev/null",
        "--schedule",
        "nightly:0 2 * * *",
    ];

    // Without the settings: a clear error, and nothing stored.
    let o = stack.run(&create);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    for want in [
        "the timers of task 'nightly' are EventBridge Scheduler schedules on AWS: set",
        "--aws-schedule-group (or CRTASK_AWS_SCHEDULE_GROUP; the stack output ScheduleGroupName)",
        "--aws-schedule-target",
        "--aws-scheduler-role",
        "--aws-schedule-secret (or CRTASK_AWS_SCHEDULE_SECRET; the stack output ScheduleSigningSecretArn)",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    assert!(store.get_task("nightly").await.unwrap().is_none());

    // A cron Scheduler cannot express: refused before anything is stored.
    let v = flags(&[
        "task",
        "create",
        "-n",
        "nightly",
        "-c",
        "/dev/null",
        "--schedule",
        "0 0 1 * MON",
    ]);
    let o = stack.run(&v.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("timer 't1': cron '0 0 1 * MON'"),
        "{}",
        stderr(&o)
    );
    assert!(store.get_task("nightly").await.unwrap().is_none());

    // Create: the schedule exists, signed with the key in Secrets Manager.
    let t = with(&create);
    assert_eq!(t["name"], "nightly");
    let s = schedule(&sched, &group, "nightly.nightly")
        .await
        .expect("the timer's schedule");
    assert_eq!(s.schedule_expression(), Some("cron(0 2 * * ? *)"));
    assert_eq!(s.state().map(|x| x.as_str()), Some("ENABLED"));
    let tg = s.target().expect("target");
    assert_eq!((tg.arn(), tg.role_arn()), (target, role));
    let input = tg.input().expect("input");
    let now = chrono::Utc::now();
    let delivered = input.replace(
        SCHEDULED_TIME_PLACEHOLDER,
        &now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    verify_schedule(
        &[crtask_core::signing::Secret::new(key)],
        delivered.as_bytes(),
        now,
        Skew::default(),
    )
    .expect("signed with the stack's key");

    // Timer commands keep the schedules in step.
    with(&[
        "task",
        "timer",
        "add",
        "-n",
        "nightly",
        "--schedule",
        "weekly:0 4 * * SUN",
    ]);
    let w = schedule(&sched, &group, "nightly.weekly")
        .await
        .expect("weekly");
    assert_eq!(w.schedule_expression(), Some("cron(0 4 ? * SUN *)"));
    with(&[
        "task",
        "timer",
        "update",
        "-n",
        "nightly",
        "--timer-name",
        "weekly",
        "--enabled",
        "false",
    ]);
    let w = schedule(&sched, &group, "nightly.weekly")
        .await
        .expect("weekly");
    assert_eq!(w.state().map(|x| x.as_str()), Some("DISABLED"));
    with(&[
        "task",
        "timer",
        "remove",
        "-n",
        "nightly",
        "--timer-name",
        "weekly",
    ]);
    assert!(schedule(&sched, &group, "nightly.weekly").await.is_none());
    assert!(schedule(&sched, &group, "nightly.nightly").await.is_some());

    // Deleting the task deletes its schedules.
    with(&["task", "delete", "-n", "nightly"]);
    assert!(schedule(&sched, &group, "nightly.nightly").await.is_none());
    assert!(store.get_task("nightly").await.unwrap().is_none());

    // A task without timers needs none of the settings.
    stack.json(&["task", "create", "-n", "plain", "-c", "/dev/null"]);
    stack.json(&["task", "delete", "-n", "plain"]);
}

/// A follower's stdout, line by line as it comes.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_on_aws_streams_the_build_log_from_cloudwatch() {
    let conf = harness::sdk_config().await;
    let cb = crtask_aws::config::codebuild(&conf);
    let cwl = crtask_aws::config::cloudwatchlogs(&conf);
    let store = harness::store().await;
    let (s3_client, bucket) = harness::bucket().await;
    let s3 = S3Contexts::new(s3_client, bucket.clone());
    let group = format!("/aws/codebuild/{}", harness::unique("crtask-builder"));
    cwl.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("create log group");
    let stack = Stack {
        table: store.table().to_string(),
        bucket,
        project: codebuild::project(&cb, "crtask-cli").await,
    };
    stack.json(&[
        "task",
        "create",
        "-n",
        "web",
        "-c",
        "https://github.com/acme/app.git#main",
        "-t",
        "app:{{.Run.ID}}",
    ]);
    let start = |stack: &Stack| -> String {
        let run = stack.json(&["task", "run", "-n", "web", "--no-wait"]);
        run["runId"].as_str().expect("run id").to_string()
    };

    // A run in progress whose build has not written its stream yet.
    let run_id = start(&stack);
    let build_id = store
        .get_run(&run_id)
        .await
        .unwrap()
        .and_then(|r| r.builder_ref)
        .expect("builder_ref recorded");
    let stream = build_id
        .split_once(':')
        .map(|(_, uuid)| uuid.to_string())
        .expect("build ids are <project>:<uuid>");
    // The S3 log must not be printed again after the streamed lines.
    s3.put_log(&run_id, b"the uploaded copy\n".to_vec())
        .await
        .unwrap();
    let mut follower = stack
        .command(&["task", "logs", "--run-id", &run_id])
        .env("CRTASK_AWS_LOG_GROUP", &group)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let got = lines_of(&mut follower);
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // The build starts: CodeBuild's lines, the buildspec's, then the executor's.
    cwl.create_log_stream()
        .log_group_name(&group)
        .log_stream_name(&stream)
        .send()
        .await
        .expect("create log stream");
    let first_marker = format!("crtask: run {run_id} on docker (linux/amd64)");
    build_logs::put_build_log(
        &cwl,
        &group,
        &stream,
        &[
            "[Container] 2024/05/01 10:00:00.000000 Running on CodeBuild On-demand",
            "[Container] 2024/05/01 10:00:01.000000 Entering phase INSTALL",
            "crtask 0.1.0",
            "Login Succeeded",
            "[Container] 2024/05/01 10:00:05.000000 Running command crtask exec",
            &first_marker,
            "Step 1/2 : FROM alpine:3.20",
        ],
    )
    .await;
    // The lines arrive while the run is still going.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut shown = Vec::new();
    while shown.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match got.recv_timeout(left) {
            Ok(l) => shown.push(l),
            Err(e) => panic!("the first lines were not streamed ({e}): {shown:?}"),
        }
    }
    assert_eq!(
        shown,
        [first_marker.as_str(), "Step 1/2 : FROM alpine:3.20"]
    );
    assert!(!store
        .get_run(&run_id)
        .await
        .unwrap()
        .unwrap()
        .status
        .is_terminal());

    let last_marker = format!("crtask: run {run_id} Succeeded after 9s");
    build_logs::put_build_log(
        &cwl,
        &group,
        &stream,
        &[
            "Step 2/2 : RUN echo token=*****",
            "",
            &last_marker,
            "[Container] 2024/05/01 10:00:14.000000 Phase complete: BUILD State: SUCCEEDED",
            "[Container] 2024/05/01 10:00:15.000000 Entering phase POST_BUILD",
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut r = store.get_run(&run_id).await.unwrap().unwrap();
    r.status = RunStatus::Succeeded;
    store.update_run(&r).await.unwrap();

    let o = follower.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    shown.extend(got.iter());
    assert_eq!(
        shown,
        [
            first_marker.as_str(),
            "Step 1/2 : FROM alpine:3.20",
            "Step 2/2 : RUN echo token=*****",
            "",
            last_marker.as_str(),
        ]
    );
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "Waiting for run {run_id} (Queued): its build log streams here from CloudWatch Logs group {group}"
        )),
        "{err}"
    );

    // A build that never reached the executor: the S3 log, as without the group.
    let run2 = start(&stack);
    let build2 = store
        .get_run(&run2)
        .await
        .unwrap()
        .and_then(|r| r.builder_ref)
        .expect("builder_ref recorded");
    let stream2 = build2.split_once(':').map(|(_, u)| u.to_string()).unwrap();
    cwl.create_log_stream()
        .log_group_name(&group)
        .log_stream_name(&stream2)
        .send()
        .await
        .unwrap();
    build_logs::put_build_log(
        &cwl,
        &group,
        &stream2,
        &[
            "[Container] 2024/05/01 11:00:00.000000 Entering phase PRE_BUILD",
            "crtask: CRTASK_RUN_ID is missing or malformed",
        ],
    )
    .await;
    s3.put_log(&run2, b"from s3\n".to_vec()).await.unwrap();
    let follower = stack
        .command(&["task", "logs", "--run-id", &run2])
        .env("CRTASK_AWS_LOG_GROUP", &group)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut r = store.get_run(&run2).await.unwrap().unwrap();
    r.status = RunStatus::Failed;
    store.update_run(&r).await.unwrap();
    let o = follower.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "from s3\n");

    // A run that already ended, without an uploaded log: a note, and where
    // the build's own log is.
    let run3 = start(&stack);
    let mut r = store.get_run(&run3).await.unwrap().unwrap();
    r.status = RunStatus::Canceled;
    store.update_run(&r).await.unwrap();
    let o = stack
        .command(&["task", "logs", "--run-id", &run3])
        .env("CRTASK_AWS_LOG_GROUP", "/aws/codebuild/no-such-group")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
    let err = stderr(&o);
    assert!(
        err.contains(&format!("note: run {run3} has no log yet")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "the build's own log is in CloudWatch Logs group /aws/codebuild/no-such-group, stream {}",
            store
                .get_run(&run3)
                .await
                .unwrap()
                .and_then(|r| r.builder_ref)
                .and_then(|b| b.split_once(':').map(|(_, u)| u.to_string()))
                .unwrap()
        )),
        "{err}"
    );
}

/// OS patching on AWS: a patch run is recorded and handed to CodeBuild
/// carrying its request; continuous patching's configuration lands in the
/// table and its EventBridge Scheduler schedule (`rate(N days)`, the patch
/// tick as input) in the stack's group, and `delete` removes both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_on_aws_patches_and_schedules_continuous_patching() {
    let conf = harness::sdk_config().await;
    let cb = crtask_aws::config::codebuild(&conf);
    let store = harness::store().await;
    let sched = crtask_aws::config::scheduler(&conf);
    let group = schedule_group(&sched, "crtask-patch").await;
    let stack = Stack {
        table: store.table().to_string(),
        bucket: "unused".into(),
        project: codebuild::project(&cb, "crtask-patch").await,
    };

    // A manual patch: a Patch run with its request, on CodeBuild.
    let run = stack.json(&["patch", "demo:1", "--no-wait"]);
    let run_id = run["runId"].as_str().expect("run id").to_string();
    assert_eq!(run["runType"], "Patch", "{run}");
    assert_eq!(run["status"], "Queued", "{run}");
    let stored = store.get_run(&run_id).await.unwrap().expect("run");
    assert_eq!(stored.run_type, RunType::Patch);
    assert_eq!(
        stored.patch.as_ref().expect("patch request").request.image,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo:1"
    );
    let build_id = stored.builder_ref.clone().expect("dispatched");
    assert_eq!(builds_of(&cb, &stack.project).await, vec![build_id]);
    // A digest-pinned image is refused before anything is recorded.
    let pinned = format!("demo@sha256:{}", "a".repeat(64));
    let o = stack.run(&["patch", &pinned, "--no-wait"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("pinned by digest"), "{}", stderr(&o));
    assert_eq!(builds_of(&cb, &stack.project).await.len(), 1);

    // Continuous patching.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("continuous-patch.json");
    std::fs::write(
        &file,
        r#"{"version": "v1", "tag-convention": "floating",
            "repositories": [{"repository": "demo", "tags": ["1*"], "enabled": true}]}"#,
    )
    .unwrap();
    let file_s = file.to_str().unwrap();
    let set = ["patch", "config", "set", "-f", file_s, "--schedule", "7d"];
    // Without the schedule settings: a clear error, nothing stored.
    let o = stack.run(&set);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("continuous patching is an EventBridge Scheduler schedule on AWS: set")
            && err.contains("--aws-schedule-group")
            && err.contains("--aws-scheduler-role"),
        "{err}"
    );
    assert!(store.patch_schedule().await.unwrap().is_none());

    let (target, role) = (SCHEDULE_TARGET, SCHEDULER_ROLE);
    let with = |args: &[&str]| with_schedule_flags(args, &group);
    let args = with(&set);
    let shown = stack.json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(shown["schedule"], "7d", "{shown}");
    assert!(shown["nextRun"].is_string(), "{shown}");
    let saved = store.patch_schedule().await.unwrap().expect("stored");
    assert_eq!(saved.config.repositories[0].repository, "demo");
    let s = schedule(&sched, &group, crtask_aws::scheduler::PATCH_SCHEDULE_NAME)
        .await
        .expect("the patch schedule exists");
    assert_eq!(s.schedule_expression(), Some("rate(7 days)"));
    let t = s.target().expect("target");
    assert_eq!(t.arn(), target);
    assert_eq!(t.role_arn(), role);
    let input: Value = serde_json::from_str(t.input().unwrap_or_default()).unwrap();
    assert_eq!(input["kind"], "patch-tick", "{input}");

    // Setting it again replaces both (one schedule, the new rate).
    let daily = with(&["patch", "config", "set", "-f", file_s, "--schedule", "1d"]);
    stack.json(&daily.iter().map(String::as_str).collect::<Vec<_>>());
    let s = schedule(&sched, &group, crtask_aws::scheduler::PATCH_SCHEDULE_NAME)
        .await
        .unwrap();
    assert_eq!(s.schedule_expression(), Some("rate(1 day)"));
    let show = stack.json(&["patch", "config", "show"]);
    assert_eq!(show["schedule"], "1d", "{show}");

    // Delete: both gone; a second delete says there is nothing.
    let del = with(&["patch", "config", "delete"]);
    let o = stack.run(&del.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(store.patch_schedule().await.unwrap().is_none());
    assert!(
        schedule(&sched, &group, crtask_aws::scheduler::PATCH_SCHEDULE_NAME)
            .await
            .is_none()
    );
    let o = stack.run(&del.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("continuous patching configuration"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_on_aws_passes_only_task_roles_under_the_stack_path() {
    let conf = harness::sdk_config().await;
    let cb = crtask_aws::config::codebuild(&conf);
    let store = harness::store().await;
    let (_s3, bucket) = harness::bucket().await;
    let stack = Stack {
        table: store.table().to_string(),
        bucket,
        project: codebuild::project(&cb, "crtask-role").await,
    };
    let allowed = "arn:aws:iam::123456789012:role/crtask-tasks/web-builder";
    let outside = "arn:aws:iam::123456789012:role/admin";
    let create = |role: &str, path: Option<&str>| {
        let mut c = stack.command(&[
            "task",
            "create",
            "-n",
            "web",
            "-c",
            "https://github.com/acme/app.git#main",
            "--assign-identity",
            role,
        ]);
        if let Some(p) = path {
            c.env("CRTASK_AWS_TASK_ROLE_PATH", p);
        }
        c.output().unwrap()
    };
    // A profile without the stack's TaskRolePath allows no roles.
    let o = create(allowed, None);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("allows no task roles"),
        "{}",
        stderr(&o)
    );
    // Outside the path: refused, nothing stored.
    let o = create(outside, Some("/crtask-tasks/"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("outside the path"), "{}", stderr(&o));
    assert!(store.get_task("web").await.unwrap().is_none());
    // Not an ARN at all.
    let o = create("web-builder", Some("/crtask-tasks/"));
    assert!(
        stderr(&o).contains("is not an IAM role ARN"),
        "{}",
        stderr(&o)
    );
    // Under the path: stored, and the run is dispatched to CodeBuild.
    let o = create(allowed, Some("/crtask-tasks/"));
    assert!(o.status.success(), "{}", stderr(&o));
    let stored = store.get_task("web").await.unwrap().expect("stored");
    assert_eq!(stored.identity.as_deref(), Some(allowed));
    let out = stack
        .command(&["task", "run", "-n", "web", "--no-wait", "-o", "json"])
        .env("CRTASK_AWS_TASK_ROLE_PATH", "/crtask-tasks/")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = run["runId"].as_str().unwrap();
    let stored = store.get_run(id).await.unwrap().unwrap();
    assert_eq!(stored.spec.identity.as_deref(), Some(allowed));
    assert!(stored.builder_ref.is_some(), "{stored:?}");
    assert_eq!(builds_of(&cb, &stack.project).await.len(), 1);
    // The git access token: kept in Secrets Manager as <stack>/git/<task>;
    // the task holds only a reference to it, and no answer shows it.
    let sm = crtask_aws::config::secretsmanager(&conf);
    let stack_name = harness::unique("crtask-stack");
    let with_env = |args: &[&str], name: Option<&str>| {
        let mut c = stack.command(args);
        c.env("CRTASK_AWS_TASK_ROLE_PATH", "/crtask-tasks/");
        if let Some(s) = name {
            c.env("CRTASK_AWS_STACK", s);
        }
        c.output().unwrap()
    };
    let set_token = [
        "task",
        "update",
        "-n",
        "web",
        "--git-access-token",
        "zz-tok-zz",
    ];
    // Without the stack's name: refused, nothing stored.
    let o = with_env(&set_token, None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("<stack>/git/<task>"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("zz-tok-zz"));
    let task = || async { store.get_task("web").await.unwrap().unwrap() };
    assert_eq!(task().await.git_access_token, None);
    let o = with_env(&set_token, Some(&stack_name));
    assert!(o.status.success(), "{}", stderr(&o));
    for out in [&o.stdout, &o.stderr] {
        assert!(!String::from_utf8_lossy(out).contains("zz-tok-zz"));
    }
    let secret = format!("{stack_name}/git/web");
    let reference = format!("secretsmanager:{secret}");
    assert_eq!(
        task().await.git_access_token.as_deref(),
        Some(reference.as_str())
    );
    let value = sm
        .get_secret_value()
        .secret_id(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(value.secret_string(), Some("zz-tok-zz"));
    // Its runs carry the reference, which the dispatcher turns into the
    // secret's name for the builder (tests/moto.rs).
    let o = with_env(
        &["task", "run", "-n", "web", "--no-wait", "-o", "json"],
        Some(&stack_name),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let run: Value = serde_json::from_slice(&o.stdout).unwrap();
    let stored = store
        .get_run(run["runId"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.spec.git_access_token.as_deref(),
        Some(reference.as_str())
    );
    assert!(stored.builder_ref.is_some(), "{stored:?}");
    // An update that leaves the token out keeps it; deleting the task
    // deletes its secret.
    let o = with_env(
        &["task", "update", "-n", "web", "--timeout", "900"],
        Some(&stack_name),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        task().await.git_access_token.as_deref(),
        Some(reference.as_str())
    );
    let o = with_env(&["task", "delete", "-n", "web"], Some(&stack_name));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(sm
        .get_secret_value()
        .secret_id(&secret)
        .send()
        .await
        .is_err());
}
