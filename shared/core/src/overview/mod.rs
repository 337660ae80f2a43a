//! Read-only views for the dashboard: decisions the UI shows but does not
//! make (what rebuilds when an image moves, when a timer fires next).

pub mod graph;
pub mod listing;
pub mod timers;
