//! The CodeBuild builder: each run is one `StartBuild` on one project.
//!
//! The request is computed by a pure function, [`start_build_request`], so
//! it can be checked without AWS. Run metadata travels only as
//! `environmentVariablesOverride` entries (`PLAINTEXT`), never inside
//! buildspec text; the project's buildspec runs `crtask exec`, which reads
//! them. Where the source comes from:
//!
//! | run context | source type | location | version |
//! |---|---|---|---|
//! | git on github.com / gitlab.com / bitbucket.org | `GITHUB` / `GITLAB` / `BITBUCKET` | the repository URL | the commit (else the context's ref) |
//! | git elsewhere | `NO_SOURCE` | - | - (`crtask exec` clones `CRTASK_GIT_URL` at `CRTASK_COMMIT`/`CRTASK_GIT_REF`) |
//! | uploaded context | `NO_SOURCE` | - | - (the buildspec copies `CRTASK_CONTEXT_OBJECT`, `s3://<bucket>/contexts/<id>.tar.gz`) |
//! | none (`/dev/null`) | `NO_SOURCE` | - | - |
//!
//! A local directory cannot be built on AWS. Secret build arguments are not
//! sent (a plaintext override is visible to anyone who can read the build).

use crate::config::Lazy;
use crate::error::{Error, Result};
use crate::s3::context_key;
use async_trait::async_trait;
use aws_sdk_codebuild::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codebuild::types::{
    EnvironmentType, EnvironmentVariable, EnvironmentVariableType, SourceType,
};
use aws_sdk_codebuild::Client;
use crtask_core::domain::model::{ContextSource, Run, RunStatus, Trigger};
use crtask_core::ports::{Builder, Clock, Store, SystemClock};
use crtask_core::Error as CoreError;
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

mod fanout;
pub use fanout::{
    assemble_start_request, platform_start_request, ARM_ENVIRONMENT, X86_ENVIRONMENT,
};

/// CodeBuild's allowed build timeouts, minutes.
pub const TIMEOUT_MINUTES: std::ops::RangeInclusive<i32> = 5..=2160;

/// A `StartBuild` request as crtask computes it (mirrors the API's fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartBuildRequest {
    pub project_name: String,
    /// Derived from the project and run id: a retried dispatch within
    /// CodeBuild's five-minute window starts no second build.
    pub idempotency_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_type_override: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_location_override: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// `PLAINTEXT` environment overrides, in a stable order.
    pub environment_variables_override: Vec<(String, String)>,
    pub privileged_mode_override: bool,
    pub timeout_in_minutes_override: i32,
    /// The task's role (`--assign-identity`): the build runs with it
    /// instead of the project's service role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_role_override: Option<String>,
    /// A platform build of a multi-platform run ([`platform_start_request`]):
    /// the machine kind (`ARM_CONTAINER` for arm64) and its image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_type_override: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_override: Option<String>,
}

impl StartBuildRequest {
    /// The value of one environment override.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.environment_variables_override
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The git hosts CodeBuild can fetch from itself, by source type.
fn git_source_type(url: &str) -> Option<&'static str> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .or_else(|| url.strip_prefix("git@"))?;
    let host = rest
        .split(['/', ':'])
        .next()?
        .rsplit('@')
        .next()?
        .to_ascii_lowercase();
    match host.as_str() {
        "github.com" => Some("GITHUB"),
        "gitlab.com" => Some("GITLAB"),
        "bitbucket.org" => Some("BITBUCKET"),
        _ => None,
    }
}

