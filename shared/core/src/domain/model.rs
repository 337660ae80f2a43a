//! Tasks and runs: the records users see (`-o json`) and the store keeps.

use crate::domain::time::serde_millis;
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Task-file template values (`{{.Values.x}}`): names to YAML scalars,
/// lists and maps, as a `--values` file holds them; `--set` gives strings.
pub type Values = BTreeMap<String, serde_json::Value>;

/// The lifecycle of a run (ACR's statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunStatus {
    Queued,
    Started,
    Running,
    Succeeded,
    Failed,
    Canceled,
    Error,
    Timeout,
}

impl RunStatus {
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Queued,
        RunStatus::Started,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Canceled,
        RunStatus::Error,
        RunStatus::Timeout,
    ];

    /// True once the run can change no more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded
                | RunStatus::Failed
                | RunStatus::Canceled
                | RunStatus::Error
                | RunStatus::Timeout
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "Queued",
            RunStatus::Started => "Started",
            RunStatus::Running => "Running",
            RunStatus::Succeeded => "Succeeded",
            RunStatus::Failed => "Failed",
            RunStatus::Canceled => "Canceled",
            RunStatus::Error => "Error",
            RunStatus::Timeout => "Timeout",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        RunStatus::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown run status '{s}' (expected one of: {})",
                    RunStatus::ALL.map(|v| v.as_str()).join(", ")
                ))
            })
    }
}

/// How a run came to be (ACR's run types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunType {
    QuickBuild,
    QuickRun,
    AutoBuild,
    AutoRun,
    /// An OS patch of a pushed image (`crtask patch`, continuous patching).
    Patch,
}

impl RunType {
    pub fn as_str(self) -> &'static str {
        match self {
            RunType::QuickBuild => "QuickBuild",
            RunType::QuickRun => "QuickRun",
            RunType::AutoBuild => "AutoBuild",
            RunType::AutoRun => "AutoRun",
            RunType::Patch => "Patch",
        }
    }
}

/// What started a run, with its details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum Trigger {
    Manual,
    Commit {
        commit: String,
        branch: String,
        repository: String,
    },
    PullRequest {
        number: u64,
        commit: String,
        branch: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repository: Option<String>,
    },
    ImageUpdate {
        image: String,
        #[serde(default)]
        old_digest: Option<String>,
        new_digest: String,
        /// What reported the update: a registry notification, a poll, or
        /// the run of an upstream task whose push it was (the cascade chain).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<String>,
    },
    Timer {
        timer_name: String,
        #[serde(with = "serde_millis")]
        scheduled_time: DateTime<Utc>,
    },
    /// Continuous patching's schedule (`crtask patch config set`).
    Patch {
        #[serde(with = "serde_millis")]
        scheduled_time: DateTime<Utc>,
    },
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Manual => "Manual",
            Trigger::Commit { .. } => "Commit",
            Trigger::PullRequest { .. } => "PullRequest",
            Trigger::ImageUpdate { .. } => "ImageUpdate",
            Trigger::Timer { .. } => "Timer",
            Trigger::Patch { .. } => "Patch",
        }
    }
}

/// An image a run pushed, with the digest the registry accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputImage {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    /// The pushed manifest; for a multi-platform build, the image index.
    pub digest: String,
    /// A multi-platform build's per-platform images inside the index
    /// (empty for a single-platform image).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformImage>,
}

/// One platform's image inside a pushed image index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformImage {
    /// `os/arch[/variant]`.
    pub platform: String,
    pub digest: String,
}

/// A base image a run built on, with the digest actually used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseImageUse {
    /// Normalised reference as written (after ARG expansion), e.g. `127.0.0.1:5000/base:1`.
    pub image: String,
    pub digest: String,
    /// True for the runtime base (the image behind the final stage).
    pub runtime: bool,
    /// For a multi-platform build, the platform this digest was used for
    /// (one entry per base and platform; `digest` is then that platform's
    /// manifest inside the base's index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// One step of a run as it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub id: String,
    pub status: RunStatus,
    #[serde(with = "serde_millis::option", default)]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(with = "serde_millis::option", default)]
    pub finish_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The steps this one waited for (its `when`, resolved): empty for a
    /// step that started at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<String>,
    /// Layers a build step reused from the layer cache and built anew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheUse>,
}

