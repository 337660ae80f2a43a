//! The digest poller's local loop: for registries that send no
//! notifications (Docker Hub, MCR, GHCR, Quay, any OCI registry), a
//! [`crtask_registry::Poller`] round every 250 ms (each registry is polled
//! only when its interval is due), and the runs a round records are
//! dispatched after the settle window.

use crtask_core::ports::{Clock, Store};
use crtask_core::trigger::registry::credentials::CredentialSource;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

pub use crtask_registry::PollConfig;

/// How often the loop asks the poller whether a registry is due.
const TICK: Duration = Duration::from_millis(250);

impl From<crtask_registry::Error> for crate::Error {
    fn from(e: crtask_registry::Error) -> Self {
        match e {
            crtask_registry::Error::Config(m) => crate::Error::Config(m),
        }
    }
}

/// Starts the poller on the current runtime (nothing when the interval is
/// zero); registries that answer `401` get their credential from
/// `credentials` (the data directory's credentials file).
pub fn start(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    queue: UnboundedSender<String>,
    cfg: PollConfig,
    credentials: Arc<dyn CredentialSource>,
) {
    if cfg.is_off() {
        return;
    }
    let settle = cfg.settle_window;
    let mut poller = crtask_registry::Poller::new(cfg).with_credentials(credentials);
    tokio::spawn(async move {
        loop {
            let round = poller.round(store.as_ref(), clock.as_ref()).await;
            crate::worker::dispatch_later(
                queue.clone(),
                round.new_runs.into_iter().map(|r| r.run_id).collect(),
                settle,
            );
            tokio::time::sleep(TICK).await;
        }
    });
}