/// Computes the `StartBuild` request for `run` on `project`. `registry` is
/// the registry images are pushed to (`CRTASK_REGISTRY`); `contexts_bucket`
/// holds uploaded contexts.
pub fn start_build_request(
    run: &Run,
    project: &str,
    registry: Option<&str>,
    contexts_bucket: Option<&str>,
) -> crtask_core::Result<StartBuildRequest> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| env.push((k.to_string(), v.to_string()));
    set("CRTASK_RUN_ID", &run.run_id);
    // {{.Run.Date}} is the run's creation time, on every platform.
    set(
        "CRTASK_RUN_DATE",
        &crtask_core::domain::time::rfc3339(run.create_time),
    );
    set("CRTASK_RUN_TYPE", run.run_type.as_str());
    set("CRTASK_TRIGGER", run.trigger.kind());
    if let Some(task) = &run.task {
        set("CRTASK_TASK", task);
    }
    let (commit, branch) = match &run.trigger {
        Trigger::Commit {
            commit,
            branch,
            repository,
        } => {
            set("CRTASK_REPOSITORY", repository);
            (Some(commit.as_str()), Some(branch.as_str()))
        }
        Trigger::PullRequest {
            number,
            commit,
            branch,
            repository,
        } => {
            set("CRTASK_PULL_REQUEST", &number.to_string());
            if let Some(r) = repository {
                set("CRTASK_REPOSITORY", r);
            }
            (Some(commit.as_str()), Some(branch.as_str()))
        }
        Trigger::ImageUpdate {
            image, new_digest, ..
        } => {
            set("CRTASK_BASE_IMAGE", image);
            set("CRTASK_BASE_DIGEST", new_digest);
            (None, None)
        }
        Trigger::Timer { timer_name, .. } => {
            set("CRTASK_TIMER", timer_name);
            (None, None)
        }
        Trigger::Patch { .. } => (None, None),
        Trigger::Manual => (None, None),
    };
    if let Some(c) = commit {
        set("CRTASK_COMMIT", c);
    }
    if let Some(b) = branch {
        set("CRTASK_BRANCH", b);
    }
    if let Some(r) = registry {
        set("CRTASK_REGISTRY", r);
    }
    set("CRTASK_PLATFORM", &run.platform);
    set("CRTASK_FILE", &run.spec.file);
    set("CRTASK_PUSH", if run.spec.push { "true" } else { "false" });

    let source_type;
    let (mut location, mut version) = (None, None);
    match &run.spec.context {
        ContextSource::None => {
            set("CRTASK_CONTEXT_KIND", "none");
            source_type = Some("NO_SOURCE");
        }
        ContextSource::Git {
            url,
            reference,
            subdir,
        } => {
            set("CRTASK_CONTEXT_KIND", "git");
            set("CRTASK_GIT_URL", url);
            if let Some(r) = reference {
                set("CRTASK_GIT_REF", r);
            }
            if let Some(d) = subdir {
                set("CRTASK_CONTEXT_SUBDIR", d);
            }
            // With a token of the task's own, crtask exec clones with it;
            // CodeBuild's source credentials are the account's.
            let own_token = run.spec.git_access_token.is_some();
            match git_source_type(url).filter(|_| !own_token) {
                Some(t) => {
                    source_type = Some(t);
                    location = Some(url.clone());
                    version = commit.map(str::to_string).or_else(|| reference.clone());
                }
                None => source_type = Some("NO_SOURCE"),
            }
        }
        ContextSource::Uploaded { id } => {
            let bucket = contexts_bucket.ok_or_else(|| {
                CoreError::invalid(format!(
                    "run {} has an uploaded context but no context bucket is configured",
                    run.run_id
                ))
            })?;
            set("CRTASK_CONTEXT_KIND", "uploaded");
            let key = context_key(id);
            set("CRTASK_CONTEXT_OBJECT", &format!("s3://{bucket}/{key}"));
            // Not an `S3` source: CodeBuild unpacks those as zip archives,
            // and contexts are tar.gz (as `docker build -` takes them). The
            // buildspec copies the object itself with the builder role.
            source_type = Some("NO_SOURCE");
        }
        ContextSource::LocalDir { path } => {
            return Err(CoreError::invalid(format!(
                "run {}: a local directory context ({path}) cannot be built on AWS: use a git URL or upload the context",
                run.run_id
            )));
        }
    }
    // The task's git token: only the name of its secret (the buildspec
    // reads it with the builder's role), never the value.
    if let Some(field) = &run.spec.git_access_token {
        let name = crate::git_tokens::secret_of(field).ok_or_else(|| {
            CoreError::invalid(format!(
                "run {} carries a git access token that is not stored in Secrets Manager: set it again with `crtask --platform aws task update --git-access-token`",
                run.run_id
            ))
        })?;
        set("CRTASK_GIT_TOKEN_SECRET", name);
    }
    // The spec without secrets (secret build arguments, the git access
    // token), for the executor.
    let mut spec = run.spec.clone();
    spec.build_args.retain(|a| !a.secret);
    spec.git_access_token = None;
    set(
        "CRTASK_SPEC",
        &serde_json::to_string(&spec).map_err(|e| CoreError::Builder(e.to_string()))?,
    );
    // A patch run: its request for `crtask exec`, which patches with buildah
    // (the override beats the buildspec's `CRTASK_ENGINE: docker`).
    if let Some(patch) = &run.patch {
        set(
            "CRTASK_PATCH",
            &serde_json::to_string(patch).map_err(|e| CoreError::Builder(e.to_string()))?,
        );
        set("CRTASK_ENGINE", "buildah");
    }
    let minutes = i32::try_from(run.spec.timeout.div_ceil(60))
        .unwrap_or(i32::MAX)
        .clamp(*TIMEOUT_MINUTES.start(), *TIMEOUT_MINUTES.end());
    Ok(StartBuildRequest {
        project_name: project.to_string(),
        idempotency_token: idempotency_token(project, &run.run_id),
        source_type_override: source_type.map(str::to_string),
        source_location_override: location,
        source_version: version,
        environment_variables_override: env,
        privileged_mode_override: true,
        timeout_in_minutes_override: minutes,
        service_role_override: run.spec.identity.clone(),
        environment_type_override: None,
        image_override: None,
    })
}