impl StepRecord {
    /// A step of a sequence (a quick build's, a patch's) starting at `now`:
    /// running, waiting for `previous` when there is one.
    pub fn next_in_sequence(id: &str, previous: Option<&StepRecord>, now: DateTime<Utc>) -> Self {
        StepRecord {
            id: id.to_string(),
            status: RunStatus::Running,
            start_time: Some(now),
            finish_time: None,
            exit_code: None,
            when: previous.map(|s| vec![s.id.clone()]).unwrap_or_default(),
            cache: None,
        }
    }
}

/// How a build step used the layer cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheUse {
    pub reused: u32,
    pub built: u32,
}

/// A build's layer-cache options (`--no-cache`, `--pull`, `--cache-repo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheOptions {
    /// Cache repository (`registry/repository`); default: `<image>/cache`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_cache: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pull: bool,
}

/// A build argument. `secret` values never appear in logs or listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildArg {
    pub name: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

impl BuildArg {
    /// Parses `K=V`. `K` alone is accepted only with a value supplied by the caller.
    pub fn parse(s: &str, secret: bool) -> Result<Self> {
        match s.split_once('=') {
            Some((k, v)) if valid_arg_name(k) => Ok(BuildArg {
                name: k.to_string(),
                value: v.to_string(),
                secret,
            }),
            Some((k, _)) => Err(Error::invalid(format!(
                "invalid build argument name '{k}': use letters, digits and '_'"
            ))),
            None => Err(Error::invalid(format!(
                "build argument '{s}' has no value: write NAME=VALUE"
            ))),
        }
    }
}

fn valid_arg_name(k: &str) -> bool {
    !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !k.starts_with(|c: char| c.is_ascii_digit())
}

/// Where a run's files come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ContextSource {
    /// No context (`/dev/null`): an empty directory.
    None,
    /// A tarball uploaded by the CLI, stored by the platform under this id.
    Uploaded { id: String },
    /// A directory on the machine running the server, read at each run.
    LocalDir { path: String },
    /// A git repository cloned at run time: `url#ref:subdir` (ACR syntax).
    Git {
        url: String,
        #[serde(default)]
        reference: Option<String>,
        #[serde(default)]
        subdir: Option<String>,
    },
}

impl ContextSource {
    /// Parses a task context as users write it: `/dev/null`, a git URL with
    /// optional `#ref[:subdir]`, or an absolute local directory.
    pub fn parse_task_context(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::invalid(
                "context is empty: give a directory, a git URL or /dev/null",
            ));
        }
        if s == "/dev/null" {
            return Ok(ContextSource::None);
        }
        if is_git_url(s) {
            let (url, frag) = match s.split_once('#') {
                Some((u, f)) => (u, Some(f)),
                None => (s, None),
            };
            let (reference, subdir) = match frag {
                None => (None, None),
                Some(f) => {
                    let (r, d) = match f.split_once(':') {
                        Some((r, d)) => (r, Some(d)),
                        None => (f, None),
                    };
                    let r = (!r.is_empty()).then(|| r.to_string());
                    let d = d.filter(|d| !d.is_empty()).map(|d| d.to_string());
                    if let Some(d) = &d {
                        if d.starts_with('/') || d.split('/').any(|c| c == "..") {
                            return Err(Error::invalid(format!(
                                "context subdirectory '{d}' must be relative and stay inside the repository"
                            )));
                        }
                    }
                    if let Some(r) = &r {
                        if r.starts_with('-')
                            || r.chars().any(|c| c.is_whitespace() || c.is_control())
                        {
                            return Err(Error::invalid(format!("invalid git reference '{r}'")));
                        }
                    }
                    (r, d)
                }
            };
            return Ok(ContextSource::Git {
                url: url.to_string(),
                reference,
                subdir,
            });
        }
        if !s.starts_with('/') {
            return Err(Error::invalid(format!(
                "context '{s}' is neither an absolute directory, a git URL nor /dev/null"
            )));
        }
        Ok(ContextSource::LocalDir {
            path: s.to_string(),
        })
    }
}

/// True for the git URL forms ACR accepts as a context (any URL, or `git@host:path`).
pub fn is_git_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    ["git://", "ssh://", "git@", "https://", "http://", "file://"]
        .iter()
        .any(|p| lower.starts_with(p))
}

