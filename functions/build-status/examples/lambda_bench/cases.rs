//! What is measured: each function's binary, environment and events.

use super::*;

pub(crate) type EventFn = Box<dyn Fn(usize) -> Value>;
pub(crate) type CheckFn = Box<dyn Fn(&Outcome) -> Res<()>>;

/// One thing to measure: a binary, its environment, its events.
pub(crate) struct Case {
    pub(crate) label: String,
    pub(crate) binary: PathBuf,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) event: EventFn,
    pub(crate) check: CheckFn,
    pub(crate) note: Option<String>,
}

pub(crate) fn expect_response(check: impl Fn(&Value) -> Res<()> + 'static) -> CheckFn {
    Box::new(move |o| match o {
        Outcome::Response(v) => check(v),
        Outcome::Error(e) => Err(format!("the function answered an error: {e}")),
    })
}

pub(crate) const PUSH_SECRET: &str = "whsec-bench-0123456789abcdefghijklmnopqrstuvwxyz";
pub(crate) const REPO_URL: &str = "https://github.com/acme/app.git";
/// The build as `StartBuild` names it (kept on the run) and as its
/// state-change events name it (the ARN).
pub(crate) const BUILD: &str = "crtask-builder:0f1e2d3c-4b5a-4697-8899-aabbccddeeff";
pub(crate) const BUILD_ARN: &str = "arn:aws:codebuild:us-east-1:123456789012:build/crtask-builder:0f1e2d3c-4b5a-4697-8899-aabbccddeeff";

/// A signed GitHub push to a branch the task does not track, as a Function
/// URL event (payload 2.0); delivery `i` is unique so it is not a replay.
pub(crate) fn push_event(i: usize) -> Value {
    let commit = "5a1f3c9e0b7d4e2f8a6c1b3d5e7f9a0b2c4d6e8f";
    let body = GithubPush::new(REPO_URL, "bench", commit)
        .pusher("bench")
        .body();
    let signature = sign::github(PUSH_SECRET, &body);
    let body = String::from_utf8_lossy(&body);
    let delivery = format!("{:08x}-cc78-11e3-81ab-{:012x}", std::process::id(), i);
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/webhooks/git",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "x-github-event": "push",
            "x-github-delivery": delivery,
            "x-hub-signature-256": signature,
            "user-agent": "GitHub-Hookshot/7e5a3b1"
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnop",
            "domainName": "abcdefghijklmnop.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnop",
            "http": {"method": "POST", "path": "/webhooks/git", "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10", "userAgent": "GitHub-Hookshot/7e5a3b1"},
            "requestId": format!("req-{i}"),
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1_795_766_400_000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

pub(crate) const IN_PROGRESS: &str =
    include_str!("../../../../shared/core/tests/fixtures/codebuild/in-progress.json");
pub(crate) const NOT_CRTASK: &str =
    include_str!("../../../../shared/core/tests/fixtures/codebuild/not-crtask.json");

pub(crate) fn run_id(i: usize) -> String {
    format!("bench{i}")
}

/// The fixture's IN_PROGRESS event for run `i` (queued in the store).
pub(crate) fn in_progress_event(template: &Value, i: usize) -> Value {
    let mut e = template.clone();
    e["detail"]["build-id"] = BUILD_ARN.into();
    e["resources"] = json!([BUILD_ARN]);
    if let Some(vars) = e
        .pointer_mut("/detail/additional-information/environment/environment-variables")
        .and_then(Value::as_array_mut)
    {
        for v in vars {
            if v["name"] == "CRTASK_RUN_ID" {
                v["value"] = run_id(i).into();
            }
        }
    }
    e
}

pub(crate) fn queued_run(i: usize) -> Run {
    RunBuilder::new(&run_id(i))
        .created(Utc::now())
        .builder_ref(Some(BUILD))
        .build()
}

/// What moto holds for the functions: a table (with task `web` and the
/// queued runs `bench0..runs`), a bucket and a secret (every function's).
pub(crate) async fn setup(moto: &str, runs: usize) -> Res<Vec<(String, String)>> {
    let conf = crtask_aws::config::loader()
        .endpoint_url(moto)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "bench"))
        .load()
        .await;
    let suffix = format!("{}-{}", std::process::id(), Utc::now().timestamp_millis());
    let table = format!("crtask-bench-{suffix}");
    let dynamo = crtask_aws::config::dynamodb(&conf);
    crtask_aws::create_table(&dynamo, &table)
        .await
        .map_err(|e| format!("create table: {e}"))?;
    let store = crtask_aws::DynamoStore::new(dynamo, table.clone());
    store
        .create_task(&crtask_testkit::task("web"))
        .await
        .map_err(|e| format!("create task: {e}"))?;
    for i in 0..runs {
        store
            .insert_run(&queued_run(i))
            .await
            .map_err(|e| format!("insert run: {e}"))?;
    }
    let bucket = format!("crtask-bench-{suffix}");
    crtask_aws::config::s3(&conf)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .map_err(|e| format!("create bucket: {e:?}"))?;
    let secret = crtask_aws::config::secretsmanager(&conf)
        .create_secret()
        .name(format!("crtask/bench-{suffix}"))
        .secret_string(PUSH_SECRET)
        .send()
        .await
        .map_err(|e| format!("create secret: {e:?}"))?
        .arn
        .ok_or("create secret: no arn")?;
    Ok(vec![
        ("CRTASK_TABLE".into(), table),
        ("CRTASK_BUCKET".into(), bucket),
        ("CRTASK_BUILDER_PROJECT".into(), "crtask-builder".into()),
        (
            "CRTASK_REGISTRY_HOST".into(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
        ),
        ("CRTASK_GIT_WEBHOOK_SECRET_ARN".into(), secret.clone()),
        // The newer functions' secrets (the same value will do here).
        ("CRTASK_REGISTRY_WEBHOOK_SECRET_ARN".into(), secret.clone()),
        ("CRTASK_SCHEDULE_SECRET_ARN".into(), secret),
    ])
}

