//! `crtask-testkit`: what crtask's tests share (a dev-dependency only).
//!
//! - [`MemoryStore`]: the [`Store`](crtask_core::ports::Store) port in
//!   memory, with the SQLite store's semantics.
//! - [`FixedClock`]: a settable, advanceable clock; [`RecordingBuilder`]: a
//!   builder that records what it was asked to run.
//! - [`sign`]: reference signers for GitHub, Gitea/Forgejo, Bitbucket,
//!   GitLab and registry deliveries, independent of crtask-core's code.
//! - [`payload`]: a GitHub push body, a Lambda Function URL request;
//!   [`model`]: [`Run`](crtask_core::domain::model::Run) and
//!   [`Task`](crtask_core::domain::model::Task) builders with defaults.
//! - `aws` (feature `aws`): `moto_server`, the Lambda Runtime API emulator
//!   and the function process runner, CodeBuild and CloudWatch Logs helpers.

pub mod builder;
pub mod clock;
pub mod model;
pub mod payload;
pub mod sign;
pub mod store;

#[cfg(feature = "aws")]
pub mod aws;

pub use builder::RecordingBuilder;
pub use clock::FixedClock;
pub use model::{run, task, timers, RunBuilder, TaskBuilder};
pub use payload::{function_url_event, GithubPush};
pub use store::MemoryStore;
