//! Runs: turning a request, a task or an event into a queued run and
//! dispatching it to the builder ([`queue`]).

pub mod queue;