/// The base-image trigger type of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum BaseImageTriggerType {
    /// Only the runtime base (the final stage's image) triggers.
    #[default]
    Runtime,
    /// Runtime and build-time bases trigger.
    All,
}

impl FromStr for BaseImageTriggerType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "runtime" => Ok(Self::Runtime),
            "all" => Ok(Self::All),
            _ => Err(Error::invalid(format!(
                "unknown base image trigger type '{s}' (expected Runtime or All)"
            ))),
        }
    }
}

/// A named cron timer of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimerTrigger {
    pub name: String,
    pub schedule: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

fn default_file() -> String {
    "Dockerfile".to_string()
}

fn default_timeout() -> u64 {
    DEFAULT_TASK_TIMEOUT
}

/// Default run timeout of a task, seconds (ACR: 3600).
pub const DEFAULT_TASK_TIMEOUT: u64 = 3600;
/// Allowed run timeouts, seconds (ACR: 300-28800).
pub const TASK_TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 300..=28800;

/// A stored task definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub name: String,
    /// As the user wrote it: directory, git URL (`#ref:subdir`), or `/dev/null`.
    pub context: String,
    /// Dockerfile (or task file) path inside the context.
    #[serde(default = "default_file")]
    pub file: String,
    /// Image tags (templates such as `app:{{.Run.ID}}`).
    #[serde(default)]
    pub images: Vec<String>,
    /// Tracked branch (default: the repository's `main`).
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default = "yes")]
    pub commit_trigger_enabled: bool,
    #[serde(default)]
    pub pull_request_trigger_enabled: bool,
    /// Build tag pushes too (off by default).
    #[serde(default)]
    pub tag_trigger_enabled: bool,
    /// Push the images a pull-request run builds (off by default: PR runs
    /// build only, and never get secret build arguments).
    #[serde(default)]
    pub pull_request_push_enabled: bool,
    #[serde(default = "yes")]
    pub base_image_trigger_enabled: bool,
    #[serde(default)]
    pub base_image_trigger_type: BaseImageTriggerType,
    #[serde(default)]
    pub timers: Vec<TimerTrigger>,
    #[serde(default)]
    pub build_args: Vec<BuildArg>,
    #[serde(default)]
    pub values: Values,
    #[serde(default)]
    pub path_filters: Vec<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default = "yes")]
    pub push: bool,
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Token for cloning the git context over HTTPS (`--git-access-token`):
    /// a secret, masked in every answer to a client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_access_token: Option<String>,
    /// IAM role ARN the task's builds run with on AWS (`--assign-identity`,
    /// see [`crate::domain::identity`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(with = "serde_millis")]
    pub create_time: DateTime<Utc>,
    /// URLs told when a run of the task starts and ends (`--notify`),
    /// besides the server's own ([`crate::notify`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
}

impl Task {
    /// Checks what can be checked without the world: name, context form,
    /// image templates, timeout, timers (unique names, valid crons).
    pub fn validate(&self) -> Result<()> {
        validate_task_name(&self.name)?;
        ContextSource::parse_task_context(&self.context)?;
        if self.file.trim().is_empty() {
            return Err(Error::invalid("file must not be empty"));
        }
        if !TASK_TIMEOUT_RANGE.contains(&self.timeout) {
            return Err(Error::invalid(format!(
                "timeout {} is out of range: allowed {}-{} seconds",
                self.timeout,
                TASK_TIMEOUT_RANGE.start(),
                TASK_TIMEOUT_RANGE.end()
            )));
        }
        for image in &self.images {
            crtask_gotemplate::Template::parse(image)
                .map_err(|e| Error::invalid(format!("image '{image}': {e}")))?;
        }
        if let Some(p) = &self.platform {
            crate::domain::platform::validate(p)?;
        }
        if let Some(b) = &self.branch {
            crate::domain::pattern::validate(b)
                .map_err(|e| Error::invalid(format!("branch '{b}': {e}")))?;
        }
        crate::notify::validate_urls(&self.notify)?;
        for f in &self.path_filters {
            crate::domain::pattern::validate(f)
                .map_err(|e| Error::invalid(format!("path filter '{f}': {e}")))?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &self.timers {
            validate_timer_name(&t.name)?;
            if !seen.insert(t.name.as_str()) {
                return Err(Error::invalid(format!(
                    "timer name '{}' is used twice: each timer of a task needs its own name",
                    t.name
                )));
            }
            crate::domain::cron::Cron::parse(&t.schedule)
                .map_err(|e| Error::invalid(format!("timer '{}': {e}", t.name)))?;
        }
        Ok(())
    }
}

/// What replaces a secret value in every answer to a client.
pub const SECRET_MASK: &str = "*****";

impl Task {
    /// The task as clients may see it: secret build-arg values masked.
    pub fn redacted(&self) -> Task {
        let mut t = self.clone();
        for a in t.build_args.iter_mut().filter(|a| a.secret) {
            a.value = SECRET_MASK.to_string();
        }
        if let Some(token) = t.git_access_token.as_mut() {
            *token = SECRET_MASK.to_string();
        }
        t
    }

