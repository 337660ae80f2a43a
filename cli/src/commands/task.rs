//! `crtask task ...`.

use super::{wait, Ctx};
use crate::output;
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use crtask_core::domain::api::TaskRunRequest;
use crtask_core::domain::cron;
use crtask_core::domain::model::{
    is_git_url, BaseImageTriggerType, Task, TimerTrigger, DEFAULT_TASK_TIMEOUT,
};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum TaskCommand {
    /// Create a task.
    Create(TaskFields),
    /// Show a task.
    Show(Name),
    /// List tasks.
    List,
    /// Change a task (only the flags given).
    Update(TaskFields),
    /// Delete a task (its runs are kept).
    Delete(Name),
    /// Run a task now and stream its log.
    Run(RunArgs),
    /// List runs, newest first.
    ListRuns(ListRunsArgs),
    /// Show one run.
    ShowRun(RunId),
    /// Print a run's log (follows a run in progress).
    Logs(LogsArgs),
    /// Cancel a queued or running run.
    CancelRun(RunId),
    /// A run's start and end notifications and every delivery attempt.
    Notifications(RunId),
    /// Add, change, remove or list a task's cron timers.
    #[command(subcommand)]
    Timer(super::timer::TimerCommand),
}

#[derive(Args)]
pub struct Name {
    /// The task's name.
    #[arg(long, short = 'n')]
    name: String,
}

#[derive(Args)]
pub struct RunId {
    /// The run's id (e.g. ca1).
    #[arg(long)]
    run_id: String,
}

#[derive(Args)]
pub struct TaskFields {
    /// The task's name.
    #[arg(long, short = 'n')]
    name: String,
    /// A local directory (read by the server at each run), a git URL
    /// (#ref[:subdir]) or /dev/null.
    #[arg(long, short = 'c')]
    context: Option<String>,
    /// Dockerfile (or task file) inside the context [default: Dockerfile].
    #[arg(long, short = 'f')]
    file: Option<String>,
    /// Image tag template (repeatable; replaces the list on update).
    #[arg(long = "image", short = 't')]
    images: Vec<String>,
    /// Branch to build on commits [default: main].
    #[arg(long)]
    branch: Option<String>,
    /// Build on pushes to the branch [default: true].
    #[arg(long, value_name = "BOOL")]
    commit_trigger_enabled: Option<bool>,
    /// Build pull requests into the branch [default: false].
    #[arg(long, value_name = "BOOL")]
    pull_request_trigger_enabled: Option<bool>,
    /// Build tag pushes too.
    #[arg(long, value_name = "BOOL")]
    tag_trigger_enabled: Option<bool>,
    /// Push the images pull-request runs build (off: they only build).
    #[arg(long, value_name = "BOOL")]
    pull_request_push_enabled: Option<bool>,
    /// Rebuild when a base image changes [default: true].
    #[arg(long, value_name = "BOOL")]
    base_image_trigger_enabled: Option<bool>,
    /// Runtime or All.
    #[arg(long)]
    base_image_trigger_type: Option<String>,
    /// Timer as [NAME:]CRON (repeatable).
    #[arg(long = "schedule")]
    schedules: Vec<String>,
    /// Build argument K=V, or K to take the value from the environment
    /// (repeatable; `--build-arg` is the same flag).
    #[arg(long = "arg", visible_alias = "build-arg")]
    build_args: Vec<String>,
    /// Secret build argument K=V (repeatable; never shown;
    /// `--secret-build-arg` is the same flag).
    #[arg(long = "secret-arg", visible_alias = "secret-build-arg")]
    secret_build_args: Vec<String>,
    /// Token for cloning a private git context over HTTPS; stored as a
    /// secret, never shown (an empty value removes it).
    #[arg(long, env = "CRTASK_GIT_ACCESS_TOKEN", hide_env_values = true)]
    git_access_token: Option<String>,
    /// AWS: IAM role ARN the task's builds run with (CodeBuild's service
    /// role override), under the stack's TaskRolePath; an empty value
    /// removes it. Refused on the local platform.
    #[arg(long, value_name = "ROLE_ARN")]
    assign_identity: Option<String>,
    /// Template value K=V (repeatable).
    #[arg(long = "set")]
    sets: Vec<String>,
    /// YAML file of template values.
    #[arg(long)]
    values: Option<PathBuf>,
    /// Only build pushes that change a file matching this glob (repeatable).
    #[arg(long = "path-filter")]
    path_filters: Vec<String>,
    /// Build stage to stop at.
    #[arg(long)]
    target: Option<String>,
    /// Platform as os/arch[/variant].
    #[arg(long)]
    platform: Option<String>,
    /// Run timeout in seconds (300-28800) [default: 3600].
    #[arg(long)]
    timeout: Option<u64>,
    /// Build without pushing (BOOL).
    #[arg(long, value_name = "BOOL")]
    no_push: Option<bool>,
    /// URL told (signed JSON POST) when a run of the task starts and ends
    /// (repeatable; replaces the list on update; '' clears it).
    #[arg(long = "notify", value_name = "URL")]
    notify: Vec<String>,
}

