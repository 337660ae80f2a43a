//! The order of a patch run, on any platform: open the image, learn its OS
//! and package manager, update, compare, commit one layer, push. The
//! mechanics go through [`PatchEngine`] (buildah in the executor).

use crate::domain::imageref::ImageRef;
use crate::domain::model::{OutputImage, RunStatus, StepRecord};
use crate::patch::commands::{self, Command, Inventory};
use crate::patch::model::{PatchOutcome, PatchRun};
use crate::patch::os::{self, PackageManager};
use crate::patch::packages::{self, Installed};
use crate::patch::tags::patch_tags;
use crate::ports::{Clock, Engine, Exit, LogSink, PushOutcome};
use crate::Result;
use async_trait::async_trait;

/// A working container of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub container: String,
    /// The manifest digest of the image it was created from.
    pub digest: String,
}

/// Lists a repository's tags (the registry's `/v2/<name>/tags/list`).
#[async_trait]
pub trait TagLister: Send + Sync {
    /// The tags of `image`'s repository (empty when there is none yet);
    /// `Err` with a one-line reason when the registry cannot be asked.
    async fn list_tags(&self, image: &ImageRef)
        -> Result<std::result::Result<Vec<String>, String>>;
}

/// The mechanics of a patch. Infrastructure failures are `Err`; what the
/// user's image or registry caused is `Ok(Err(message))` or a failed [`Exit`].
#[async_trait]
pub trait PatchEngine: TagLister {
    /// Pulls `image` (always asking the registry) and creates a working container.
    async fn open(
        &self,
        image: &str,
        log: &dyn LogSink,
    ) -> Result<std::result::Result<Opened, String>>;
    /// A file of the container's filesystem (symlinks resolved inside it);
    /// `None` when it does not exist.
    async fn read_file(&self, container: &str, path: &str) -> Result<Option<Vec<u8>>>;
    /// Whether a path exists in the container (symlinks resolved inside it).
    async fn exists(&self, container: &str, path: &str) -> Result<bool>;
    /// Runs a command in the container, streaming its stderr (and stdout
    /// unless captured) into `log`; returns the exit and captured stdout.
    async fn exec(
        &self,
        container: &str,
        cmd: &Command,
        capture: bool,
        log: &dyn LogSink,
    ) -> Result<(Exit, String)>;
    /// Commits the container's changes as ONE new layer on top of its
    /// image's layers (config otherwise unchanged, a history entry saying
    /// `created_by`), tagged `image`.
    async fn commit(
        &self,
        container: &str,
        image: &str,
        created_by: &str,
        log: &dyn LogSink,
    ) -> Result<Exit>;
    /// Removes a working container.
    async fn close(&self, container: &str);
}

/// How a patch run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchResult {
    pub status: RunStatus,
    pub error: Option<String>,
    pub output_images: Vec<OutputImage>,
    pub steps: Vec<StepRecord>,
    pub patch: PatchRun,
}

struct State<'a> {
    clock: &'a dyn Clock,
    log: &'a dyn LogSink,
    steps: Vec<StepRecord>,
    output_images: Vec<OutputImage>,
    patch: PatchRun,
    containers: Vec<String>,
}

impl State<'_> {
    fn start(&mut self, id: &str) {
        // Steps run one after another: each waits for the one before.
        let step = StepRecord::next_in_sequence(id, self.steps.last(), self.clock.now());
        self.steps.push(step);
    }
    fn finish(&mut self, status: RunStatus) {
        if let Some(s) = self.steps.last_mut().filter(|s| !s.status.is_terminal()) {
            s.status = status;
            s.finish_time = Some(self.clock.now());
            s.exit_code = (status == RunStatus::Succeeded).then_some(0);
        }
    }
}

/// Why a patch stopped: the user's image or registry (`Failed`) or crtask's
/// machinery (`Error`).
enum Stop {
    Failed(String),
    Error(String),
}

impl From<crate::Error> for Stop {
    fn from(e: crate::Error) -> Self {
        Stop::Error(e.to_string())
    }
}