    /// Puts back secret values a client sent masked (a read-modify-write
    /// update), taking them from `old`.
    pub fn restore_secrets(&mut self, old: &Task) {
        for a in self
            .build_args
            .iter_mut()
            .filter(|a| a.secret && a.value == SECRET_MASK)
        {
            if let Some(o) = old.build_args.iter().find(|o| o.secret && o.name == a.name) {
                a.value = o.value.clone();
            }
        }
        if self.git_access_token.as_deref() == Some(SECRET_MASK) {
            self.git_access_token = old.git_access_token.clone();
        }
    }
}

/// Task names: 5-50 alphanumerics, `-` and `_` as in ACR (we also allow shorter names).
pub fn validate_task_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 50
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid task name '{name}': use 1-50 letters, digits, '-' or '_', starting with a letter or digit"
        )))
    }
}

/// Timer names follow the task-name rules.
pub fn validate_timer_name(name: &str) -> Result<()> {
    validate_task_name(name).map_err(|_| {
        Error::invalid(format!(
            "invalid timer name '{name}': use 1-50 letters, digits, '-' or '_'"
        ))
    })
}

/// What a run builds: resolved from a task or a quick build request, fixed at queue time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSpec {
    pub context: ContextSource,
    /// Dockerfile path relative to the context.
    pub file: String,
    /// Image templates; rendered with the run's variables when the run starts.
    pub images: Vec<String>,
    #[serde(default)]
    pub build_args: Vec<BuildArg>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    pub push: bool,
    pub timeout: u64,
    #[serde(default)]
    pub values: Values,
    #[serde(default)]
    pub cache: CacheOptions,
    /// The task's git access token (a secret: blanked in every answer to a
    /// client, never sent to CodeBuild in plain text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_access_token: Option<String>,
    /// The task's IAM role on AWS (`--assign-identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// A run: the record of one execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub run_id: String,
    pub task: Option<String>,
    pub run_type: RunType,
    pub status: RunStatus,
    pub trigger: Trigger,
    /// `os/arch` the run builds for.
    pub platform: String,
    #[serde(with = "serde_millis")]
    pub create_time: DateTime<Utc>,
    #[serde(with = "serde_millis::option", default)]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(with = "serde_millis::option", default)]
    pub finish_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub output_images: Vec<OutputImage>,
    #[serde(default)]
    pub base_images: Vec<BaseImageUse>,
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    pub error: Option<String>,
    /// Runs with the same key are one build: a second one is not queued while
    /// the first is queued, running or succeeded (`task@commit` for commits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe_key: Option<String>,
    /// The builder's own id for this run's execution (the CodeBuild build
    /// id on AWS), used to stop it; `None` until dispatched or when the
    /// builder keeps no such id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_ref: Option<String>,
    /// What to build. Secret build-arg values are kept for the builder only
    /// and are blanked in every answer to a client ([`Run::redacted`]).
    pub spec: BuildSpec,
    /// A patch run's request and result ([`RunType::Patch`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<crate::patch::PatchRun>,
    /// A multi-platform run on a builder with a native machine per
    /// architecture (CodeBuild): its platform builds and the assemble
    /// build, with their states ([`crate::build::fanout`]); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builds: Vec<crate::build::fanout::PlatformBuild>,
}

