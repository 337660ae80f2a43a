//! The layer cache: which registry repository a build reads and writes
//! cached layers from, and how many layers a build reused.
//!
//! Runs have image stores of their own (the executor's `isolation`), so a
//! cache kept in a run's store dies with the run. The cache lives in a
//! registry instead (`buildah bud --layers --cache-from R --cache-to R`):
//! the same mechanism serves the local platform and the ephemeral CodeBuild
//! builder, and it keeps runs isolated, because a cache entry is an
//! intermediate layer image named by the hash of its parent image and the
//! instruction that produced it, never by a tag another run chose. The key
//! includes the base image's id, so a build on a new base digest never
//! reuses a layer built on the old one.

use crate::domain::imageref::ImageRef;
use crate::domain::model::{CacheOptions, CacheUse};
use crate::error::{Error, Result};
use crate::ports::LogSink;
use std::sync::Mutex;

/// What a build asks of the engine's layer cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePlan {
    /// The cache repository (`registry/repository`, no tag); `None`: no
    /// layer cache at all.
    pub repo: Option<String>,
    /// Write new layers to `repo` too (not only read).
    pub write: bool,
    /// Build every step again (layers are still written for later builds).
    pub no_cache: bool,
    /// Ask the registry for the base images again inside the build.
    pub pull: bool,
}

/// The default cache repository of an image: `<registry>/<repository>/cache`.
/// buildah names cache entries by tag itself (the layer's key), so the cache
/// is a repository next to the image rather than one `:cache` tag.
pub fn default_repo(image: &ImageRef) -> String {
    format!("{}/{}/cache", image.registry, image.repository)
}

/// Checks a configured cache repository: a registry host and a repository,
/// without tag or digest.
pub fn validate_repo(repo: &str) -> Result<()> {
    let bad = || {
        Error::invalid(format!(
            "cache repository '{}' is not valid: give REGISTRY/REPOSITORY without a tag",
            crate::domain::text::inert(repo)
        ))
    };
    let r = ImageRef::parse(repo).map_err(|_| bad())?;
    if r.digest.is_some()
        || repo
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
    {
        return Err(bad());
    }
    if !repo.contains('/') {
        return Err(bad());
    }
    Ok(())
}

/// Decides a build's cache: `enabled` (ACR's step `cache:`; quick builds
/// always), the options given, and the first image the build tags (the
/// default repository is named after it). No image and no configured
/// repository: nothing to name a cache after, so no cache.
pub fn plan(enabled: bool, opts: &CacheOptions, first_tag: Option<&str>, write: bool) -> CachePlan {
    let repo = if enabled {
        opts.repo.clone().or_else(|| {
            first_tag
                .and_then(|t| ImageRef::parse(t).ok())
                .map(|r| default_repo(&r))
        })
    } else {
        None
    };
    CachePlan {
        repo,
        write,
        no_cache: opts.no_cache,
        pull: opts.pull,
    }
}

/// The line a run's log gets before the build.
pub fn describe(plan: &CachePlan) -> String {
    match (&plan.repo, plan.no_cache) {
        (None, _) => "crtask: layer cache disabled".to_string(),
        (Some(r), true) => format!("crtask: layer cache {r}: --no-cache, every step is built"),
        (Some(r), false) => format!("crtask: layer cache {r}"),
    }
}

/// Passes the engine's output through and counts steps: an instruction
/// step (`STEP n/m:` from buildah, `Step n/m :` from docker, `FROM` ones
/// excluded) whose output says `Using cache` was reused, others were built.
pub struct CacheTally<'a> {
    log: &'a dyn LogSink,
    state: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    partial: Vec<u8>,
    steps: u32,
    reused: u32,
}

impl<'a> CacheTally<'a> {
    pub fn new(log: &'a dyn LogSink) -> Self {
        CacheTally {
            log,
            state: Mutex::new(Tally::default()),
        }
    }

    /// Layers reused and built so far.
    pub fn result(&self) -> CacheUse {
        let t = self
            .state
            .lock()
            .map(|t| (t.steps, t.reused))
            .unwrap_or((0, 0));
        CacheUse {
            reused: t.1,
            built: t.0.saturating_sub(t.1),
        }
    }
}

fn is_step(line: &str) -> bool {
    let rest = line
        .strip_prefix("STEP ")
        .or_else(|| line.strip_prefix("Step "));
    let Some(rest) = rest else { return false };
    let Some((count, instr)) = rest.split_once(':') else {
        return false;
    };
    count.trim().split_once('/').is_some_and(|(a, b)| {
        a.chars().all(|c| c.is_ascii_digit()) && b.chars().all(|c| c.is_ascii_digit())
    }) && !instr.trim_start().to_ascii_uppercase().starts_with("FROM ")
}

fn is_hit(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with("--> Using cache") || l.starts_with("---> Using cache")
}

impl LogSink for CacheTally<'_> {
    fn write(&self, bytes: &[u8]) {
        self.log.write(bytes);
        if let Ok(mut t) = self.state.lock() {
            t.partial.extend_from_slice(bytes);
            while let Some(i) = t.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = t.partial.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line);
                if is_step(&line) {
                    t.steps += 1;
                } else if is_hit(&line) {
                    t.reused += 1;
                }
            }
            if t.partial.len() > 64 * 1024 {
                t.partial.clear();
            }
        }
    }
    fn add_secret(&self, value: &str) {
        self.log.add_secret(value);
    }
}

#[cfg(test)]
mod tests;