#[derive(Args)]
pub struct RunArgs {
    /// The task's name.
    #[arg(long, short = 'n')]
    name: String,
    /// Template value K=V for this run (repeatable).
    #[arg(long = "set")]
    sets: Vec<String>,
    /// YAML file of template values for this run.
    #[arg(long)]
    values: Option<PathBuf>,
    /// Do not stream the log.
    #[arg(long)]
    no_logs: bool,
    /// Return once the run is queued.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Args)]
pub struct ListRunsArgs {
    /// Only this task's runs.
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// Only runs in this status (Queued, Running, Succeeded, Failed, ...).
    #[arg(long)]
    run_status: Option<String>,
    /// How many runs to list.
    #[arg(long, default_value_t = 15)]
    top: usize,
}

#[derive(Args)]
pub struct LogsArgs {
    /// The run whose log to print.
    #[arg(long, conflicts_with_all = ["name", "task"])]
    run_id: Option<String>,
    /// Print the log of this task's latest run.
    #[arg(long, short = 'n', conflicts_with = "task")]
    name: Option<String>,
    /// Same as --name: `crtask task logs web`.
    #[arg(value_name = "NAME")]
    task: Option<String>,
}

/// Parses `--schedule [NAME:]CRON` values; unnamed ones become t1, t2, ...
/// (skipping names given explicitly). The crons are checked by the server
/// ([`Task::validate`]), which names the timer in its message.
pub fn timers(specs: &[String]) -> Result<Vec<TimerTrigger>> {
    let split: Vec<(Option<&str>, &str)> = specs.iter().map(|s| cron::split_named(s)).collect();
    let explicit: Vec<&str> = split.iter().filter_map(|(n, _)| *n).collect();
    let mut out: Vec<TimerTrigger> = Vec::new();
    let mut n = 0;
    for (name, cron) in split {
        let name = match name {
            Some(name) => name.to_string(),
            None => loop {
                n += 1;
                let candidate = format!("t{n}");
                if !explicit.contains(&candidate.as_str()) {
                    break candidate;
                }
            },
        };
        if out.iter().any(|t| t.name == name) {
            bail!("timer name '{name}' is used twice");
        }
        out.push(TimerTrigger {
            name,
            schedule: cron.to_string(),
            enabled: true,
        });
    }
    Ok(out)
}

fn resolve_context(c: &str) -> String {
    if c == "/dev/null" || is_git_url(c) {
        c.to_string()
    } else {
        let p = crate::absolute(&PathBuf::from(c));
        p.canonicalize().unwrap_or(p).to_string_lossy().into_owned()
    }
}

impl TaskFields {
    fn apply(self, t: &mut Task) -> Result<()> {
        if let Some(c) = &self.context {
            let resolved = resolve_context(c);
            if resolved.starts_with('/')
                && resolved != "/dev/null"
                && !PathBuf::from(&resolved).is_dir()
            {
                bail!("context directory '{c}' does not exist");
            }
            t.context = resolved;
        }
        if let Some(f) = self.file {
            t.file = f;
        }
        if !self.images.is_empty() {
            t.images = self.images;
        }
        if let Some(b) = self.branch {
            t.branch = Some(b);
        }
        if let Some(v) = self.commit_trigger_enabled {
            t.commit_trigger_enabled = v;
        }
        if let Some(v) = self.pull_request_trigger_enabled {
            t.pull_request_trigger_enabled = v;
        }
        if let Some(v) = self.tag_trigger_enabled {
            t.tag_trigger_enabled = v;
        }
        if let Some(v) = self.pull_request_push_enabled {
            t.pull_request_push_enabled = v;
        }
        if let Some(v) = self.base_image_trigger_enabled {
            t.base_image_trigger_enabled = v;
        }
        if let Some(v) = self.base_image_trigger_type {
            t.base_image_trigger_type = v.parse::<BaseImageTriggerType>()?;
        }
        if !self.schedules.is_empty() {
            t.timers = timers(&self.schedules)?;
        }
        if !self.build_args.is_empty() || !self.secret_build_args.is_empty() {
            let mut args = super::build_args(&self.build_args, false)?;
            args.extend(super::build_args(&self.secret_build_args, true)?);
            t.build_args = args;
        }
        if self.values.is_some() || !self.sets.is_empty() {
            let v = super::values(self.values.as_deref(), &self.sets)?;
            t.values.extend(v);
        }
        if !self.path_filters.is_empty() {
            t.path_filters = self.path_filters;
        }
        if let Some(v) = self.target {
            t.target = Some(v).filter(|s| !s.is_empty());
        }
        if let Some(v) = self.platform {
            t.platform = Some(v).filter(|s| !s.is_empty());
        }
        if let Some(v) = self.timeout {
            t.timeout = v;
        }
        if let Some(v) = self.no_push {
            t.push = !v;
        }
        if !self.notify.is_empty() {
            t.notify = self.notify.into_iter().filter(|u| !u.is_empty()).collect();
        }
        if let Some(v) = self.git_access_token {
            t.git_access_token = Some(v).filter(|s| !s.is_empty());
        }
        if let Some(v) = self.assign_identity {
            t.identity = Some(v).filter(|s| !s.is_empty());
        }
        Ok(())
    }
}

fn new_task(name: &str) -> Task {
    Task {
        name: name.to_string(),
        context: String::new(),
        file: "Dockerfile".into(),
        images: Vec::new(),
        branch: None,
        commit_trigger_enabled: true,
        pull_request_trigger_enabled: false,
        tag_trigger_enabled: false,
        pull_request_push_enabled: false,
        base_image_trigger_enabled: true,
        base_image_trigger_type: BaseImageTriggerType::Runtime,
        timers: Vec::new(),
        build_args: Vec::new(),
        values: Default::default(),
        path_filters: Vec::new(),
        target: None,
        platform: None,
        push: true,
        timeout: DEFAULT_TASK_TIMEOUT,
        git_access_token: None,
        identity: None,
        create_time: chrono::Utc::now(),
        notify: Vec::new(),
    }
}

fn show_task(ctx: &Ctx, t: Task) -> Result<()> {
    ctx.out.emit(&t, || task_details(&t))
}

fn task_details(t: &Task) {
    let kv = |k: &str, v: String| output::kv(22, k, &v);
    kv("Name:", t.name.clone());
    kv("Context:", t.context.clone());
    kv("File:", t.file.clone());
    kv("Images:", t.images.join(", "));
    kv("Branch:", t.branch.clone().unwrap_or_else(|| "main".into()));
    kv("Commit trigger:", on(t.commit_trigger_enabled));
    kv("Pull request trigger:", on(t.pull_request_trigger_enabled));
    kv("Tag trigger:", on(t.tag_trigger_enabled));
    kv(
        "Base image trigger:",
        format!(
            "{} ({:?})",
            on(t.base_image_trigger_enabled),
            t.base_image_trigger_type
        ),
    );
    for tm in &t.timers {
        kv(
            "Timer:",
            format!("{} \"{}\" {}", tm.name, tm.schedule, on(tm.enabled)),
        );
    }
    if !t.path_filters.is_empty() {
        kv("Path filters:", t.path_filters.join(", "));
    }
    for a in &t.build_args {
        kv("Build arg:", format!("{}={}", a.name, a.value));
    }
    for (k, v) in &t.values {
        kv(
            "Value:",
            format!("{k}={}", crtask_core::build::values::value_text(v)),
        );
    }
    if t.git_access_token.is_some() {
        kv("Git access token:", "(set)".into());
    }
    if let Some(role) = &t.identity {
        kv("Identity:", role.clone());
    }
    kv("Push:", if t.push { "yes".into() } else { "no".into() });
    kv("Timeout:", format!("{}s", t.timeout));
    for u in &t.notify {
        kv("Notify:", u.clone());
    }
    kv(
        "Created:",
        crtask_core::domain::time::rfc3339(t.create_time),
    );
}

fn on(b: bool) -> String {
    if b { "Enabled" } else { "Disabled" }.to_string()
}

pub async fn run(ctx: &Ctx, cmd: TaskCommand) -> Result<i32> {
    let client = ctx.client().await?;
    match cmd {
        TaskCommand::Timer(c) => return super::timer::run(ctx, c).await,
        TaskCommand::Create(f) => {
            if f.context.is_none() {
                bail!("--context is required: a directory, a git URL or /dev/null");
            }
            let mut t = new_task(&f.name);
            f.apply(&mut t)?;
            let t = client.create_task(&t).await?;
            show_task(ctx, t)?;
        }
        TaskCommand::Update(f) => {
            let mut t = client.task(&f.name).await?;
            f.apply(&mut t)?;
            let t = client.update_task(&t).await?;
            show_task(ctx, t)?;
        }
        TaskCommand::Show(n) => {
            let t = client.task(&n.name).await?;
            let deps = client.task_dependencies(&n.name).await?;
            let mut v = serde_json::to_value(&t)?;
            v["dependencies"] = serde_json::to_value(&deps)?;
            ctx.out.emit(&v, || {
                task_details(&t);
                for d in &deps {
                    println!(
                        "{:<22} {} ({}, {})",
                        "Base image:",
                        d.image,
                        if d.runtime { "runtime" } else { "build-time" },
                        d.digest.as_deref().unwrap_or("not built yet")
                    );
                }
            })?;
        }
        TaskCommand::List => {
            let tasks = client.tasks().await?;
            ctx.out.emit(&tasks, || {
                let rows: Vec<Vec<String>> = tasks
                    .iter()
                    .map(|t| {
                        let mut trig = Vec::new();
                        if t.commit_trigger_enabled {
                            trig.push("Commit".to_string());
                        }
                        if t.pull_request_trigger_enabled {
                            trig.push("PullRequest".into());
                        }
                        if t.base_image_trigger_enabled {
                            trig.push("BaseImage".into());
                        }
                        if t.timers.iter().any(|x| x.enabled) {
                            trig.push("Timer".into());
                        }
                        vec![
                            t.name.clone(),
                            t.platform
                                .clone()
                                .unwrap_or_else(crtask_core::domain::platform::host),
                            t.context.clone(),
                            trig.join(", "),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "PLATFORM", "CONTEXT", "TRIGGERS"], &rows);
            })?;
        }
        TaskCommand::Delete(n) => {
            client.delete_task(&n.name).await?;
            ctx.out.emit(&serde_json::json!({"deleted": n.name}), || {
                println!("Task '{}' deleted", n.name)
            })?;
        }
        TaskCommand::Run(a) => {
            let values = super::values(a.values.as_deref(), &a.sets)?;
            let run = client.run_task(&a.name, &TaskRunRequest { values }).await?;
            return wait::queued(ctx, &client, run, "run", a.no_wait, a.no_logs).await;
        }
        TaskCommand::ListRuns(a) => {
            if let Some(s) = &a.run_status {
                s.parse::<crtask_core::domain::model::RunStatus>()?;
            }
            let runs = client
                .runs(a.name.as_deref(), a.run_status.as_deref(), Some(a.top))
                .await?;
            ctx.out.emit(&runs, || output::runs_table(&runs))?;
        }
        TaskCommand::ShowRun(r) => {
            let run = client.run(&r.run_id).await?;
            ctx.out.emit(&run, || output::run_details(&run))?;
        }
        TaskCommand::Logs(a) => {
            let id = match (a.run_id, a.name.or(a.task)) {
                (Some(id), _) => id,
                (None, Some(name)) => {
                    client.task(&name).await?;
                    let runs = client.runs(Some(&name), None, Some(1)).await?;
                    runs.first()
                        .and_then(|r| r["runId"].as_str())
                        .map(str::to_string)
                        .ok_or_else(|| anyhow!("task '{name}' has no runs yet"))?
                }
                (None, None) => bail!("give a task name (`crtask task logs NAME`) or --run-id"),
            };
            client.run(&id).await?;
            client.log(&id, true, &mut std::io::stdout()).await?;
        }
        TaskCommand::Notifications(r) => {
            let list = client.notifications(&r.run_id).await?;
            super::notifications::show(ctx, &list)?;
        }
        TaskCommand::CancelRun(r) => {
            let run = client.cancel(&r.run_id).await?;
            ctx.out.emit(&run, || {
                println!(
                    "Run ID: {} is {}",
                    r.run_id,
                    run["status"].as_str().unwrap_or("?")
                )
            })?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_names() {
        let t = timers(&[
            "0 2 * * *".into(),
            "nightly:0 3 * * *".into(),
            "*/5 * * * *".into(),
        ])
        .unwrap();
        let names: Vec<_> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["t1", "nightly", "t2"]);
        assert_eq!(t[1].schedule, "0 3 * * *");
        assert!(timers(&["a:* * * * *".into(), "a:0 * * * *".into()]).is_err());
        // Explicit names are skipped when numbering unnamed timers.
        let t = timers(&["* * * * *".into(), "t1:0 * * * *".into()]).unwrap();
        let names: Vec<_> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["t2", "t1"]);
        // A colon that does not follow a name stays in the cron (and the
        // server's cron parser explains it).
        let t = timers(&["bad name:* * * * *".into()]).unwrap();
        assert_eq!(
            (t[0].name.as_str(), t[0].schedule.as_str()),
            ("t1", "bad name:* * * * *")
        );
    }
}
