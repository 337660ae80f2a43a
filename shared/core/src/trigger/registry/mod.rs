//! Base-image updates: a tag moved in a registry, so the tasks built on it
//! may need a rebuild. Read in the order a registry push travels:
//!
//! 1. [`verify`]: is the notification genuine (bearer token or HMAC
//!    signature on the raw body)?
//! 2. [`event`]: which tags moved (CNCF distribution envelopes, ECR
//!    EventBridge events) -> [`event::TagUpdate`]s.
//! 3. [`decide`]: what each update means for every task that uses the image
//!    -> one [`decide::Verdict`] per task.
//! 4. [`handler`]: records the event and the runs (exactly once, by dedupe
//!    key), holds back a task whose upstream task is still rebuilding, and
//!    after a run feeds its pushed images back in (cascades A -> B -> C).
//!
//! Besides: [`poll`] finds updates for registries that send no
//! notifications (digest polling; its updates join at step 3), with the
//! [`credentials`] private registries need.

pub mod credentials;
pub mod decide;
pub mod event;
pub mod handler;
pub mod poll;
#[cfg(test)]
mod test_support;
pub mod verify;