/// `crtask-<project>-<run id>`: unique per installation (each has its project).
pub fn idempotency_token(project: &str, run_id: &str) -> String {
    format!("crtask-{project}-{run_id}")
}

/// Retry schedule for throttled CodeBuild calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Calls in all, the first included.
    pub attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: 5,
            base: Duration::from_millis(500),
            max: Duration::from_secs(8),
        }
    }
}

impl Backoff {
    /// The wait after failed attempt `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        self.base
            .checked_mul(1u32.checked_shl(n).unwrap_or(u32::MAX))
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// Waits; a recording fake in tests.
#[async_trait]
pub trait Sleeper: Send + Sync {
    async fn sleep(&self, d: Duration);
}

/// Sleeps on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// Runs `op` until it succeeds, fails for a reason other than throttling,
/// or `policy.attempts` calls were made.
pub async fn with_backoff<T, F, Fut>(
    policy: &Backoff,
    sleeper: &dyn Sleeper,
    mut op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut n = 0;
    loop {
        match op().await {
            Err(Error::CodeBuild {
                retryable: true,
                op,
                message,
            }) => {
                n += 1;
                if n >= policy.attempts.max(1) {
                    return Err(Error::CodeBuild {
                        op,
                        message: format!("{message} (gave up after {n} attempts)"),
                        retryable: true,
                    });
                }
                tracing::warn!(op, %message, attempt = n, "codebuild throttled, retrying");
                sleeper.sleep(policy.delay(n - 1)).await;
            }
            other => return other,
        }
    }
}

/// True for the error codes worth retrying later: throttling and the
/// account's concurrent-build limit.
pub fn retryable_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "AccountLimitExceededException"
        )
    )
}

fn codebuild_error<E>(op: &'static str, e: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let retryable = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        _ => retryable_code(e.as_service_error().and_then(|s| s.code())),
    };
    let message = match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or("no message")
        ),
        None => crate::error::describe(&e),
    };
    Error::CodeBuild {
        op,
        message,
        retryable,
    }
}

/// Sends a computed request; returns the build id.
pub async fn send_start_build(client: &Client, req: &StartBuildRequest) -> Result<String> {
    let mut call = client
        .start_build()
        .project_name(&req.project_name)
        .idempotency_token(&req.idempotency_token)
        .privileged_mode_override(req.privileged_mode_override)
        .timeout_in_minutes_override(req.timeout_in_minutes_override)
        .set_source_version(req.source_version.clone())
        .set_service_role_override(req.service_role_override.clone())
        .set_source_location_override(req.source_location_override.clone());
    if let Some(t) = &req.source_type_override {
        call = call.source_type_override(SourceType::from(t.as_str()));
    }
    if let Some(t) = &req.environment_type_override {
        call = call.environment_type_override(EnvironmentType::from(t.as_str()));
    }
    if let Some(i) = &req.image_override {
        call = call.image_override(i);
    }
    for (k, v) in &req.environment_variables_override {
        call = call.environment_variables_override(
            EnvironmentVariable::builder()
                .name(k)
                .value(v)
                .r#type(EnvironmentVariableType::Plaintext)
                .build()
                .map_err(|e| Error::CodeBuild {
                    op: "StartBuild",
                    message: e.to_string(),
                    retryable: false,
                })?,
        );
    }
    let out = call
        .send()
        .await
        .map_err(|e| codebuild_error("StartBuild", e))?;
    out.build_value
        .and_then(|b| b.id)
        .ok_or_else(|| Error::CodeBuild {
            op: "StartBuild",
            message: "the answer names no build".into(),
            retryable: false,
        })
}

