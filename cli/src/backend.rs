//! Where the CLI's commands go: the local server over HTTP
//! (`--platform local`, [`Client`]) or the AWS platform directly with the
//! caller's own credentials (`--platform aws`, [`AwsBackend`]).
//!
//! Both answer in the API's shapes (runs as `run_json`, tasks redacted), so
//! the commands print the same way on either platform.

use crate::client::{Client, RunJson};
use anyhow::{anyhow, bail, Context, Result};
use crtask_aws::{CodeBuildBuilder, DynamoStore, S3Contexts};
use crtask_core::api::{QuickBuildRequest, TaskRunRequest, UploadResponse};
use crtask_core::model::{
    BaseDependency, ContextSource, EventRecord, EventSource, RunFilter, RunStatus, Task,
};
use crtask_core::ports::{Builder, Store, SystemClock};
use crtask_core::service;
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// The AWS stack the CLI talks to (the stack's outputs).
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// `TableName`.
    pub table: Option<String>,
    /// `BucketName`: uploaded contexts and run logs.
    pub bucket: Option<String>,
    /// `CodeBuildProject`.
    pub project: Option<String>,
    /// The registry unqualified image names are pushed to (default: the
    /// project's `CRTASK_REGISTRY`).
    pub registry: Option<String>,
}

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

    pub async fn quick_build(&self, req: &QuickBuildRequest) -> Result<RunJson> {
        match self {
            Backend::Http(c) => c.quick_build(req).await,
            Backend::Aws(a) => a.quick_build(req).await,
        }
    }

    pub async fn run(&self, id: &str) -> Result<RunJson> {
        match self {
            Backend::Http(c) => c.run(id).await,
            Backend::Aws(a) => a.run(id).await,
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
                buildable_on_aws(t)?;
                let t = service::create_task(a.store(), &a.clock, t.clone()).await?;
                Ok(t.redacted())
            }
        }
    }

    pub async fn update_task(&self, t: &Task) -> Result<Task> {
        match self {
            Backend::Http(c) => c.update_task(t).await,
            Backend::Aws(a) => {
                buildable_on_aws(t)?;
                let t = service::update_task(a.store(), &a.clock, &t.name, t.clone()).await?;
                Ok(t.redacted())
            }
        }
    }

    pub async fn delete_task(&self, name: &str) -> Result<()> {
        match self {
            Backend::Http(c) => c.delete_task(name).await,
            Backend::Aws(a) => {
                if !a.store().delete_task(name).await? {
                    return Err(crtask_core::Error::not_found("task", name).into());
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
fn buildable_on_aws(t: &Task) -> Result<()> {
    if let Ok(ContextSource::LocalDir { path }) = ContextSource::parse_task_context(&t.context) {
        bail!(
            "task context '{path}' is a local directory, which the AWS builder cannot read: use a git URL (#ref[:subdir]) or /dev/null (or `crtask build` to upload a directory)"
        );
    }
    Ok(())
}

/// How often the AWS backend polls a run (DynamoDB) and its log (S3).
const AWS_POLL: Duration = Duration::from_secs(2);

/// The AWS platform, called directly: DynamoDB for tasks and runs,
/// CodeBuild to start builds, S3 for contexts and logs.
pub struct AwsBackend {
    store: Arc<DynamoStore>,
    s3: Option<S3Contexts>,
    builder: Option<CodeBuildBuilder>,
    registry: Option<String>,
    clock: SystemClock,
}

impl AwsBackend {
    /// Loads the caller's AWS configuration (environment, `AWS_PROFILE`,
    /// SSO, instance roles; `AWS_ENDPOINT_URL` for emulators).
    pub async fn connect(settings: &AwsSettings) -> Result<AwsBackend> {
        let table = settings.table.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
            anyhow!("--platform aws needs the stack's table: set --aws-table or CRTASK_AWS_TABLE (the TableName output)")
        })?;
        let conf = crtask_aws::config::load(None).await;
        if conf.region().is_none() {
            bail!("no AWS region: set AWS_REGION (or AWS_PROFILE with a region)");
        }
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
                b
            });
        Ok(AwsBackend {
            store,
            s3,
            builder,
            registry,
            clock: SystemClock,
        })
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

    async fn get_run(&self, id: &str) -> Result<crtask_core::model::Run> {
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
    fn queued(&self, run: &crtask_core::model::Run) -> RunJson {
        if let Some(e) = &run.error {
            eprintln!(
                "warning: run {} is recorded but not started: {e}",
                run.run_id
            );
        }
        service::run_json(run)
    }

    async fn quick_build(&self, req: &QuickBuildRequest) -> Result<RunJson> {
        let builder = self.builder()?;
        let run = service::quick_build(
            self.store(),
            builder,
            &self.clock,
            self.registry.as_deref(),
            req.clone(),
        )
        .await?;
        Ok(self.queued(&run))
    }

    async fn run_task(&self, name: &str, req: &TaskRunRequest) -> Result<RunJson> {
        let builder = self.builder()?;
        let run = service::run_task(
            self.store(),
            builder,
            &self.clock,
            self.registry.as_deref(),
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

    /// The run's log from S3 (`logs/<run>.log`, which the buildspec uploads
    /// in `post_build`, when the build ends); with `follow`, first waits
    /// (polling the run) until the run has ended.
    async fn log(&self, id: &str, follow: bool, out: &mut (dyn Write + Send)) -> Result<()> {
        let mut run = self.get_run(id).await?;
        let s3 = self.s3()?;
        let mut told = false;
        while follow && !run.status.is_terminal() {
            if !told {
                eprintln!(
                    "Waiting for run {id} ({}): the builder uploads its log when the build ends",
                    run.status
                );
                told = true;
            }
            tokio::time::sleep(AWS_POLL).await;
            match self.store.get_run(id).await? {
                Some(r) => run = r,
                None => break,
            }
        }
        let where_ = format!("s3://{}/{}", s3.bucket(), crtask_aws::s3::log_key(id));
        match s3.get_log(id, 0).await {
            Ok(Some(log)) => {
                out.write_all(&log)?;
                out.flush()?;
            }
            Ok(None) => eprintln!("note: run {id} has no log yet ({where_})"),
            // Without s3:ListBucket, S3 answers a missing key with 403.
            Err(crtask_aws::Error::S3 { message, .. }) if message.contains("AccessDenied") => {
                eprintln!("note: run {id} has no readable log ({where_}: access denied: missing, or not readable with your credentials)")
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    async fn events(&self, source: Option<&str>, top: usize) -> Result<Vec<EventRecord>> {
        let source = source.map(str::parse::<EventSource>).transpose()?;
        Ok(self.store.list_events(source, top).await?)
    }
}
