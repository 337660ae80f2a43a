//! Runs: turning a request, a task or an event into a queued run and
//! dispatching it to the builder ([`queue`]), and the store-held leases
//! that serialize decisions across processes ([`lease`]), and how long
//! finished runs and events are kept ([`retention`]).

pub mod lease;
pub mod queue;
pub mod retention;
