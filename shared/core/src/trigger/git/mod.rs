//! Git webhooks, in the order a delivery travels:
//!
//! 1. [`verify`]: which provider sent it, and is its signature (or GitLab
//!    token) good on the raw body?
//! 2. [`event`]: the payload parsed into a [`event::GitEvent`] (one file
//!    per payload family: GitHub/Gitea/Forgejo, GitLab, Bitbucket).
//! 3. [`decide`]: per task, whether and at which commit it builds.
//! 4. [`handler`]: the whole delivery, from the raw request to recorded
//!    runs and the answer.

pub mod decide;
pub mod event;
pub mod handler;
pub mod verify;
