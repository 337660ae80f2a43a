//! Run state changes on the account's default EventBridge bus: the AWS
//! side of `--notify`. Each start and end of a run is one
//! `crtask Run State Change` event (source `crtask`) whose `detail` is the
//! notification body ([`crtask_core::notify::RunNotification`]); users
//! route it with rules to SNS, chat, queues or API destinations.

use crate::config::Lazy;
use crate::{Error, Result};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use crtask_core::notify::payload::{DETAIL_TYPE, EVENT_SOURCE};
use crtask_core::notify::RunNotification;

/// The bus run events go to: the account's default bus, the only one the
/// template lets the function write to.
pub const BUS: &str = "default";

/// Publishes run notifications on [`BUS`].
#[derive(Clone, Debug)]
pub struct RunEventBus {
    client: Lazy<aws_sdk_eventbridge::Client>,
}

impl RunEventBus {
    pub fn new(client: impl Into<Lazy<aws_sdk_eventbridge::Client>>) -> Self {
        RunEventBus {
            client: client.into(),
        }
    }

    /// The event entry of `n`.
    pub fn entry(n: &RunNotification) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(BUS)
            .source(EVENT_SOURCE)
            .detail_type(DETAIL_TYPE)
            .detail(n.to_body())
            .build()
    }

    /// Puts one event for `n`; an entry the bus refuses is an error too.
    pub async fn publish(&self, n: &RunNotification) -> Result<()> {
        let out = self
            .client
            .put_events()
            .entries(Self::entry(n))
            .send()
            .await
            .map_err(|e| Error::events("PutEvents", e))?;
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .find_map(|e| {
                    e.error_code()
                        .map(|c| format!("{c}: {}", e.error_message().unwrap_or("")))
                })
                .unwrap_or_else(|| "the entry was refused".into());
            return Err(Error::Events {
                op: "PutEvents",
                message: why,
            });
        }
        Ok(())
    }
}
