//! Multi-step task files (`acr-task.yaml`) with ACR's semantics.
//!
//! The pipeline, all pure:
//! 1. [`preprocess_mapped`]: delete comment lines, expand `v1.1.0` aliases
//!    ([`alias`]), render templates, keeping a [`LineMap`] back to the
//!    user's lines;
//! 2. [`parse`]: read and validate the YAML into a [`TaskFile`], collecting
//!    every error (each names the step and the user's line) and warning;
//! 3. [`plan`]: the step graph (`when`);
//! 4. [`execute`]: run the steps through a [`StepRunner`], every ready step
//!    at once, failing fast.
//!
//! [`load`] does 1 and 2 in one call.
//!
//! Where crtask differs from ACR's executor (acb), deliberately:
//! - an unknown `$name` is kept with the character after it, and an alias
//!   at the very end of the text is expanded (acb loses both);
//! - a step id listed twice in one `when` is rejected (acb waits forever);
//! - `alias.src` (external alias files) is rejected as unsupported;
//! - unknown keys are accepted with a warning (acb ignores them silently);
//!   `exitedWith`, `exitedWithout` and `retryOnErrors` are ignored with a
//!   warning; unknown `docker build` options are passed on with a warning;
//! - a file without steps is an error; a negative `startDelay` is 0 (warning);
//! - secret-volume values must be base64 (checked when the file is loaded);
//! - push references are used as written (plus `:latest`), never prefixed
//!   with the registry;
//! - a runner error (the engine, not the step's exit code) is not retried.

pub mod alias;
mod exec;
mod graph;
mod parse;
mod text;
mod words;
pub(crate) mod yaml;

pub use exec::{
    execute, execute_with, push_with_retries, ExecOptions, ExecOutcome, PushBackoff, StepEvent,
    StepRunner,
};
pub use graph::{plan, Graph, GraphNode};
pub use parse::{declared_secrets, default_image_aliases, parse, ParseOptions};
pub use text::{preprocess, preprocess_mapped, template_data, LineMap, Preprocessed};
pub use words::{classify_context, shell_split, shell_unquote, with_default_tag};

use crate::template::RunVars;
use std::collections::BTreeMap;
use std::fmt;

/// Step timeout when the file sets none (seconds).
pub const DEFAULT_STEP_TIMEOUT: u64 = 600;
/// Delay between retries when the step sets none (seconds).
pub const DEFAULT_RETRY_DELAY: u64 = 5;
/// The id ACR reserves for the root of the step graph.
pub const RESERVED_STEP_ID: &str = "acb_root";
/// Where the shared context is mounted in every step.
pub const WORKSPACE: &str = "/workspace";

/// One problem in a task file, with the user's line and the step it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFileError {
    /// Line in the user's file (1-based), when known.
    pub line: Option<usize>,
    /// Id of the step the problem is in (default ids included).
    pub step: Option<String>,
    pub message: String,
}