/// Runs one patch end to end.
pub async fn execute_patch(
    engine: &dyn Engine,
    patcher: &dyn PatchEngine,
    patch: PatchRun,
    log: &dyn LogSink,
    clock: &dyn Clock,
) -> PatchResult {
    let mut st = State {
        clock,
        log,
        steps: Vec::new(),
        output_images: Vec::new(),
        patch,
        containers: Vec::new(),
    };
    let res = run(engine, patcher, &mut st).await;
    for c in std::mem::take(&mut st.containers) {
        patcher.close(&c).await;
    }
    let (status, error) = match res {
        Ok(outcome) => {
            st.patch.outcome = Some(outcome);
            log.line(&format!("crtask: {}", outcome.describe()));
            (RunStatus::Succeeded, None)
        }
        Err(Stop::Failed(m)) => (RunStatus::Failed, Some(m)),
        Err(Stop::Error(m)) => (RunStatus::Error, Some(m)),
    };
    if let Some(m) = &error {
        log.line(&format!("crtask: {m}"));
    }
    st.finish(status);
    PatchResult {
        status,
        error,
        output_images: st.output_images,
        steps: st.steps,
        patch: st.patch,
    }
}

async fn open(
    patcher: &dyn PatchEngine,
    st: &mut State<'_>,
    image: &str,
) -> std::result::Result<Opened, Stop> {
    st.log.line(&format!("crtask: pulling {image}"));
    match patcher.open(image, st.log).await? {
        Ok(o) => {
            st.containers.push(o.container.clone());
            Ok(o)
        }
        Err(m) => Err(Stop::Failed(m)),
    }
}

async fn installed(
    patcher: &dyn PatchEngine,
    st: &State<'_>,
    container: &str,
    m: PackageManager,
) -> std::result::Result<Installed, Stop> {
    match commands::inventory(m) {
        Inventory::File(path) => match patcher.read_file(container, path).await? {
            Some(b) => Ok(match m {
                PackageManager::Apk => packages::parse_apk_installed(&String::from_utf8_lossy(&b)),
                _ => packages::parse_dpkg_status(&String::from_utf8_lossy(&b)),
            }),
            None => Err(Stop::Failed(format!(
                "the image has no package database ({path}): it cannot be patched"
            ))),
        },
        Inventory::Query(cmd) => {
            let (exit, out) = patcher.exec(container, &cmd, true, st.log).await?;
            if !exit.success() {
                return Err(Stop::Failed(format!(
                    "cannot list the installed packages (rpm exit code {})",
                    exit.code
                )));
            }
            Ok(packages::parse_rpm_query(&out))
        }
    }
}