/// Runs on CodeBuild. See the module docs.
#[derive(Clone)]
pub struct CodeBuildBuilder {
    client: Lazy<Client>,
    store: Arc<dyn Store>,
    project: String,
    registry: Option<String>,
    contexts_bucket: Option<String>,
    /// `TaskRolePath`: the IAM path task roles must be under.
    task_role_path: Option<String>,
    backoff: Backoff,
    sleeper: Arc<dyn Sleeper>,
    clock: Arc<dyn Clock>,
}

impl CodeBuildBuilder {
    /// A builder starting builds of `project` for runs in `store`. Build the
    /// client with [`crate::config::codebuild`] (SDK retries off: this
    /// builder retries throttling itself).
    pub fn new(
        client: impl Into<Lazy<Client>>,
        store: Arc<dyn Store>,
        project: impl Into<String>,
    ) -> Self {
        CodeBuildBuilder {
            client: client.into(),
            store,
            project: project.into(),
            registry: None,
            contexts_bucket: None,
            task_role_path: None,
            backoff: Backoff::default(),
            sleeper: Arc::new(TokioSleeper),
            clock: Arc::new(SystemClock),
        }
    }

    /// The registry images are pushed to (`CRTASK_REGISTRY`).
    pub fn with_registry(mut self, registry: impl Into<String>) -> Self {
        self.registry = Some(registry.into());
        self
    }

    /// The bucket holding uploaded contexts.
    pub fn with_contexts_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.contexts_bucket = Some(bucket.into());
        self
    }

    /// The IAM path task roles must be under (the stack's `TaskRolePath`);
    /// without it a run naming a role is refused.
    pub fn with_task_role_path(mut self, path: impl Into<String>) -> Self {
        self.task_role_path = Some(path.into());
        self
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether the run's role (`--assign-identity`) may be passed.
    fn check_role(&self, run: &Run) -> crtask_core::Result<()> {
        use crtask_core::domain::identity::{check, RolePolicy};
        let policy = match &self.task_role_path {
            Some(p) => RolePolicy::Under(p),
            None => RolePolicy::Unconfigured,
        };
        check(run.spec.identity.as_deref(), policy)
    }

    /// The request [`Builder::dispatch`] sends for `run`.
    /// A run whose task names a role outside `TaskRolePath` is refused.
    pub fn request_for(&self, run: &Run) -> crtask_core::Result<StartBuildRequest> {
        self.check_role(run)?;
        start_build_request(
            run,
            &self.project,
            self.registry.as_deref(),
            self.contexts_bucket.as_deref(),
        )
    }
}

