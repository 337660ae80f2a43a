//! The records of a patch run: what was asked ([`PatchRequest`]) and what
//! happened ([`PatchRun`]), kept on the run and shown by `show-run`.

use crate::patch::tags::TagConvention;
use serde::{Deserialize, Serialize};

/// A package a vulnerability report names, with the version that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedPackage {
    pub name: String,
    pub fixed_version: String,
}

/// What a patch run was asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchRequest {
    /// The fully qualified tagged image to patch (`registry/repo:tag`).
    pub image: String,
    #[serde(default)]
    pub tag_convention: TagConvention,
    /// Report what would change; commit and push nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Only these packages (from `--report`); empty: every package with an update.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<ReportedPackage>,
}

/// One package the patch changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageChange {
    pub name: String,
    /// `None`: newly installed (a dependency of an update).
    pub old_version: Option<String>,
    /// `None`: removed by the update.
    pub new_version: Option<String>,
    /// The version the report said fixes it (`--report` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
}

/// How a patch run ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PatchOutcome {
    /// A patched image was pushed.
    Patched,
    /// No package of the image has an update: nothing pushed.
    NothingToUpdate,
    /// The latest patched image already has every update: nothing pushed.
    UpToDate,
    /// `--dry-run`: what would change, nothing committed or pushed.
    DryRun,
}

impl PatchOutcome {
    pub fn describe(self) -> &'static str {
        match self {
            PatchOutcome::Patched => "patched",
            PatchOutcome::NothingToUpdate => "nothing to update",
            PatchOutcome::UpToDate => "the latest patched image is up to date",
            PatchOutcome::DryRun => "dry run: nothing committed or pushed",
        }
    }
}

/// A patch run's request and, once it ran, its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchRun {
    #[serde(flatten)]
    pub request: PatchRequest,
    /// The continuous-patching configuration that asked for it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// `PRETTY_NAME` of `/etc/os-release`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_manager: Option<String>,
    /// The digest of the image patched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<PatchOutcome>,
    /// The tag pushed (or that would be, for a dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patched_image: Option<String>,
    /// The newest patched image found before this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_patch: Option<String>,
    #[serde(default)]
    pub packages: Vec<PackageChange>,
}

impl PatchRun {
    pub fn new(request: PatchRequest) -> Self {
        PatchRun {
            request,
            config: None,
            os: None,
            package_manager: None,
            source_digest: None,
            outcome: None,
            patched_image: None,
            previous_patch: None,
            packages: Vec::new(),
        }
    }
}