impl TaskFileError {
    pub(crate) fn at(line: Option<usize>, step: Option<&str>, message: impl Into<String>) -> Self {
        TaskFileError {
            line,
            step: step.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for TaskFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if let Some(s) = &self.step {
            write!(f, "step '{s}': ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a task file (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFileErrors(pub Vec<TaskFileError>);

impl fmt::Display for TaskFileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        if n > 1 {
            writeln!(f, "task file has {n} errors:")?;
        }
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TaskFileErrors {}

impl From<TaskFileErrors> for crate::Error {
    fn from(e: TaskFileErrors) -> Self {
        crate::Error::Invalid(e.to_string())
    }
}

/// Something accepted but worth telling the user (unknown keys, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFileWarning {
    /// Line in the user's file (1-based).
    pub line: usize,
    pub step: Option<String>,
    pub message: String,
}

impl fmt::Display for TaskFileWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        if let Some(s) = &self.step {
            write!(f, "step '{s}': ")?;
        }
        f.write_str(&self.message)
    }
}

/// The task-file versions ACR accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskVersion {
    /// `v1.0.0` (also the default when `version` is absent).
    V1_0_0,
    /// `v1.1.0`: adds aliases.
    V1_1_0,
    /// `1.0-preview-1`.
    Preview1,
}

impl TaskVersion {
    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskVersion::V1_0_0 => "v1.0.0",
            TaskVersion::V1_1_0 => "v1.1.0",
            TaskVersion::Preview1 => "1.0-preview-1",
        }
    }

    /// Parses a version case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        [
            TaskVersion::V1_0_0,
            TaskVersion::V1_1_0,
            TaskVersion::Preview1,
        ]
        .into_iter()
        .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// A parsed and validated task file.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFile {
    pub version: TaskVersion,
    /// Seconds; already copied into every step without its own `timeout`.
    pub step_timeout: u64,
    /// Task-level working directory as written (steps hold the resolved one).
    pub working_directory: Option<String>,
    /// Task-level environment, comma-split; already merged into every step.
    pub env: Vec<(String, String)>,
    pub secrets: Vec<Secret>,
    pub volumes: Vec<Volume>,
    pub networks: Vec<Network>,
    /// The `alias` section (used for `v1.1.0` only).
    pub alias: alias::AliasDef,
    pub steps: Vec<Step>,
    /// Accepted oddities: unknown keys and the like.
    pub warnings: Vec<TaskFileWarning>,
}

impl TaskFile {
    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// A `secrets:` entry. Values are resolved by the platform (see
/// [`crate::build::secrets`]), not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub id: String,
    /// Where the value is (required, as in ACR): `file:///path`,
    /// `crtask://NAME`, a Secrets Manager ARN, ...
    pub keyvault: String,
    pub client_id: Option<String>,
}

/// A `volumes:` entry: a named set of secret files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    /// File name -> base64-encoded content, as written (checked to decode).
    pub secret: BTreeMap<String, String>,
}

/// A `networks:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    pub driver: Option<String>,
    pub ipv6: bool,
    pub skip_creation: bool,
    pub is_default: bool,
}

/// A `volumeMounts:` entry of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// Name of a declared volume.
    pub name: String,
    pub mount_path: String,
}

/// Where a build step's context comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildContext {
    /// A path in the shared workspace (`.` is the workspace itself).
    Local(String),
    /// A git repository URL (`url#ref:subdir` allowed).
    Git(String),
    /// Another remote URL (a tarball or a Dockerfile).
    Url(String),
}

/// A `build:` step: `docker build` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStep {
    /// The text as written (after the pipeline).
    pub raw: String,
    /// All words, shell-split, in order.
    pub args: Vec<String>,
    /// `-t/--tag` values.
    pub tags: Vec<String>,
    /// `-f/--file`.
    pub file: Option<String>,
    /// `--build-arg` values: `K=V`, or `K` to take the value from the environment.
    pub build_args: Vec<String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// Other options, with their values, in order.
    pub extra_args: Vec<String>,
    pub context: BuildContext,
}

/// A `cmd:` step: an image and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdStep {
    /// The text as written (after the pipeline).
    pub raw: String,
    /// The image to run, after image-alias lookup.
    pub image: String,
    /// The first word as written when it was an image alias (`bash`, ...).
    pub alias: Option<String>,
    /// Arguments after the image, shell-split.
    pub args: Vec<String>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    Build(BuildStep),
    Cmd(CmdStep),
    /// Image references to push: `:latest` added where no tag or digest, duplicates dropped.
    Push(Vec<String>),
}

impl StepKind {
    /// `build`, `cmd` or `push`.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Build(_) => "build",
            StepKind::Cmd(_) => "cmd",
            StepKind::Push(_) => "push",
        }
    }
}

