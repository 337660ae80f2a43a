//! A notification's delivery and its attempts, as the store keeps them
//! and `crtask task notifications` shows them.

use crate::domain::time::serde_millis;
use crate::notify::Phase;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not delivered yet; another attempt is due at `nextAttempt`.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// No more attempts: the receiver refused, or every attempt failed.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// One attempt to deliver a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    #[serde(with = "serde_millis")]
    pub time: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// Why there was no answer (inert text), when it did not.
    pub error: Option<String>,
}

/// One notification of a run to one URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    /// The delivery id (`X-Crtask-Delivery`), e.g. `n12`.
    pub id: String,
    pub run_id: String,
    pub event: Phase,
    pub url: String,
    pub state: DeliveryState,
    #[serde(with = "serde_millis::option", default)]
    pub next_attempt: Option<DateTime<Utc>>,
    pub attempts: Vec<Attempt>,
}
