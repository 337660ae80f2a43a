//! Bodies of the server's own HTTP API (`/api/v1/`), shared by the CLI and
//! the servers so both sides agree on names. Documented in docs/API.md.

use crate::domain::model::{BuildArg, ContextSource};
use serde::{Deserialize, Serialize};

/// `POST /api/v1/builds`: a quick build.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuickBuildRequest {
    /// `uploaded` (from `POST /api/v1/contexts`), `git` or `none`.
    pub context: ContextSource,
    #[serde(default = "dockerfile")]
    pub file: String,
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub build_args: Vec<BuildArg>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default = "yes")]
    pub push: bool,
    /// Seconds; default 3600.
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub values: crate::domain::model::Values,
    #[serde(default)]
    pub cache: crate::domain::model::CacheOptions,
}

fn dockerfile() -> String {
    "Dockerfile".into()
}

fn yes() -> bool {
    true
}

/// `POST /api/v1/tasks/{name}/runs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskRunRequest {
    /// `--set` values, on top of the task's own.
    #[serde(default)]
    pub values: crate::domain::model::Values,
}

/// Answer of `POST /api/v1/contexts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadResponse {
    pub id: String,
    pub files: u64,
    pub bytes: u64,
}

/// Every error answer: `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// `POST /api/v1/patches`: patch an image's OS packages (`crtask patch`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchApiRequest {
    /// The tagged image; a name without a registry host gets the server's registry.
    pub image: String,
    /// `incremental` (default) or `floating`.
    #[serde(default)]
    pub tag_convention: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// A Trivy JSON report (`trivy image -f json`): only its packages are updated.
    #[serde(default)]
    pub report: Option<serde_json::Value>,
}

/// `PUT /api/v1/patch-config`: continuous patching.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchConfigRequest {
    /// ACR's configuration file (`version`, `tag-convention`, `repositories`).
    pub config: serde_json::Value,
    /// `1d` to `30d`.
    pub schedule: String,
}
