//! `crtask aws configure` against `moto_server`: a CloudFormation stack
//! whose table is template.yaml's own `Table` resource, created by moto's
//! CloudFormation with the bucket, log group and queue; then the real
//! `crtask` binary with no `--aws-*` flag at all.
//!
//! moto's CloudFormation cannot create CodeBuild projects, schedule groups
//! or secrets: those are created with their own services' APIs on moto and
//! passed to the stack as parameters, which its outputs give back as
//! template.yaml's outputs do.
//!
//! Needs `cargo build -p crtask` first (or `CRTASK_BIN`).

use crtask_testkit::aws::{self as harness, codebuild, crtask_bin};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const TARGET: &str = "arn:aws:lambda:us-east-1:123456789012:function:crtask-schedule";
const ROLE: &str = "arn:aws:iam::123456789012:role/crtask-scheduler";

/// `crtask ARGS` with only the AWS credentials and endpoint in its
/// environment, and `config` as its config directory.
fn crtask(config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(crtask_bin());
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", config)
        .env("XDG_CONFIG_HOME", config)
        .env("AWS_ENDPOINT_URL", harness::endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    c
}

fn run(config: &Path, args: &[&str]) -> Output {
    crtask(config, args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run crtask: {e}"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `crtask ARGS -o json`, which must succeed.
fn json(config: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let o = run(config, &all);
    assert!(
        o.status.success(),
        "crtask {} failed: {}",
        args.join(" "),
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "crtask {} printed no JSON ({e}): {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

/// template.yaml's `Table` resource, as it is written there.
fn template_table() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(&path).expect("template.yaml");
    let start = text
        .find("\n  Table:\n")
        .expect("template.yaml has a Table resource")
        + 1;
    let rest = &text[start..];
    // Up to the next resource: a line of two spaces and a name.
    let end = rest
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .find(|&i| {
            let line = &rest[i..];
            line.starts_with("  ") && line[2..].starts_with(|c: char| c.is_ascii_uppercase())
        })
        .unwrap_or(rest.len());
    rest[..end].to_string()
}

/// The outputs of template.yaml's stack that the CLI reads; `drop` leaves
/// some out (a stack that is not crtask's, or an older one).
fn stack_template(drop: &[&str]) -> String {
    let outputs = [
        ("TableName", "!Ref Table"),
        ("BucketName", "!Ref Bucket"),
        ("CodeBuildProject", "!Ref ProjectName"),
        ("RegistryHost", REGISTRY),
        ("BuilderLogGroupName", "!Ref BuilderLogGroup"),
        ("ScheduleGroupName", "!Ref ScheduleGroup"),
        ("ScheduleTargetArn", TARGET),
        ("SchedulerRoleArn", ROLE),
        ("ScheduleSigningSecretArn", "!Ref SigningSecretArn"),
        ("FailedEventsQueueArn", "!GetAtt FailedEventsQueue.Arn"),
    ];
    let mut t = String::from(
        "AWSTemplateFormatVersion: \"2010-09-09\"\nParameters:\n  ProjectName:\n    Type: String\n  ScheduleGroup:\n    Type: String\n  SigningSecretArn:\n    Type: String\nResources:\n",
    );
    t.push_str(&template_table());
    t.push_str("  Bucket:\n    Type: AWS::S3::Bucket\n  BuilderLogGroup:\n    Type: AWS::Logs::LogGroup\n  FailedEventsQueue:\n    Type: AWS::SQS::Queue\nOutputs:\n");
    for (k, v) in outputs.iter().filter(|(k, _)| !drop.contains(k)) {
        t.push_str(&format!("  {k}:\n    Value: {v}\n"));
    }
    t
}

/// What a stack is made of besides what CloudFormation creates on moto.
struct Parts {
    project: String,
    group: String,
    secret: String,
}

async fn parts() -> Parts {
    let conf = harness::sdk_config().await;
    let group = harness::unique("crtask-timers");
    crtask_aws::config::scheduler(&conf)
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("create schedule group");
    Parts {
        project: codebuild::project(&crtask_aws::config::codebuild(&conf), "crtask-cfg").await,
        group,
        secret: harness::secret("crtask-schedule-signing", "signing-key").await,
    }
}

/// Creates stack `name` from `template` on moto; its outputs.
async fn create_stack(name: &str, template: &str, p: &Parts) -> Value {
    use aws_sdk_cloudformation::types::Parameter;
    let cf = aws_sdk_cloudformation::Client::new(&harness::sdk_config().await);
    let param = |k: &str, v: &str| {
        Parameter::builder()
            .parameter_key(k)
            .parameter_value(v)
            .build()
    };
    cf.create_stack()
        .stack_name(name)
        .template_body(template)
        .parameters(param("ProjectName", &p.project))
        .parameters(param("ScheduleGroup", &p.group))
        .parameters(param("SigningSecretArn", &p.secret))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStack {name}: {e:?}"));
    let out = cf
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .expect("DescribeStacks");
    let stack = &out.stacks()[0];
    assert_eq!(
        stack.stack_status().map(|s| s.as_str()),
        Some("CREATE_COMPLETE"),
        "{stack:?}"
    );
    stack
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap_or_default().to_string(),
                Value::from(o.output_value().unwrap_or_default()),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

async fn contexts(bucket: &str) -> Vec<String> {
    let s3 = crtask_aws::config::s3(&harness::sdk_config().await);
    s3.list_objects_v2()
        .bucket(bucket)
        .prefix("contexts/")
        .send()
        .await
        .expect("ListObjectsV2")
        .contents
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| o.key)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn configure_writes_a_profile_the_cli_then_uses_with_no_flag() {
    let p = parts().await;
    let name = harness::unique("crtask-stack");
    let outputs = create_stack(&name, &stack_template(&[]), &p).await;
    let table = outputs["TableName"]
        .as_str()
        .expect("TableName")
        .to_string();
    let bucket = outputs["BucketName"]
        .as_str()
        .expect("BucketName")
        .to_string();
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path();
    let profiles = cfg.join("crtask").join("profiles.toml");

    // An unknown stack: a clear error, and no profile written.
    let o = run(cfg, &["aws", "configure", "--stack", "no-such-stack"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("stack 'no-such-stack' does not exist"),
        "{}",
        stderr(&o)
    );
    assert!(!profiles.exists());
    // A name that is no stack name never reaches CloudFormation.
    let o = run(cfg, &["aws", "configure", "--stack", "no_such\x1bstack"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is not a CloudFormation stack name"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains('\x1b'));
    assert!(!profiles.exists());

    // Configure: every output the CLI uses is in the profile.
    let shown = json(cfg, &["aws", "configure", "--stack", &name]);
    assert_eq!(shown["profile"], "default");
    assert_eq!(shown["platform"], "aws");
    let aws = &shown["aws"];
    for (key, out) in [
        ("table", "TableName"),
        ("bucket", "BucketName"),
        ("project", "CodeBuildProject"),
        ("registry", "RegistryHost"),
        ("log-group", "BuilderLogGroupName"),
        ("schedule-group", "ScheduleGroupName"),
        ("schedule-target", "ScheduleTargetArn"),
        ("scheduler-role", "SchedulerRoleArn"),
        ("schedule-secret", "ScheduleSigningSecretArn"),
        ("schedule-dlq", "FailedEventsQueueArn"),
    ] {
        assert_eq!(aws[key], outputs[out], "{key}: {shown}");
    }
    assert_eq!(aws["stack"], name.as_str());
    assert_eq!(aws["region"], "us-east-1");
    let text = std::fs::read_to_string(&profiles).expect("profiles.toml written");
    assert!(text.contains("[profiles.default]"), "{text}");

    // Tasks with timers, runs and listings: no flag but the platform.
    let t = json(
        cfg,
        &[
            "--platform",
            "aws",
            "task",
            "create",
            "-n",
            "web",
            "-c",
            "https://github.com/acme/app.git#main",
            "-t",
            "app:{{.Run.ID}}",
            "--schedule",
            "nightly:0 2 * * *",
        ],
    );
    assert_eq!(t["name"], "web");
    let conf = harness::sdk_config().await;
    let sched = crtask_aws::config::scheduler(&conf);
    let s = sched
        .get_schedule()
        .group_name(&p.group)
        .name("web.nightly")
        .send()
        .await
        .expect("the timer's schedule, in the stack's group");
    let tg = s.target().expect("target");
    assert_eq!((tg.arn(), tg.role_arn()), (TARGET, ROLE));
    let store = crtask_aws::DynamoStore::new(crtask_aws::config::dynamodb(&conf), table.clone());
    use crtask_core::ports::Store;
    assert!(
        store.get_task("web").await.unwrap().is_some(),
        "in the stack's table"
    );

    let r = json(
        cfg,
        &["--platform", "aws", "task", "run", "-n", "web", "--no-wait"],
    );
    assert_eq!(r["status"], "Queued", "{r}");
    let run_id = r["runId"].as_str().expect("run id").to_string();
    let builds = crtask_aws::config::codebuild(&conf)
        .list_builds_for_project()
        .project_name(&p.project)
        .send()
        .await
        .expect("ListBuildsForProject")
        .ids
        .unwrap_or_default();
    assert_eq!(builds.len(), 1, "started on the stack's project");

    // A quick build of a directory: the stack's registry is the default,
    // the context goes to the stack's bucket.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM alpine:3.20\n").unwrap();
    let d = dir.path().to_string_lossy().into_owned();
    let b = json(
        cfg,
        &[
            "--platform",
            "aws",
            "build",
            "-t",
            "app:dev",
            "--no-wait",
            &d,
        ],
    );
    assert_eq!(b["runType"], "QuickBuild", "{b}");
    assert!(store
        .get_run(b["runId"].as_str().unwrap())
        .await
        .unwrap()
        .is_some());
    assert_eq!(contexts(&bucket).await.len(), 1);

    // A request that would be refused uploads nothing.
    let o = run(
        cfg,
        &[
            "--platform",
            "aws",
            "build",
            "-t",
            "Not An Image",
            "--no-wait",
            &d,
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("Not An Image"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Packed"), "{}", stderr(&o));
    assert_eq!(contexts(&bucket).await.len(), 1, "nothing more uploaded");

    // The platform from the environment, then from the profile alone.
    let mut c = crtask(cfg, &["task", "list-runs", "-o", "json"]);
    let o = c.env("CRTASK_CLI_PLATFORM", "aws").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let runs: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "{runs}");
    let runs = json(cfg, &["task", "list-runs", "-n", "web"]);
    assert_eq!(runs[0]["runId"], run_id.as_str(), "{runs}");

    // A stack without some of the outputs: they are named, nothing written.
    let before = std::fs::read_to_string(&profiles).unwrap();
    let partial = harness::unique("crtask-partial");
    create_stack(
        &partial,
        &stack_template(&["SchedulerRoleArn", "BucketName"]),
        &p,
    )
    .await;
    let o = run(
        cfg,
        &[
            "aws",
            "configure",
            "--stack",
            &partial,
            "--profile",
            "partial",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("lacks the outputs BucketName, SchedulerRoleArn"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&profiles).unwrap(), before);

    // A second profile, on another stack, next to the first.
    let other = harness::unique("crtask-staging");
    let staging = create_stack(&other, &stack_template(&[]), &p).await;
    json(
        cfg,
        &[
            "aws",
            "configure",
            "--stack",
            &other,
            "--profile",
            "staging",
        ],
    );
    let text = std::fs::read_to_string(&profiles).unwrap();
    assert!(text.contains("[profiles.default.aws]"), "{text}");
    assert!(text.contains("[profiles.staging.aws]"), "{text}");
    assert!(
        text.contains(staging["TableName"].as_str().unwrap()),
        "{text}"
    );
    let listed = json(cfg, &["task", "list", "--profile", "staging"]);
    assert_eq!(listed, serde_json::json!([]), "staging's own table");
    let o = crtask(cfg, &["task", "list", "-o", "json"])
        .env("CRTASK_PROFILE", "staging")
        .output()
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).unwrap(),
        serde_json::json!([])
    );
    let listed = json(cfg, &["task", "list"]);
    assert_eq!(listed[0]["name"], "web", "the default profile's table");
    // A flag beats the profile.
    let listed = json(
        cfg,
        &[
            "task",
            "list",
            "--profile",
            "staging",
            "--aws-table",
            &table,
        ],
    );
    assert_eq!(listed[0]["name"], "web", "{listed}");
    // An unknown profile is an error, not the default.
    let o = run(cfg, &["task", "list", "--profile", "prod"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("profile 'prod' is not in"),
        "{}",
        stderr(&o)
    );
    // The local server's commands still run locally when asked.
    let o = run(
        cfg,
        &[
            "--platform",
            "local",
            "--server",
            "http://127.0.0.1:9",
            "task",
            "list",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(!stderr(&o).contains("dynamodb"), "{}", stderr(&o));
}
