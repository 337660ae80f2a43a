//! Where the CLI's commands go: the local server over HTTP
//! (`--platform local`, [`Client`]) or the AWS platform directly with the
//! caller's own credentials (`--platform aws`, [`AwsBackend`]).
//!
//! Both answer in the API's shapes (runs as `run_json`, tasks redacted), so
//! the commands print the same way on either platform.

use crate::client::{Client, RunJson};
use anyhow::{anyhow, bail, Context, Result};
use crtask_aws::scheduler::{check_task_timers, ScheduleSettings, TimerSchedules};
use crtask_aws::{
    BuildLogs, CodeBuildBuilder, DynamoStore, ExecutorWindow, S3Contexts, SecretsManagerSecrets,
};
use crtask_core::domain::api::{QuickBuildRequest, TaskRunRequest, UploadResponse};
use crtask_core::domain::model::{
    BaseDependency, ContextSource, EventRecord, EventSource, RunFilter, RunStatus, Task,
};
use crtask_core::patch::continuous::PatchSchedule;
use crtask_core::ports::{Builder, Store, SystemClock};
use crtask_core::service;
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

pub use crate::settings::AwsSettings;

/// One timer setting: its flag, its environment variable and the stack
/// output that holds its value.
struct TimerSetting {
    flag: &'static str,
    env: &'static str,
    output: &'static str,
    get: fn(&AwsSettings) -> &Option<String>,
}

const SCHEDULE_GROUP: TimerSetting = TimerSetting {
    flag: "--aws-schedule-group",
    env: "CRTASK_AWS_SCHEDULE_GROUP",
    output: "ScheduleGroupName",
    get: |s| &s.schedule_group,
};
const SCHEDULE_TARGET: TimerSetting = TimerSetting {
    flag: "--aws-schedule-target",
    env: "CRTASK_AWS_SCHEDULE_TARGET",
    output: "ScheduleTargetArn",
    get: |s| &s.schedule_target,
};
const SCHEDULER_ROLE: TimerSetting = TimerSetting {
    flag: "--aws-scheduler-role",
    env: "CRTASK_AWS_SCHEDULER_ROLE",
    output: "SchedulerRoleArn",
    get: |s| &s.scheduler_role,
};
const SCHEDULE_SECRET: TimerSetting = TimerSetting {
    flag: "--aws-schedule-secret",
    env: "CRTASK_AWS_SCHEDULE_SECRET",
    output: "ScheduleSigningSecretArn",
    get: |s| &s.schedule_secret,
};

pub enum Backend {
    Http(Client),
    Aws(Box<AwsBackend>),
}

impl Backend {
    /// How often a follower asks whether a run has ended.
    pub fn poll_interval(&self) -> Duration {
        match self {
            Backend::Http(_) => Duration::from_millis(250),
            Backend::Aws(_) => AWS_POLL,
        }
    }