impl Run {
    /// The run as clients may see it: secret build-arg values blanked.
    pub fn redacted(&self) -> Run {
        let mut r = self.clone();
        for a in r.spec.build_args.iter_mut().filter(|a| a.secret) {
            a.value = SECRET_MASK.to_string();
        }
        if let Some(token) = r.spec.git_access_token.as_mut() {
            *token = SECRET_MASK.to_string();
        }
        r
    }

    /// Wall time between start (or creation) and finish (or `now`).
    pub fn duration(&self, now: DateTime<Utc>) -> chrono::Duration {
        let start = self.start_time.unwrap_or(self.create_time);
        self.finish_time.unwrap_or(now) - start
    }
}

/// Filter for run listings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFilter {
    pub task: Option<String>,
    pub status: Option<RunStatus>,
    pub top: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_json_shapes() {
        let t = Trigger::ImageUpdate {
            image: "127.0.0.1:5000/base:1".into(),
            old_digest: Some("sha256:a".into()),
            new_digest: "sha256:b".into(),
            cause: None,
        };
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            serde_json::json!({"type":"ImageUpdate","image":"127.0.0.1:5000/base:1","oldDigest":"sha256:a","newDigest":"sha256:b"})
        );
        assert_eq!(
            serde_json::to_value(Trigger::Manual).unwrap(),
            serde_json::json!({"type":"Manual"})
        );
    }

    #[test]
    fn status_parse_is_case_insensitive_and_errors_clearly() {
        assert_eq!(
            "succeeded".parse::<RunStatus>().unwrap(),
            RunStatus::Succeeded
        );
        let e = "done".parse::<RunStatus>().unwrap_err().to_string();
        assert!(e.contains("unknown run status 'done'"), "{e}");
    }

    #[test]
    fn task_contexts() {
        assert_eq!(
            ContextSource::parse_task_context("/dev/null").unwrap(),
            ContextSource::None
        );
        assert_eq!(
            ContextSource::parse_task_context("https://github.com/a/b.git#main:src/app").unwrap(),
            ContextSource::Git {
                url: "https://github.com/a/b.git".into(),
                reference: Some("main".into()),
                subdir: Some("src/app".into())
            }
        );
        assert_eq!(
            ContextSource::parse_task_context("git://127.0.0.1/repo.git#:sub").unwrap(),
            ContextSource::Git {
                url: "git://127.0.0.1/repo.git".into(),
                reference: None,
                subdir: Some("sub".into())
            }
        );
        assert!(ContextSource::parse_task_context("https://x.org/r.git#main:../etc").is_err());
        assert!(ContextSource::parse_task_context("https://x.org/r.git#--upload-pack=x").is_err());
        assert!(ContextSource::parse_task_context("relative/dir").is_err());
        assert_eq!(
            ContextSource::parse_task_context("/srv/app").unwrap(),
            ContextSource::LocalDir {
                path: "/srv/app".into()
            }
        );
    }

    #[test]
    fn build_args() {
        let a = BuildArg::parse("A=b=c", false).unwrap();
        assert_eq!((a.name.as_str(), a.value.as_str()), ("A", "b=c"));
        assert!(BuildArg::parse("=x", false).is_err());
        assert!(BuildArg::parse("A", false).is_err());
        assert!(BuildArg::parse("A B=1", false).is_err());
    }

    #[test]
    fn the_git_access_token_is_masked_and_restored_like_secret_args() {
        let mut t = crate::testing::task_with_timers(&[]);
        t.git_access_token = Some("ghp_zz-token-zz".into());
        t.identity = Some("arn:aws:iam::123456789012:role/crtask-tasks/r".into());
        let shown = t.redacted();
        assert_eq!(shown.git_access_token.as_deref(), Some(SECRET_MASK));
        let json = serde_json::to_string(&shown).unwrap();
        assert!(!json.contains("zz-token-zz"), "{json}");
        assert!(json.contains("\"identity\""), "{json}");
        // A client sends back the mask: the stored token is kept.
        let mut update = shown.clone();
        update.restore_secrets(&t);
        assert_eq!(update.git_access_token, t.git_access_token);
        // A new value replaces it; none removes it.
        let mut update = shown.clone();
        update.git_access_token = Some("new".into());
        update.restore_secrets(&t);
        assert_eq!(update.git_access_token.as_deref(), Some("new"));
        let mut update = shown;
        update.git_access_token = None;
        update.restore_secrets(&t);
        assert_eq!(update.git_access_token, None);
        // Runs carry it in their spec, blanked for clients.
        let spec = crate::run::queue::spec_from_task(&t, &Default::default()).unwrap();
        assert_eq!(spec.git_access_token, t.git_access_token);
        assert_eq!(spec.identity, t.identity);
        // An old stored task (no such fields) still reads.
        let mut v = serde_json::to_value(crate::testing::task_with_timers(&[])).unwrap();
        v.as_object_mut().unwrap().remove("gitAccessToken");
        let old: Task = serde_json::from_value(v).unwrap();
        assert_eq!((old.git_access_token, old.identity), (None, None));
    }

    fn task_with_timers(timers: &[(&str, &str)]) -> Task {
        let timers: Vec<(&str, &str, bool)> = timers.iter().map(|(n, s)| (*n, *s, true)).collect();
        crate::testing::task_with_timers(&timers)
    }

    #[test]
    fn timers_are_validated() {
        assert!(
            task_with_timers(&[("t1", "* * * * *"), ("t2", "* * * * *")])
                .validate()
                .is_ok()
        );
        let err = |t: &[(&str, &str)]| task_with_timers(t).validate().unwrap_err().to_string();
        assert_eq!(
            err(&[("t1", "61 * * * *")]),
            "timer 't1': minute field '61' is out of range 0-59"
        );
        assert_eq!(
            err(&[("t1", "* * * * * *")]),
            "timer 't1': expected 5 fields (minute hour day-of-month month day-of-week), got 6"
        );
        assert!(
            err(&[("t1", "* * 31 2 *")]).starts_with("timer 't1': day-of-month 31 never occurs")
        );
        assert_eq!(
            err(&[("a", "* * * * *"), ("a", "0 * * * *")]),
            "timer name 'a' is used twice: each timer of a task needs its own name"
        );
        assert!(err(&[("bad name", "* * * * *")]).contains("invalid timer name 'bad name'"));
    }

    #[test]
    fn task_names() {
        assert!(validate_task_name("web-app_1").is_ok());
        assert!(validate_task_name("").is_err());
        assert!(validate_task_name("-x").is_err());
        assert!(validate_task_name("a b").is_err());
        assert!(validate_task_name("a;rm").is_err());
    }
}