#[async_trait]
impl Builder for CodeBuildBuilder {
    /// Starts the build and records its id on the run (`builder_ref`). On
    /// failure (after retries) the error is returned and the run is left as
    /// it is: `queue::dispatch` keeps it `Queued` with the reason.
    async fn dispatch(&self, run_id: &str) -> crtask_core::Result<()> {
        let run = self
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| CoreError::not_found("run", run_id))?;
        if run.builder_ref.is_some() {
            return Ok(()); // dispatched already
        }
        if run.status.is_terminal() {
            return Err(CoreError::invalid(format!(
                "run {run_id} has already finished ({})",
                run.status
            )));
        }
        // A role the stack does not allow will not become allowed by
        // waiting: the run fails with the reason, and nothing is started.
        if let Err(e) = self.check_role(&run) {
            return self.refuse(run, e).await;
        }
        // Several platforms: one native build each, then the assemble build.
        if let Some(platforms) = crtask_core::build::fanout::platforms_of(&run.platform) {
            return self.dispatch_platforms(run, &platforms).await;
        }
        let req = self.request_for(&run)?;
        let build_id = with_backoff(&self.backoff, &*self.sleeper, || {
            send_start_build(&self.client, &req)
        })
        .await?;
        tracing::info!(run = run_id, build = %build_id, "codebuild build started");
        // Re-read: keep whatever changed meanwhile, add the build id.
        let mut run = self.store.get_run(run_id).await?.unwrap_or(run);
        run.builder_ref = Some(crtask_core::trigger::build_status::build_id(&build_id).to_string());
        if run
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("waiting for the builder"))
        {
            run.error = None;
        }
        self.store.update_run(&run).await
    }

    /// Stops the run's build (`StopBuild`) and records it `Canceled`; a
    /// queued run that never reached CodeBuild is just marked `Canceled`.
    async fn cancel(&self, run_id: &str) -> crtask_core::Result<bool> {
        let mut run = self
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| CoreError::not_found("run", run_id))?;
        if run.status.is_terminal() {
            return Ok(false);
        }
        match run.builder_ref.clone() {
            // A multi-platform run: every build still running.
            _ if !run.builds.is_empty() => {
                let running: Vec<String> = run
                    .builds
                    .iter()
                    .filter(|b| !b.status.is_terminal())
                    .filter_map(|b| b.builder_ref.clone())
                    .collect();
                self.stop_builds(&running).await;
                run.error = Some("canceled".into());
            }
            Some(build_id) => {
                with_backoff(&self.backoff, &*self.sleeper, || async {
                    self.client
                        .stop_build()
                        .id(crtask_core::trigger::build_status::build_id(&build_id))
                        .send()
                        .await
                        .map_err(|e| codebuild_error("StopBuild", e))
                })
                .await?;
                run.error = Some("canceled".into());
            }
            None if run.status == RunStatus::Queued => {
                run.error = Some("canceled before it started".into());
            }
            None => return Ok(false),
        }
        run.status = RunStatus::Canceled;
        run.finish_time = Some(self.clock.now());
        self.store.update_run(&run).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn git_hosts() {
        assert_eq!(
            git_source_type("https://github.com/a/b.git"),
            Some("GITHUB")
        );
        assert_eq!(git_source_type("git@github.com:a/b.git"), Some("GITHUB"));
        assert_eq!(
            git_source_type("https://user@GitLab.com/a/b"),
            Some("GITLAB")
        );
        assert_eq!(
            git_source_type("https://bitbucket.org/a/b"),
            Some("BITBUCKET")
        );
        assert_eq!(git_source_type("git://127.0.0.1/repo.git"), None);
        assert_eq!(git_source_type("https://github.com.evil.org/a"), None);
    }

    #[test]
    fn backoff_doubles_up_to_max() {
        let b = Backoff::default();
        let d: Vec<_> = (0..6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(d, [500, 1000, 2000, 4000, 8000, 8000]);
        assert_eq!(b.delay(40), b.max);
    }

    #[test]
    fn retryable_codes() {
        assert!(retryable_code(Some("ThrottlingException")));
        assert!(retryable_code(Some("AccountLimitExceededException")));
        assert!(!retryable_code(Some("InvalidInputException")));
        assert!(!retryable_code(None));
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Duration>>);

    #[async_trait]
    impl Sleeper for Recorder {
        async fn sleep(&self, d: Duration) {
            self.0.lock().unwrap().push(d);
        }
    }

    fn throttled() -> Error {
        Error::CodeBuild {
            op: "StartBuild",
            message: "ThrottlingException: slow down".into(),
            retryable: true,
        }
    }

    #[tokio::test]
    async fn retries_throttling_then_succeeds() {
        let sleeper = Recorder::default();
        let calls = Mutex::new(0);
        let r = with_backoff(&Backoff::default(), &sleeper, || {
            let n = {
                let mut c = calls.lock().unwrap();
                *c += 1;
                *c
            };
            async move {
                if n < 3 {
                    Err(throttled())
                } else {
                    Ok("build-1")
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(r, "build-1");
        assert_eq!(*calls.lock().unwrap(), 3);
        assert_eq!(
            *sleeper.0.lock().unwrap(),
            [Duration::from_millis(500), Duration::from_millis(1000)]
        );
    }

    #[tokio::test]
    async fn gives_up_after_the_bound_and_does_not_retry_other_errors() {
        let sleeper = Recorder::default();
        let calls = Mutex::new(0u32);
        let e = with_backoff(&Backoff::default(), &sleeper, || {
            *calls.lock().unwrap() += 1;
            async { Err::<(), _>(throttled()) }
        })
        .await
        .unwrap_err();
        assert_eq!(*calls.lock().unwrap(), 5);
        assert_eq!(sleeper.0.lock().unwrap().len(), 4);
        assert!(e.to_string().contains("gave up after 5 attempts"), "{e}");

        let calls = Mutex::new(0u32);
        let e = with_backoff(&Backoff::default(), &sleeper, || {
            *calls.lock().unwrap() += 1;
            async {
                Err::<(), _>(Error::CodeBuild {
                    op: "StartBuild",
                    message: "InvalidInputException: bad".into(),
                    retryable: false,
                })
            }
        })
        .await
        .unwrap_err();
        assert_eq!(*calls.lock().unwrap(), 1);
        assert!(matches!(
            e,
            Error::CodeBuild {
                retryable: false,
                ..
            }
        ));
    }
}
