//! Notifications out: what crtask tells the world when a run starts and
//! when it ends.
//!
//! The decisions live here, the delivery in the platforms:
//!
//! - [`target`]: which URLs may receive notifications (http and https only,
//!   no credentials, no control characters);
//! - [`payload`]: when a status change is worth a notification
//!   ([`payload::phase_of`]) and the JSON it carries, the same body locally
//!   (signed HTTP POST) and on AWS (the `detail` of the EventBridge event);
//! - [`sign`]: the headers of a signed delivery, the scheme of the inbound
//!   webhooks (`sha256=<hex HMAC-SHA256 of the body>`);
//! - [`retry`]: what an attempt's answer means and when to try again;
//! - [`record`]: a delivery and its attempts as `crtask` shows them.

pub mod payload;
pub mod record;
pub mod retry;
pub mod sign;
pub mod target;

pub use payload::{phase_of, Phase, RunNotification};
pub use record::{Attempt, DeliveryState, NotificationRecord};
pub use retry::{RetryPolicy, Verdict};
pub use target::{validate_url, validate_urls};
