//! [`Run`] and [`Task`] records with sensible defaults, changed by builder
//! methods: what the tests' hand-written literals had in common.

use crate::clock::{millis, DEFAULT_TIME_MS};
use chrono::{DateTime, Utc};
use crtask_core::domain::model::{
    BuildArg, ContextSource, Run, RunStatus, RunType, Task, TimerTrigger, Trigger,
    DEFAULT_TASK_TIMEOUT,
};
use crtask_core::domain::time;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Builder methods that set one field each: `name(v: T) => field.path = expr;`.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident($v:ident: $t:ty) => $($field:ident).+ = $e:expr;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, $v: $t) -> Self {
                self.0.$($field).+ = $e;
                self
            }
        )*
    };
}
pub(crate) use setters;

/// `with` (any change on the record itself) and `build`.
macro_rules! finish {
    ($record:ty) => {
        /// Anything else, on the record itself.
        pub fn with(mut self, f: impl FnOnce(&mut $record)) -> Self {
            f(&mut self.0);
            self
        }

        pub fn build(self) -> $record {
            self.0
        }
    };
}

/// A record from its JSON form (fields left out take their serde defaults).
fn from_json<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("the kit's default record: {e}"))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The repository the kit's records build from.
pub const REPO_URL: &str = "https://github.com/acme/app.git";
/// The commit the kit's runs build.
pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// `main` of [`REPO_URL`].
pub fn git_context() -> ContextSource {
    ContextSource::Git {
        url: REPO_URL.into(),
        reference: Some("main".into()),
        subdir: None,
    }
}

/// A plain build argument.
pub fn arg(name: &str, value: &str) -> BuildArg {
    BuildArg {
        name: name.into(),
        value: value.into(),
        secret: false,
    }
}

/// A secret build argument.
pub fn secret_arg(name: &str, value: &str) -> BuildArg {
    BuildArg {
        secret: true,
        ..arg(name, value)
    }
}

/// Builds a [`Run`]. [`RunBuilder::new`]: an `AutoBuild` of task `web`,
/// `Queued`, for a commit ([`COMMIT`] on `main` of `acme/app`), created at
/// [`DEFAULT_TIME_MS`], building `web:{{.Run.ID}}` from [`git_context`] and
/// pushing it; no dedupe key, not dispatched.
#[derive(Debug, Clone)]
pub struct RunBuilder(Run);

impl RunBuilder {
    pub fn new(run_id: &str) -> Self {
        // The rest (no steps, no images yet, ...) as a store reads it back.
        RunBuilder(from_json(json!({
            "runId": run_id,
            "task": "web",
            "runType": "AutoBuild",
            "status": "Queued",
            "trigger": {"type": "Commit", "commit": COMMIT, "branch": "main", "repository": "acme/app"},
            "platform": "linux/amd64",
            "createTime": time::rfc3339(millis(DEFAULT_TIME_MS)),
            "error": null,
            "spec": {
                "context": git_context(),
                "file": "Dockerfile",
                "images": ["web:{{.Run.ID}}"],
                "push": true,
                "timeout": DEFAULT_TASK_TIMEOUT,
            },
        })))
    }

    setters! {
        /// The run's task (`None`: a quick build's run).
        task(v: Option<&str>) => task = v.map(str::to_string);
        run_type(v: RunType) => run_type = v;
        status(v: RunStatus) => status = v;
        trigger(v: Trigger) => trigger = v;
        created(v: DateTime<Utc>) => create_time = v;
        dedupe(v: Option<&str>) => dedupe_key = v.map(str::to_string);
        builder_ref(v: Option<&str>) => builder_ref = v.map(str::to_string);
        context(v: ContextSource) => spec.context = v;
        images(v: &[&str]) => spec.images = strings(v);
        build_args(v: Vec<BuildArg>) => spec.build_args = v;
        push(v: bool) => spec.push = v;
        timeout(v: u64) => spec.timeout = v;
    }

    finish!(Run);
}

/// [`RunBuilder::new`] as is.
pub fn run(run_id: &str) -> Run {
    RunBuilder::new(run_id).build()
}

/// Builds a [`Task`]. [`TaskBuilder::new`]: `main` of [`REPO_URL`] with
/// its `Dockerfile`, pushing `app:{{.Run.ID}}`; commit and (runtime)
/// base-image triggers on, no timers, created at [`DEFAULT_TIME_MS`].
#[derive(Debug, Clone)]
pub struct TaskBuilder(Task);

impl TaskBuilder {
    pub fn new(name: &str) -> Self {
        // Every other field takes the default a client gets by leaving it out.
        TaskBuilder(from_json(json!({
            "name": name,
            "context": format!("{REPO_URL}#main"),
            "images": ["app:{{.Run.ID}}"],
            "createTime": time::rfc3339(millis(DEFAULT_TIME_MS)),
        })))
    }

    setters! {
        /// The context as a user writes it (`/dev/null`, `URL#ref`, a directory).
        context(v: &str) => context = v.into();
        file(v: &str) => file = v.into();
        images(v: &[&str]) => images = strings(v);
        branch(v: &str) => branch = Some(v.into());
        commit_trigger(v: bool) => commit_trigger_enabled = v;
        pull_request_trigger(v: bool) => pull_request_trigger_enabled = v;
        tag_trigger(v: bool) => tag_trigger_enabled = v;
        base_image_trigger(v: bool) => base_image_trigger_enabled = v;
        /// Timers from `(name, cron, enabled)`.
        timers(v: &[(&str, &str, bool)]) => timers = timers(v);
        path_filters(v: &[&str]) => path_filters = strings(v);
        build_args(v: Vec<BuildArg>) => build_args = v;
        push(v: bool) => push = v;
        timeout(v: u64) => timeout = v;
        created(v: DateTime<Utc>) => create_time = v;
    }

    finish!(Task);
}

/// [`TaskBuilder::new`] as is.
pub fn task(name: &str) -> Task {
    TaskBuilder::new(name).build()
}

/// Timers from `(name, cron, enabled)`.
pub fn timers(list: &[(&str, &str, bool)]) -> Vec<TimerTrigger> {
    list.iter()
        .map(|(n, s, e)| TimerTrigger {
            name: n.to_string(),
            schedule: s.to_string(),
            enabled: *e,
        })
        .collect()
}