    pub async fn upload(
        &self,
        file: std::fs::File,
        len: u64,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<UploadResponse> {
        match self {
            Backend::Http(c) => c.upload(file, len, progress).await,
            Backend::Aws(a) => a.upload(file, len, progress).await,
        }
    }

    /// Checks a quick build before anything is uploaded for it (`uploads`:
    /// its context will be). The local server checks the request itself
    /// (only it knows its registry); on AWS the CLI is the API.
    pub async fn check_quick_build(&self, req: &QuickBuildRequest, uploads: bool) -> Result<()> {
        match self {
            Backend::Http(_) => Ok(()),
            Backend::Aws(a) => a.check_quick_build(req, uploads).await,
        }
    }

    pub async fn quick_build(&self, req: &QuickBuildRequest) -> Result<RunJson> {
        match self {
            Backend::Http(c) => c.quick_build(req).await,
            Backend::Aws(a) => a.quick_build(req).await,
        }
    }

    pub async fn patch(&self, req: &crtask_core::domain::api::PatchApiRequest) -> Result<RunJson> {
        match self {
            Backend::Http(c) => c.patch(req).await,
            Backend::Aws(a) => a.patch(req).await,
        }
    }

    pub async fn set_patch_config(
        &self,
        req: &crtask_core::domain::api::PatchConfigRequest,
    ) -> Result<serde_json::Value> {
        match self {
            Backend::Http(c) => c.set_patch_config(req).await,
            Backend::Aws(a) => a.set_patch_config(req).await,
        }
    }

    pub async fn patch_config(&self) -> Result<serde_json::Value> {
        match self {
            Backend::Http(c) => c.patch_config().await,
            Backend::Aws(a) => a.patch_config().await,
        }
    }

    pub async fn delete_patch_config(&self) -> Result<serde_json::Value> {
        match self {
            Backend::Http(c) => c.delete_patch_config().await,
            Backend::Aws(a) => a.delete_patch_config().await,
        }
    }

    pub async fn run(&self, id: &str) -> Result<RunJson> {
        match self {
            Backend::Http(c) => c.run(id).await,
            Backend::Aws(a) => a.run(id).await,
        }
    }

    /// A run's notifications (local server only: on AWS run state changes
    /// go to EventBridge, which keeps no delivery record here).
    pub async fn notifications(
        &self,
        id: &str,
    ) -> Result<Vec<crtask_core::notify::NotificationRecord>> {
        match self {
            Backend::Http(c) => c.notifications(id).await,
            Backend::Aws(_) => bail!(
                "notification deliveries are recorded by `crtask serve` only; on AWS each run state change is a `crtask Run State Change` event on the default EventBridge bus (see docs/NOTIFICATIONS.md)"
            ),
        }
    }

    pub async fn runs(
        &self,
        task: Option<&str>,
        status: Option<&str>,
        top: Option<usize>,
    ) -> Result<Vec<RunJson>> {
        match self {
            Backend::Http(c) => c.runs(task, status, top).await,
            Backend::Aws(a) => a.runs(task, status, top).await,
        }
    }

    pub async fn cancel(&self, id: &str) -> Result<RunJson> {
        match self {
            Backend::Http(c) => c.cancel(id).await,
            Backend::Aws(a) => a.cancel(id).await,
        }
    }

    /// Copies the run's log to `out`; with `follow`, until the run ends.
    pub async fn log(&self, id: &str, follow: bool, out: &mut (dyn Write + Send)) -> Result<()> {
        match self {
            Backend::Http(c) => c.log(id, follow, out).await,
            Backend::Aws(a) => a.log(id, follow, out).await,
        }
    }

    pub async fn events(&self, source: Option<&str>, top: usize) -> Result<Vec<EventRecord>> {
        match self {
            Backend::Http(c) => c.events(source, top).await,
            Backend::Aws(a) => a.events(source, top).await,
        }
    }

    pub async fn dependents(&self, image: &str) -> Result<Value> {
        match self {
            Backend::Http(c) => c.dependents(image).await,
            Backend::Aws(a) => Ok(service::dependents(a.store(), image).await?),
        }
    }

    pub async fn task_dependencies(&self, name: &str) -> Result<Vec<BaseDependency>> {
        match self {
            Backend::Http(c) => c.task_dependencies(name).await,
            Backend::Aws(a) => {
                a.task(name).await?;
                Ok(a.store().dependencies_of(name).await?)
            }
        }
    }

    pub async fn tasks(&self) -> Result<Vec<Task>> {
        match self {
            Backend::Http(c) => c.tasks().await,
            Backend::Aws(a) => Ok(a
                .store()
                .list_tasks()
                .await?
                .iter()
                .map(Task::redacted)
                .collect()),
        }
    }

    pub async fn task(&self, name: &str) -> Result<Task> {
        match self {
            Backend::Http(c) => c.task(name).await,
            Backend::Aws(a) => a.task(name).await,
        }
    }

    pub async fn create_task(&self, t: &Task) -> Result<Task> {
        match self {
            Backend::Http(c) => c.create_task(t).await,
            Backend::Aws(a) => {
                buildable_on_aws(t, &a.settings)?;
                // Everything the schedules need is checked before the task is stored.
                let schedules = a.timer_schedules(&t.name, t.timers.is_empty(), t).await?;
                let t = a.store_git_token(t.clone()).await?;
                let t = service::create_task(a.store(), &a.clock, t).await?;
                if let Some(s) = schedules {
                    a.sync(&s, None, Some(&t)).await?;
                }
                Ok(t.redacted())
            }
        }
    }

    pub async fn update_task(&self, t: &Task) -> Result<Task> {
        match self {
            Backend::Http(c) => c.update_task(t).await,
            Backend::Aws(a) => {
                buildable_on_aws(t, &a.settings)?;
                let old = a.store().get_task(&t.name).await?;
                let none = t.timers.is_empty() && old.as_ref().is_none_or(|o| o.timers.is_empty());
                let schedules = a.timer_schedules(&t.name, none, t).await?;
                let stored = a.store_git_token(t.clone()).await?;
                let t = service::update_task(a.store(), &a.clock, &t.name, stored).await?;
                if let Some(s) = schedules {
                    a.sync(&s, old.as_ref(), Some(&t)).await?;
                }
                Ok(t.redacted())
            }
        }
    }

    pub async fn delete_task(&self, name: &str) -> Result<()> {
        match self {
            Backend::Http(c) => c.delete_task(name).await,
            Backend::Aws(a) => {
                let old = a.store().get_task(name).await?;
                let schedules = match &old {
                    Some(o) if !o.timers.is_empty() => Some(a.timer_deleter(o)?),
                    _ => None,
                };
                if !a.store().delete_task(name).await? {
                    return Err(crtask_core::Error::not_found("task", name).into());
                }
                if let Some(s) = schedules {
                    a.sync(&s, old.as_ref(), None).await?;
                }
                // Its git token's secret goes with it.
                if let Some(secret) = old
                    .as_ref()
                    .and_then(|o| o.git_access_token.as_deref())
                    .and_then(crtask_aws::git_tokens::secret_of)
                {
                    if let Err(e) =
                        crtask_aws::secrets::delete_named(&a.secrets_client, secret).await
                    {
                        eprintln!("warning: task '{name}' is deleted, but its git token's secret {secret} is not: {e}");
                    }
                }
                Ok(())
            }
        }
    }

    pub async fn run_task(&self, name: &str, req: &TaskRunRequest) -> Result<RunJson> {
        match self {
            Backend::Http(c) => c.run_task(name, req).await,
            Backend::Aws(a) => a.run_task(name, req).await,
        }
    }
}

/// The AWS builder reads a git repository or an uploaded context, never a
/// directory on this machine.
/// Secret build arguments would have to reach CodeBuild as plaintext
/// environment overrides (readable by anyone who can read the build) or as
/// Secrets Manager references, which crtask does not create yet: refused.
fn no_secret_args_on_aws(args: &[crtask_core::domain::model::BuildArg]) -> Result<()> {
    if let Some(a) = args.iter().find(|a| a.secret) {
        bail!(
            "secret build argument '{}' cannot be used on AWS yet: the builder would receive it as a plaintext CodeBuild environment override; pass it as a normal --arg only if it is not secret, or build locally",
            a.name
        );
    }
    Ok(())
}

fn buildable_on_aws(t: &Task, settings: &AwsSettings) -> Result<()> {
    no_secret_args_on_aws(&t.build_args)?;
    if !t.notify.is_empty() {
        bail!(
            "--notify URLs are delivered by `crtask serve` only; on AWS every run state change is a `crtask Run State Change` event on the account's default EventBridge bus: route it with a rule (for example on detail.task) to SNS, a chatbot or an API destination"
        );
    }
    use crtask_core::domain::identity::{check, RolePolicy};
    let policy = match settings.task_role_path.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => RolePolicy::Under(p),
        None => RolePolicy::Unconfigured,
    };
    check(t.identity.as_deref(), policy)?;
    if let Ok(ContextSource::LocalDir { path }) = ContextSource::parse_task_context(&t.context) {
        bail!(
            "task context '{path}' is a local directory, which the AWS builder cannot read: use a git URL (#ref[:subdir]) or /dev/null (or `crtask build` to upload a directory)"
        );
    }
    Ok(())
}