async fn run(
    engine: &dyn Engine,
    patcher: &dyn PatchEngine,
    st: &mut State<'_>,
) -> std::result::Result<PatchOutcome, Stop> {
    let src = ImageRef::parse(&st.patch.request.image)?;
    let Some(tag) = src.tag.clone().filter(|_| src.digest.is_none()) else {
        return Err(Stop::Failed(format!(
            "{} is not a tag: crtask patches tagged images",
            src.full()
        )));
    };
    st.start("patch");
    if !st.patch.request.dry_run {
        engine
            .probe_registry(&src.registry)
            .await
            .map_err(Stop::Failed)?;
    }
    let existing = patcher.list_tags(&src).await?.map_err(Stop::Failed)?;
    let tags = patch_tags(&tag, st.patch.request.tag_convention, &existing)?;
    let target = ImageRef {
        tag: Some(tags.next.clone()),
        digest: None,
        ..src.clone()
    };
    st.patch.previous_patch = tags.latest.as_ref().map(|t| {
        ImageRef {
            tag: Some(t.clone()),
            digest: None,
            ..src.clone()
        }
        .full()
    });

    // 1. The image, its OS and its package manager.
    let image = src.full();
    let opened = open(patcher, st, &image).await?;
    st.log
        .line(&format!("crtask: {image} is {}", opened.digest));
    st.patch.source_digest = Some(opened.digest.clone());
    let ctr = opened.container.clone();
    let mut os_info = None;
    for p in os::OS_RELEASE_PATHS {
        if let Some(b) = patcher.read_file(&ctr, p).await? {
            os_info = os::parse_os_release(&String::from_utf8_lossy(&b));
            break;
        }
    }
    let Some(os_info) = os_info else {
        return Err(Stop::Failed(format!(
            "{image} has no /etc/os-release: crtask cannot tell its OS, so it cannot patch it"
        )));
    };
    st.patch.os = Some(os_info.pretty_name.clone());
    let mut present = Vec::new();
    for m in [
        PackageManager::Apt,
        PackageManager::Apk,
        PackageManager::Dnf,
        PackageManager::Microdnf,
        PackageManager::Tdnf,
        PackageManager::Yum,
    ] {
        for b in m.binaries() {
            if patcher.exists(&ctr, b).await? {
                present.push(*b);
            }
        }
    }
    let manager =
        os::choose_manager(&os_info, &|p| present.contains(&p)).map_err(|r| Stop::Failed(r.0))?;
    st.patch.package_manager = Some(manager.as_str().to_string());
    st.log.line(&format!(
        "crtask: {}; package manager {}",
        os_info.pretty_name,
        manager.as_str()
    ));

    // 2. What to update.
    let before = installed(patcher, st, &ctr, manager).await?;
    let mut only = Vec::new();
    if !st.patch.request.only.is_empty() {
        for p in &st.patch.request.only {
            if before.contains_key(&p.name) {
                only.push(p.name.clone());
            } else {
                st.log.line(&format!(
                    "crtask: the report lists {}, which the image does not have",
                    p.name
                ));
            }
        }
        if only.is_empty() {
            return Ok(PatchOutcome::NothingToUpdate);
        }
        st.log
            .line(&format!("crtask: updating only {}", only.join(", ")));
    }

    // 3. Update, then see what changed.
    for cmd in commands::update(manager, &only) {
        st.log
            .line(&format!("crtask: running {}", cmd.argv.join(" ")));
        let (exit, _) = patcher.exec(&ctr, &cmd, false, st.log).await?;
        if !exit.success() {
            return Err(Stop::Failed(format!(
                "'{}' failed with exit code {}",
                cmd.argv.join(" "),
                exit.code
            )));
        }
    }
    let after = installed(patcher, st, &ctr, manager).await?;
    let mut changes = packages::diff(&before, &after);
    for c in changes.iter_mut() {
        c.fixed_version = st
            .patch
            .request
            .only
            .iter()
            .find(|p| p.name == c.name)
            .map(|p| p.fixed_version.clone());
    }
    for c in &changes {
        st.log.line(&format!(
            "crtask:   {} {} -> {}",
            c.name,
            c.old_version.as_deref().unwrap_or("(none)"),
            c.new_version.as_deref().unwrap_or("(removed)")
        ));
    }
    st.patch.packages = changes;
    if st.patch.packages.is_empty() {
        return Ok(PatchOutcome::NothingToUpdate);
    }

    // 4. Nothing new since the last patch: the same packages, nothing pushed.
    if let Some(prev) = st.patch.previous_patch.clone() {
        let p = open(patcher, st, &prev).await?;
        let theirs = installed(patcher, st, &p.container, manager).await?;
        if theirs == after {
            st.log.line(&format!(
                "crtask: {prev} already has these versions: nothing to push"
            ));
            return Ok(PatchOutcome::UpToDate);
        }
    }
    let target_name = target.full();
    st.patch.patched_image = Some(target_name.clone());
    if st.patch.request.dry_run {
        st.log
            .line(&format!("crtask: a patch would be pushed as {target_name}"));
        return Ok(PatchOutcome::DryRun);
    }

    // 5. One layer on top of the original ones, then the push.
    let created_by = format!(
        "crtask patch: {} update of {} package(s)",
        manager.as_str(),
        st.patch.packages.len()
    );
    let exit = patcher
        .commit(&ctr, &target_name, &created_by, st.log)
        .await?;
    if !exit.success() {
        return Err(Stop::Error(format!(
            "committing the patched image failed (exit code {})",
            exit.code
        )));
    }
    st.finish(RunStatus::Succeeded);
    st.start("push");
    st.log.line(&format!("crtask: pushing {target_name}"));
    match engine.push(&target_name, st.log).await? {
        PushOutcome::Pushed { digest, .. } => {
            st.log
                .line(&format!("crtask: pushed {target_name} {digest}"));
            st.output_images.push(OutputImage {
                registry: target.registry.clone(),
                repository: target.repository.clone(),
                tag: tags.next,
                digest,
                platforms: Vec::new(),
            });
            Ok(PatchOutcome::Patched)
        }
        PushOutcome::Failed { message } => Err(Stop::Failed(message)),
    }
}