/// The cases of function `name` (binary `path`).
pub(crate) fn cases_for(
    name: &str,
    path: &Path,
    env: &[(String, String)],
    events: &HashMap<String, Value>,
) -> Res<Vec<Case>> {
    let mk = |label: &str, event: EventFn, check: CheckFn, note: Option<&str>| Case {
        label: label.into(),
        binary: path.into(),
        env: env.to_vec(),
        event,
        check,
        note: note.map(str::to_string),
    };
    if let Some(e) = events.get(name) {
        let e = e.clone();
        return Ok(vec![mk(
            name,
            Box::new(move |_| e.clone()),
            Box::new(|_| Ok(())),
            Some("event given with --event; answers (or errors) are not checked"),
        )]);
    }
    let parse = |s: &str| serde_json::from_str::<Value>(s).map_err(|e| format!("fixture: {e}"));
    Ok(match name {
        "git-webhook" => vec![mk(
            "git-webhook (signed push, no task matches: event recorded)",
            Box::new(push_event),
            expect_response(|v| {
                let body: Value = v["body"]
                    .as_str()
                    .and_then(|b| serde_json::from_str(b).ok())
                    .unwrap_or(Value::Null);
                (v["statusCode"]
                    .as_u64()
                    .is_some_and(|s| (200..300).contains(&s))
                    && body["outcome"] == "ignored")
                    .then_some(())
                    .ok_or(format!("expected a 2xx 'ignored' answer, got {v}"))
            }),
            None,
        )],
        "build-status" => {
            let template = parse(IN_PROGRESS)?;
            let not_crtask = parse(NOT_CRTASK)?;
            vec![
                mk(
                    "build-status (IN_PROGRESS of a queued run: run updated)",
                    Box::new(move |i| in_progress_event(&template, i)),
                    expect_response(|v| {
                        (v["outcome"] == "updated")
                            .then_some(())
                            .ok_or(format!("expected 'updated', got {v}"))
                    }),
                    None,
                ),
                mk(
                    "build-status (not a crtask build: ignored, no AWS call)",
                    Box::new(move |_| not_crtask.clone()),
                    expect_response(|v| {
                        (v["outcome"] == "ignored")
                            .then_some(())
                            .ok_or(format!("expected 'ignored', got {v}"))
                    }),
                    None,
                ),
            ]
        }
        "registry-event" => vec![mk(
            "registry-event (ECR push of an image nothing depends on: event recorded)",
            Box::new(|i| {
                json!({"version": "0", "id": format!("bench-{i}"),
                    "detail-type": "ECR Image Action", "source": "aws.ecr",
                    "account": "123456789012", "time": "2026-11-27T08:00:00Z",
                    "region": "us-east-1", "resources": [],
                    "detail": {"result": "SUCCESS", "repository-name": "bench/nothing-depends",
                        "image-digest": format!("sha256:{i:064x}"), "action-type": "PUSH",
                        "image-tag": "latest"}})
            }),
            expect_response(|v| {
                (v["outcome"] == "recorded" && v["events"][0]["outcome"] == "ignored")
                    .then_some(())
                    .ok_or(format!("expected a recorded 'ignored' event, got {v}"))
            }),
            None,
        )],
        "schedule" => vec![
            mk(
                "schedule (poll tick, nothing tracked: round and stalled-run check)",
                Box::new(|_| json!({"kind": "poll-tick", "scheduledTime": "2026-11-27T08:00:00Z"})),
                expect_response(|v| {
                    (v["outcome"] == "polled")
                        .then_some(())
                        .ok_or(format!("expected 'polled', got {v}"))
                }),
                None,
            ),
            mk(
                "schedule (timer payload with a forged signature: rejected and recorded)",
                Box::new(|i| {
                    json!({"task": format!("bench-{i}"), "timer": "t1",
                        "schedule": format!("bench-{i}.t1"),
                        "scheduledTime": chrono::Utc::now().format("%Y-%m-%dT%H:%M:00Z").to_string(),
                        "signature": "0".repeat(64)})
                }),
                expect_response(|v| {
                    (v["outcome"] == "rejected")
                        .then_some(())
                        .ok_or(format!("expected 'rejected', got {v}"))
                }),
                None,
            ),
        ],
        other => vec![mk(
            other,
            Box::new(|i| json!({"bench": i})),
            Box::new(|_| Ok(())),
            Some("unknown function: a small JSON event, answer not checked"),
        )],
    })
}
