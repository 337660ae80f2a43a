//! Leases held by the store: the lock behind decisions that read state and
//! then write runs (two base-image updates decided at once must not both
//! see "nothing pending").
//!
//! A process-wide mutex would do nothing across the AWS functions' many
//! instances; a lease in the store holds across processes and machines,
//! and a holder that dies frees it when the lease expires.

use crate::ports::{Clock, Store};
use crate::{Error, Result};
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

/// How long a lease lasts when its holder never gives it back.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How long [`acquire`] waits for a busy lease before giving up.
pub const LEASE_WAIT: Duration = Duration::from_secs(45);

/// The lease every base-image decision takes.
pub const BASE_IMAGE_DECISIONS: &str = "decide:base-image";

/// A lease taken with [`acquire`]; give it back with [`Lease::release`].
#[must_use = "a lease must be released, or it blocks others until it expires"]
pub struct Lease<'a> {
    store: &'a dyn Store,
    name: String,
    holder: String,
}

/// A holder id no other process or call uses: process id, time and a
/// per-process random value (std's hasher keys come from the OS; no
/// dependency is needed for one random number).
fn holder_id() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{}-{:016x}", std::process::id(), h.finish())
}

/// Takes lease `name`, waiting (with a growing pause, at most
/// [`LEASE_WAIT`]) while another holder has it.
pub async fn acquire<'a>(store: &'a dyn Store, clock: &dyn Clock, name: &str) -> Result<Lease<'a>> {
    let holder = holder_id();
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        let now = clock.now();
        let until = now
            + chrono::Duration::from_std(LEASE_TTL)
                .unwrap_or_else(|_| chrono::Duration::seconds(30));
        if store.try_lease(name, &holder, now, until).await? {
            return Ok(Lease {
                store,
                name: name.to_string(),
                holder,
            });
        }
        if started.elapsed() >= LEASE_WAIT {
            return Err(Error::Store(format!(
                "the lease '{name}' stayed busy for {} s: another decision is stuck; it expires by itself",
                LEASE_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

impl Lease<'_> {
    /// Gives the lease back. A failure is logged, not returned: the lease
    /// then expires by itself.
    pub async fn release(self) {
        if let Err(e) = self.store.release_lease(&self.name, &self.holder).await {
            tracing::warn!(lease = %self.name, error = %e, "lease not released; it expires by itself");
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }
}