/// Where an inbound event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventSource {
    Git,
    Registry,
    Timer,
    Poll,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Git => "git",
            EventSource::Registry => "registry",
            EventSource::Timer => "timer",
            EventSource::Poll => "poll",
        }
    }
}

impl FromStr for EventSource {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "git" => Ok(Self::Git),
            "registry" => Ok(Self::Registry),
            "timer" => Ok(Self::Timer),
            "poll" => Ok(Self::Poll),
            _ => Err(Error::invalid(format!(
                "unknown event source '{s}' (expected git, registry, timer or poll)"
            ))),
        }
    }
}

/// What crtask did with an inbound event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Triggered,
    Ignored,
    Duplicate,
    Rejected,
    Unchanged,
    Debounced,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Triggered => "triggered",
            Outcome::Ignored => "ignored",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected => "rejected",
            Outcome::Unchanged => "unchanged",
            Outcome::Debounced => "debounced",
        }
    }
}

/// One inbound event and its outcome: the answer to "why did (or didn't) this build?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    pub id: String,
    pub source: EventSource,
    /// The sender's id for the delivery (`X-GitHub-Delivery`, ...), used for dedupe.
    #[serde(default)]
    pub delivery_id: Option<String>,
    #[serde(with = "serde_millis")]
    pub received_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub reason: String,
    #[serde(default)]
    pub runs: Vec<String>,
    /// What the event was about (provider, kind, repository, ref, commit, image, ...).
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// One base image a task depends on, as the dependency index keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseDependency {
    /// Normalised tagged reference (`127.0.0.1:5000/base:1`).
    pub image: String,
    /// The digest the task's last successful build used; `None` when the
    /// dependency is known only from a scan at task creation.
    #[serde(default)]
    pub digest: Option<String>,
    /// True for the runtime base (the final stage's image).
    pub runtime: bool,
}