/// The caller's AWS configuration (environment, `AWS_PROFILE`, SSO,
/// instance roles; `AWS_ENDPOINT_URL` for emulators) in `region` when one
/// is given (the profile's or `--aws-region`), else the configured one.
pub async fn sdk_config(region: Option<&str>) -> Result<aws_config::SdkConfig> {
    let mut loader = crtask_aws::config::loader();
    if let Some(r) = region.map(str::trim).filter(|r| !r.is_empty()) {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    let conf = loader.load().await;
    if conf.region().is_none() {
        bail!("no AWS region: set AWS_REGION (or AWS_PROFILE with a region), or run `crtask aws configure --stack NAME --region R`");
    }
    Ok(conf)
}

/// How often the AWS backend polls a run (DynamoDB) and its build log
/// (CloudWatch Logs).
const AWS_POLL: Duration = Duration::from_secs(2);

/// After the run ended without the executor's last line in the build's
/// stream: how many more times to read it, [`LATE_LINES_WAIT`] apart
/// (CloudWatch Logs can receive the last lines after the build ended).
const LATE_LINES_TRIES: u32 = 3;
const LATE_LINES_WAIT: Duration = Duration::from_secs(1);

/// The AWS platform, called directly: DynamoDB for tasks and runs,
/// CodeBuild to start builds, S3 for contexts and logs.
pub struct AwsBackend {
    store: Arc<DynamoStore>,
    s3: Option<S3Contexts>,
    builder: Option<CodeBuildBuilder>,
    /// The default registry: `--aws-registry` or the profile's, else read
    /// once from the builder project ([`Self::registry`]).
    registry: tokio::sync::OnceCell<Option<String>>,
    codebuild: aws_sdk_codebuild::Client,
    clock: SystemClock,
    settings: AwsSettings,
    scheduler: crtask_aws::scheduler::Client,
    secrets: SecretsManagerSecrets,
    secrets_client: aws_sdk_secretsmanager::Client,
    build_logs: Option<BuildLogs>,
}

impl AwsBackend {
    /// Loads the caller's AWS configuration (environment, `AWS_PROFILE`,
    /// SSO, instance roles; `AWS_ENDPOINT_URL` for emulators).
    pub async fn connect(settings: &AwsSettings) -> Result<AwsBackend> {
        let table = settings.table.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
            anyhow!("--platform aws needs the stack's settings: run `crtask aws configure --stack NAME` once (or set --aws-table or CRTASK_AWS_TABLE, the TableName output)")
        })?;
        let conf = sdk_config(settings.region.as_deref()).await?;
        let store = Arc::new(DynamoStore::new(crtask_aws::config::dynamodb(&conf), table));
        let bucket = settings.bucket.clone().filter(|b| !b.is_empty());
        let s3 = bucket
            .as_ref()
            .map(|b| S3Contexts::new(crtask_aws::config::s3(&conf), b.clone()));
        let registry = settings.registry.clone().filter(|r| !r.is_empty());
        let builder = settings
            .project
            .clone()
            .filter(|p| !p.is_empty())
            .map(|project| {
                let mut b = CodeBuildBuilder::new(
                    crtask_aws::config::codebuild(&conf),
                    store.clone(),
                    project,
                );
                if let Some(r) = &registry {
                    b = b.with_registry(r.clone());
                }
                if let Some(bk) = &bucket {
                    b = b.with_contexts_bucket(bk.clone());
                }
                if let Some(p) = settings.task_role_path.clone().filter(|p| !p.is_empty()) {
                    b = b.with_task_role_path(p);
                }
                b
            });
        Ok(AwsBackend {
            store,
            s3,
            builder,
            registry: tokio::sync::OnceCell::new_with(registry.map(Some)),
            codebuild: crtask_aws::config::codebuild(&conf),
            clock: SystemClock,
            settings: settings.clone(),
            scheduler: crtask_aws::config::scheduler(&conf),
            secrets: SecretsManagerSecrets::new(crtask_aws::config::secretsmanager(&conf)),
            secrets_client: crtask_aws::config::secretsmanager(&conf),
            build_logs: settings
                .log_group
                .clone()
                .filter(|g| !g.trim().is_empty())
                .map(|g| BuildLogs::new(crtask_aws::config::cloudwatchlogs(&conf), g)),
        })
    }

    /// A task whose `--git-access-token` was given: the token goes to
    /// Secrets Manager (`<stack>/git/<task>`) and the task keeps only a
    /// reference to it ([`crtask_aws::git_tokens`]). A masked token (an
    /// update that did not change it) or a reference is kept as it is.
    async fn store_git_token(&self, mut t: Task) -> Result<Task> {
        let Some(token) = t.git_access_token.clone() else {
            return Ok(t);
        };
        if token == crtask_core::domain::model::SECRET_MASK
            || crtask_aws::git_tokens::secret_of(&token).is_some()
        {
            return Ok(t);
        }
        let stack = self.settings.stack.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
            anyhow!("--git-access-token on AWS is kept in Secrets Manager as <stack>/git/<task>: set the stack's name (run `crtask aws configure --stack NAME`, or --aws-stack NAME)")
        })?;
        let reference = crtask_aws::git_tokens::put(&self.secrets_client, stack, &t.name, &token)
            .await
            .map_err(|e| anyhow!("cannot store the git access token: {e}"))?;
        t.git_access_token = Some(reference);
        Ok(t)
    }

    /// The value of a timer setting, or `None` when it is not given.
    fn setting(&self, which: &TimerSetting) -> Option<String> {
        (which.get)(&self.settings)
            .clone()
            .filter(|v| !v.trim().is_empty())
    }

    /// Every setting of `needed` that is not given, as the user can give it.
    fn missing(&self, needed: &[&TimerSetting]) -> Vec<String> {
        needed
            .iter()
            .filter(|n| self.setting(n).is_none())
            .map(|n| format!("{} (or {}; the stack output {})", n.flag, n.env, n.output))
            .collect()
    }

    /// Fails naming every setting of `needed` that is not given.
    fn require(&self, task: &str, needed: &[&TimerSetting]) -> Result<()> {
        let missing = self.missing(needed);
        if !missing.is_empty() {
            bail!(
                "the timers of task '{task}' are EventBridge Scheduler schedules on AWS: set {}",
                missing.join(", ")
            );
        }
        Ok(())
    }

    fn schedule_settings(&self) -> ScheduleSettings {
        ScheduleSettings {
            group: self.setting(&SCHEDULE_GROUP).unwrap_or_default(),
            target_arn: self.setting(&SCHEDULE_TARGET).unwrap_or_default(),
            role_arn: self.setting(&SCHEDULER_ROLE).unwrap_or_default(),
            dead_letter_arn: self
                .settings
                .schedule_dlq
                .clone()
                .filter(|d| !d.trim().is_empty()),
        }
    }

    /// The schedules client for saving `task` (`None` when neither it nor
    /// its previous version has timers: `no_timers`). Checks the settings,
    /// the crons and reads the signing key, all before anything is stored.
    async fn timer_schedules(
        &self,
        name: &str,
        no_timers: bool,
        task: &Task,
    ) -> Result<Option<TimerSchedules>> {
        if no_timers {
            return Ok(None);
        }
        self.require(
            name,
            &[
                &SCHEDULE_GROUP,
                &SCHEDULE_TARGET,
                &SCHEDULER_ROLE,
                &SCHEDULE_SECRET,
            ],
        )?;
        check_task_timers(task)?;
        let arn = self.setting(&SCHEDULE_SECRET).unwrap_or_default();
        let key = self.secrets.current(&arn).await.map_err(|e| {
            anyhow!("cannot read the schedule signing key (--aws-schedule-secret): {e}")
        })?;
        Ok(Some(TimerSchedules::new(
            self.scheduler.clone(),
            self.schedule_settings(),
            key,
        )))
    }

    /// The schedules client for deleting the timers of `task` (needs only
    /// the group).
    fn timer_deleter(&self, task: &Task) -> Result<TimerSchedules> {
        self.require(&task.name, &[&SCHEDULE_GROUP])?;
        Ok(TimerSchedules::new(
            self.scheduler.clone(),
            self.schedule_settings(),
            crtask_core::signing::Secret::new(""),
        ))
    }

    /// Makes the schedule group match the task; on failure says the task
    /// itself is saved and how to retry.
    async fn sync(&self, s: &TimerSchedules, old: Option<&Task>, new: Option<&Task>) -> Result<()> {
        let name = new.or(old).map(|t| t.name.as_str()).unwrap_or_default();
        match s.sync_task_timers(old, new).await {
            Ok(report) => {
                print_sync_report(name, &report);
                Ok(())
            }
            Err(e) if new.is_some() => Err(anyhow!(
                "task '{name}' is saved, but its timer schedules are not: {e} (fix the cause, then run `crtask --platform aws task update --name {name}` to retry)"
            )),
            Err(e) => Err(anyhow!(
                "task '{name}' is deleted, but its timer schedules are not: {e} (delete them in schedule group '{}')",
                s.settings().group
            )),
        }
    }

    fn store(&self) -> &DynamoStore {
        &self.store
    }

    fn s3(&self) -> Result<&S3Contexts> {
        self.s3.as_ref().ok_or_else(|| {
            anyhow!("this needs the stack's bucket: set --aws-bucket or CRTASK_AWS_BUCKET (the BucketName output)")
        })
    }

    fn builder(&self) -> Result<&CodeBuildBuilder> {
        self.builder.as_ref().ok_or_else(|| {
            anyhow!("starting or canceling runs needs the stack's CodeBuild project: set --aws-project or CRTASK_AWS_PROJECT (the CodeBuildProject output)")
        })
    }

    async fn task(&self, name: &str) -> Result<Task> {
        Ok(self
            .store
            .get_task(name)
            .await?
            .ok_or_else(|| crtask_core::Error::not_found("task", name))?
            .redacted())
    }

    async fn get_run(&self, id: &str) -> Result<crtask_core::domain::model::Run> {
        Ok(self
            .store
            .get_run(id)
            .await?
            .ok_or_else(|| crtask_core::Error::not_found("run", id))?)
    }

    /// Stores the tarball as `contexts/<id>.tar.gz` in the bucket.
    async fn upload(
        &self,
        file: std::fs::File,
        len: u64,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<UploadResponse> {
        let s3 = self.s3()?;
        let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let (mut file, mut buf) = (file, Vec::new());
            std::io::Read::read_to_end(&mut file, &mut buf)?;
            Ok(buf)
        })
        .await?
        .context("cannot read the packed context")?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let id = format!("ctx-{nanos:x}-{:x}", std::process::id());
        s3.put_context(&id, bytes).await?;
        progress(len);
        Ok(UploadResponse {
            id,
            files: 0,
            bytes: len,
        })
    }

    /// Warns when CodeBuild did not take the run (it stays queued).
    fn queued(&self, run: &crtask_core::domain::model::Run) -> RunJson {
        if let Some(e) = &run.error {
            eprintln!(
                "warning: run {} is recorded but not started: {e}",
                run.run_id
            );
        }
        service::run_json(run)
    }

    /// The registry unqualified image names go to: `--aws-registry` or the
    /// profile's, else the builder project's `CRTASK_REGISTRY` (read once;
    /// when it cannot be read, a warning and none).
    async fn registry(&self) -> Option<&str> {
        self.registry
            .get_or_init(|| async {
                let project = self.settings.project.as_deref().filter(|p| !p.is_empty())?;
                match crtask_aws::stack::project_registry(&self.codebuild, project).await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("warning: cannot read the default registry from CodeBuild project {project}: {e} (set --aws-registry, or run `crtask aws configure`)");
                        None
                    }
                }
            })
            .await
            .as_deref()
    }

    /// Checks a quick build before its context is uploaded: the settings
    /// it needs and the request itself (its context still `None`).
    async fn check_quick_build(&self, req: &QuickBuildRequest, uploads: bool) -> Result<()> {
        no_secret_args_on_aws(&req.build_args)?;
        self.builder()?;
        if uploads {
            self.s3()?;
        }
        let mut probe = req.clone();
        probe.context = ContextSource::None;
        service::quick_build_spec(self.registry().await, chrono::Utc::now(), probe)?;
        Ok(())
    }

    async fn quick_build(&self, req: &QuickBuildRequest) -> Result<RunJson> {
        no_secret_args_on_aws(&req.build_args)?;
        let builder = self.builder()?;
        let run = service::quick_build(
            self.store(),
            builder,
            &self.clock,
            self.registry().await,
            req.clone(),
        )
        .await?;
        Ok(self.queued(&run))
    }

    /// A patch run: recorded, then handed to CodeBuild, whose `crtask exec`
    /// patches with buildah (`CRTASK_PATCH`).
    async fn patch(&self, req: &crtask_core::domain::api::PatchApiRequest) -> Result<RunJson> {
        let builder = self.builder()?;
        let run = crtask_core::patch::queue::queue_patch(
            self.store(),
            builder,
            &self.clock,
            self.registry().await,
            req,
        )
        .await?;
        Ok(self.queued(&run))
    }

    /// The schedules client for continuous patching (its settings checked).
    fn patch_schedules(&self, needed: &[&TimerSetting]) -> Result<TimerSchedules> {
        let missing = self.missing(needed);
        if !missing.is_empty() {
            bail!(
                "continuous patching is an EventBridge Scheduler schedule on AWS: set {} (or run `crtask aws configure --stack NAME`)",
                missing.join(", ")
            );
        }
        Ok(TimerSchedules::new(
            self.scheduler.clone(),
            self.schedule_settings(),
            crtask_core::signing::Secret::new(""),
        ))
    }

    /// Stores the configuration (DynamoDB), then creates or updates its
    /// schedule; everything is checked before the first write.
    async fn set_patch_config(
        &self,
        req: &crtask_core::domain::api::PatchConfigRequest,
    ) -> Result<Value> {
        if self.registry().await.is_none() {
            bail!("continuous patching needs the stack's registry: set --aws-registry (or run `crtask aws configure --stack NAME`)");
        }
        let now = chrono::Utc::now();
        let schedule = PatchSchedule::from_request(req, now)?;
        let schedules =
            self.patch_schedules(&[&SCHEDULE_GROUP, &SCHEDULE_TARGET, &SCHEDULER_ROLE])?;
        self.store.put_patch_schedule(&schedule).await?;
        schedules.put_patch_schedule(&schedule).await.map_err(|e| {
            anyhow!("the configuration is saved, but its schedule is not: {e} (fix the cause and run the command again)")
        })?;
        Ok(schedule.describe(now))
    }

    async fn patch_config(&self) -> Result<Value> {
        match self.store.patch_schedule().await? {
            Some(s) => Ok(s.describe(chrono::Utc::now())),
            None => Err(crtask_core::Error::not_found(
                "continuous patching configuration",
                "default",
            )
            .into()),
        }
    }

    /// Deletes the schedule, then the configuration.
    async fn delete_patch_config(&self) -> Result<Value> {
        let schedules = self.patch_schedules(&[&SCHEDULE_GROUP])?;
        let scheduled = schedules.delete_patch_schedule().await?;
        let stored = self.store.delete_patch_schedule().await?;
        if !scheduled && !stored {
            return Err(crtask_core::Error::not_found(
                "continuous patching configuration",
                "default",
            )
            .into());
        }
        Ok(serde_json::json!({"deleted": true}))
    }

    async fn run_task(&self, name: &str, req: &TaskRunRequest) -> Result<RunJson> {
        let builder = self.builder()?;
        let run = service::run_task(
            self.store(),
            builder,
            &self.clock,
            self.registry().await,
            name,
            &req.values,
        )
        .await?;
        Ok(self.queued(&run))
    }

    async fn run(&self, id: &str) -> Result<RunJson> {
        Ok(service::run_json(&self.get_run(id).await?))
    }

    async fn runs(
        &self,
        task: Option<&str>,
        status: Option<&str>,
        top: Option<usize>,
    ) -> Result<Vec<RunJson>> {
        let status = status.map(str::parse::<RunStatus>).transpose()?;
        let runs = self
            .store
            .list_runs(&RunFilter {
                task: task.map(str::to_string),
                status,
                top,
            })
            .await?;
        Ok(runs.iter().map(service::run_json).collect())
    }

    async fn cancel(&self, id: &str) -> Result<RunJson> {
        let run = self.get_run(id).await?;
        if run.status.is_terminal() {
            bail!("run {id} has already finished ({})", run.status);
        }
        self.builder()?.cancel(id).await?;
        self.run(id).await
    }

    /// The run's log. With `follow` and a run in progress: with the log
    /// group set, streams the executor's lines from the build's CloudWatch
    /// Logs stream as they come until the run ends ([`Self::stream`]);
    /// without it, waits (polling the run) until the run ended. Then, unless
    /// lines were streamed, prints the log from S3 (`logs/<run>.log`, which
    /// the buildspec uploads in `post_build`, when the build ends).
    async fn log(&self, id: &str, follow: bool, out: &mut (dyn Write + Send)) -> Result<()> {
        let mut run = self.get_run(id).await?;
        if follow && !run.status.is_terminal() {
            match &self.build_logs {
                Some(logs) => {
                    if self.stream(logs, &mut run, out).await? {
                        return Ok(());
                    }
                }
                None => {
                    eprintln!(
                        "Waiting for run {id} ({}) to end: the builder uploads its log when the build ends (set --aws-log-group to see it live)",
                        run.status
                    );
                    while !run.status.is_terminal() {
                        tokio::time::sleep(AWS_POLL).await;
                        match self.store.get_run(id).await? {
                            Some(r) => run = r,
                            None => break,
                        }
                    }
                }
            }
        }
        let s3 = self.s3()?;
        let where_ = format!("s3://{}/{}", s3.bucket(), crtask_aws::s3::log_key(id));
        match s3.get_log(id, 0).await {
            Ok(Some(log)) => {
                out.write_all(&log)?;
                out.flush()?;
            }
            Ok(None) => {
                eprintln!("note: run {id} has no log yet ({where_})");
                self.point_at_build_log(&run);
            }
            // Without s3:ListBucket, S3 answers a missing key with 403.
            Err(crtask_aws::Error::S3 { message, .. }) if message.contains("AccessDenied") => {
                eprintln!("note: run {id} has no readable log ({where_}: access denied: missing, or not readable with your credentials)");
                self.point_at_build_log(&run);
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Says where the build's whole log is (CodeBuild's phases included),
    /// when the log group is known and the run has a build.
    fn point_at_build_log(&self, run: &crtask_core::domain::model::Run) {
        if let (Some(logs), Some(build)) = (&self.build_logs, run.builder_ref.as_deref()) {
            eprintln!(
                "note: the build's own log is in CloudWatch Logs group {}, stream {}",
                logs.group(),
                crtask_aws::logs::stream_name(build)
            );
        }
    }

    /// Streams the executor's lines of `run`'s build (its CloudWatch Logs
    /// stream, polled every [`AWS_POLL`]) to `out` until the run ends,
    /// keeping `run` current. CodeBuild's phase lines and the buildspec's
    /// own commands are left out ([`ExecutorWindow`]): what is shown is
    /// what `crtask exec` printed, the run log with secrets masked.
    ///
    /// True when lines were streamed (the run's log was shown); false when
    /// none were (the build never reached the executor, the stream is
    /// gone, or it could not be read), and the caller prints the S3 log.
    async fn stream(
        &self,
        logs: &BuildLogs,
        run: &mut crtask_core::domain::model::Run,
        out: &mut (dyn Write + Send),
    ) -> Result<bool> {
        let id = run.run_id.clone();
        eprintln!(
            "Waiting for run {id} ({}): its build log streams here from CloudWatch Logs group {} as the build runs",
            run.status,
            logs.group()
        );
        let mut window = ExecutorWindow::new(&id);
        let mut token: Option<String> = None;
        let mut late_tries = 0;
        loop {
            let ended = run.status.is_terminal();
            if let Some(build) = run.builder_ref.as_deref() {
                match logs.next(build, token.clone()).await {
                    Ok((lines, next)) => {
                        token = next;
                        for line in lines.iter().filter(|l| window.accept(l)) {
                            writeln!(out, "{line}")?;
                        }
                        out.flush()?;
                    }
                    Err(e) => {
                        if window.opened() {
                            eprintln!("warning: the live log stopped: {e}; the run's whole log follows when the build ends");
                        } else {
                            eprintln!("warning: cannot stream the build log: {e}; the run's log follows when the build ends");
                        }
                        while !run.status.is_terminal() {
                            tokio::time::sleep(AWS_POLL).await;
                            match self.store.get_run(&id).await? {
                                Some(r) => *run = r,
                                None => break,
                            }
                        }
                        return Ok(false);
                    }
                }
            }
            if ended {
                // The last lines can reach CloudWatch Logs after the build ended.
                if window.opened() && !window.closed() && late_tries < LATE_LINES_TRIES {
                    late_tries += 1;
                    tokio::time::sleep(LATE_LINES_WAIT).await;
                    continue;
                }
                return Ok(window.opened());
            }
            tokio::time::sleep(AWS_POLL).await;
            match self.store.get_run(&id).await? {
                Some(r) => *run = r,
                None => return Ok(window.opened()),
            }
        }
    }

    async fn events(&self, source: Option<&str>, top: usize) -> Result<Vec<EventRecord>> {
        let source = source.map(str::parse::<EventSource>).transpose()?;
        Ok(self.store.list_events(source, top).await?)
    }
}

/// Says on stderr which schedules a sync created, updated or deleted.
fn print_sync_report(task: &str, r: &crtask_aws::scheduler::SyncReport) {
    for (what, names) in [
        ("created", &r.created),
        ("updated", &r.updated),
        ("deleted", &r.deleted),
    ] {
        if !names.is_empty() {
            eprintln!(
                "Timer schedules of task {task} {what}: {}",
                names.join(", ")
            );
        }
    }
}