/// One validated step with every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Position in the file (0-based).
    pub index: usize,
    /// As written, or `acb_step_<index>`.
    pub id: String,
    /// The user's line where the step starts.
    pub line: usize,
    pub kind: StepKind,
    /// `when` as written (empty when absent).
    pub when: Vec<String>,
    /// Indexes of the steps this one waits for (resolved `when`).
    pub depends_on: Vec<usize>,
    /// Seconds, covering every retry and repeat.
    pub timeout: u64,
    pub start_delay: u64,
    pub retries: u32,
    pub retry_delay: u64,
    pub repeat: u32,
    pub ignore_errors: bool,
    pub detach: bool,
    pub keep: bool,
    pub privileged: bool,
    pub pull: bool,
    pub disable_working_directory_override: bool,
    pub entry_point: Option<String>,
    /// Absolute: relative paths are resolved under `/workspace`; the
    /// task-level value when the step sets none.
    pub working_directory: Option<String>,
    /// The step's variables, then the task's that the step does not set.
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub network: Option<String>,
    pub ports: Vec<String>,
    pub expose: Vec<String>,
    pub volume_mounts: Vec<VolumeMount>,
    /// `cache: enabled` -> `Some(true)`, `disabled` -> `Some(false)`.
    pub cache: Option<bool>,
    pub isolation: Option<String>,
    pub cpus: Option<String>,
}

impl Step {
    /// True for a push step (the runner pushes with [`push_with_retries`];
    /// `retries` does not apply).
    pub fn is_push(&self) -> bool {
        matches!(self.kind, StepKind::Push(_))
    }

    /// Executions of one repeat: `retries + 1`, or 1 for push steps.
    pub fn attempts(&self) -> u32 {
        if self.is_push() {
            1
        } else {
            self.retries.saturating_add(1)
        }
    }
}

/// True when `file` names a task file (`.yaml` / `.yml`) rather than a Dockerfile.
pub fn is_task_file(file: &str) -> bool {
    let f = file.to_ascii_lowercase();
    f.ends_with(".yaml") || f.ends_with(".yml")
}

/// Runs the text pipeline and the parser: a task file as the user wrote it
/// to a validated [`TaskFile`].
pub fn load(
    src: &str,
    vars: &RunVars,
    values: &crate::domain::model::Values,
    opts: &ParseOptions,
) -> Result<TaskFile, TaskFileErrors> {
    load_with_data(src, &template_data(vars, values), opts)
}

/// The `secrets:` of a task file as the user wrote it (the text pipeline
/// runs with `data`, whose `.Secrets` may be empty), without reading the
/// rest of the file: see [`declared_secrets`].
pub fn secrets_of(src: &str, data: &serde_json::Value) -> Result<Vec<Secret>, TaskFileErrors> {
    let pre = preprocess_mapped(src, data)?;
    declared_secrets(&pre.text, &pre.line_map)
}

/// Template data with `.Secrets.<id>` set to `value` for every secret the
/// file declares: for checking a file where the real values are not
/// available (`crtask run` before uploading). Errors are the file's.
pub fn data_with_placeholder_secrets(
    src: &str,
    vars: &RunVars,
    values: &crate::domain::model::Values,
    value: &str,
) -> Result<serde_json::Value, TaskFileErrors> {
    let mut data = template_data(vars, values);
    let ids = secrets_of(src, &data)?;
    if let Some(obj) = data.as_object_mut() {
        obj.insert(
            "Secrets".into(),
            serde_json::Value::Object(
                ids.into_iter()
                    .map(|s| (s.id, serde_json::Value::String(value.to_string())))
                    .collect(),
            ),
        );
    }
    Ok(data)
}

/// [`load`] with ready template data (for callers that add `.Secrets`).
pub fn load_with_data(
    src: &str,
    data: &serde_json::Value,
    opts: &ParseOptions,
) -> Result<TaskFile, TaskFileErrors> {
    let pre = preprocess_mapped(src, data)?;
    parse(&pre.text, &pre.line_map, opts)
}

#[cfg(test)]
mod tests;
