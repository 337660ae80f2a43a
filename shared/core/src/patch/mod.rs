//! OS patching without a rebuild (ACR's continuous patching, Copa's idea):
//! update the OS packages of a pushed image in ONE new layer on top of its
//! original layers and push it under a patch tag.
//!
//! Every decision lives here: which OS and package manager an image has
//! ([`os`]), what is installed ([`packages`]), which commands update it
//! ([`commands`]), what a Trivy report asks for ([`report`]), which tag the
//! result gets ([`tags`]), and the order of it all ([`execute`]). The
//! executor only carries the mechanics out through [`execute::PatchEngine`]
//! (buildah `from` / `run` / `commit`).

pub mod commands;
pub mod continuous;
pub mod execute;
pub mod model;
pub mod os;
pub mod packages;
pub mod queue;
pub mod report;
pub mod tags;

pub use model::{PackageChange, PatchOutcome, PatchRequest, PatchRun, ReportedPackage};
pub use tags::TagConvention;
