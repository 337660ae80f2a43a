//! Git webhooks: [`verify`] the signature on the raw body, parse it into a
//! [`event::GitEvent`], [`decide`] per task what it builds, and the
//! [`handler`] that records the delivery and queues the runs.

pub mod decide;
pub mod event;
pub mod handler;
pub mod verify;
