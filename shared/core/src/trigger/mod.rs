//! Every way a build starts, one folder per source. Each takes a delivery
//! through the same stages, one file each: `verify` it on the raw bytes,
//! parse it into a domain `event`, `decide` what it builds (pure), and a
//! `handler` that applies the decision to the ports.
//!
//! - [`request`]: the raw request all of them read (case-insensitive
//!   headers) and the answer a webhook handler gives back. The secrets and
//!   MACs they verify with are in [`crate::signing`].
//!
//! - [`git`]: signed webhooks of GitHub, GitLab, Gitea/Forgejo, Bitbucket.
//! - [`registry`]: registry notifications, ECR events and digest polling
//!   (base-image updates and cascades).
//! - [`timer`]: cron timers, in-process or through EventBridge Scheduler.
//! - [`build_status`]: the builder's own state changes (CodeBuild), which
//!   finish runs.

pub mod answer;
pub mod build_status;
pub mod git;
pub mod registry;
pub mod request;
pub mod timer;
