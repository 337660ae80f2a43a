//! Base-image updates: registry notifications and ECR events ([`event`]:
//! authenticate, parse, decide), digest polling for registries that send
//! none ([`poll`]), and the [`handler`] that records them and queues the
//! rebuilds of every dependent task, cascading through tasks built on each
//! other's images.

pub mod event;
pub mod handler;
pub mod poll;
