//! The limit flags of `crtask serve` (each also an environment variable and
//! a key of the config file's `[limits]` table).

use clap::Args;
use crtask_local::limits::LimitSettings;

#[derive(Args, Default)]
pub struct LimitArgs {
    /// Seconds a client has to send a request's headers [default: 10].
    #[arg(long, env = "CRTASK_HEADER_TIMEOUT", value_name = "SECS")]
    header_timeout: Option<u64>,
    /// Seconds a client has to send a request's whole body (uploads
    /// included) [default: 120].
    #[arg(long, env = "CRTASK_BODY_TIMEOUT", value_name = "SECS")]
    body_timeout: Option<u64>,
    /// Seconds a connection may stay open with no request in progress
    /// [default: 30].
    #[arg(long, env = "CRTASK_IDLE_TIMEOUT", value_name = "SECS")]
    idle_timeout: Option<u64>,
    /// Open connections at most; when all are taken the one idle longest is
    /// closed (lowered to fit the open-file limit) [default: 4096].
    #[arg(long, env = "CRTASK_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Bytes of webhook bodies held in memory at once, all requests
    /// together [default: 64 MiB].
    #[arg(long, env = "CRTASK_BODY_BUDGET", value_name = "BYTES")]
    body_budget: Option<u64>,
    /// Entries (files, links, directories) in an uploaded context
    /// [default: 100000].
    #[arg(long, env = "CRTASK_CONTEXT_MAX_ENTRIES")]
    context_max_entries: Option<u64>,
    /// Bytes of an entry's path in an uploaded context [default: 1024].
    #[arg(long, env = "CRTASK_CONTEXT_MAX_NAME", value_name = "BYTES")]
    context_max_name: Option<usize>,
    /// Bytes an uploaded context may take on disk, unpacked (each entry
    /// counts at least 4 KiB) [default: twice --context-limit].
    #[arg(long, env = "CRTASK_CONTEXT_DISK_LIMIT", value_name = "BYTES")]
    context_disk_limit: Option<u64>,
    /// Seconds an uploaded context no run has taken is kept [default: 3600].
    #[arg(long, env = "CRTASK_UPLOAD_MAX_AGE", value_name = "SECS")]
    upload_max_age: Option<u64>,
}

impl From<LimitArgs> for LimitSettings {
    fn from(a: LimitArgs) -> Self {
        LimitSettings {
            header_timeout: a.header_timeout,
            body_timeout: a.body_timeout,
            idle_timeout: a.idle_timeout,
            max_connections: a.max_connections,
            body_budget: a.body_budget,
            context_max_entries: a.context_max_entries,
            context_max_name: a.context_max_name,
            context_disk_limit: a.context_disk_limit,
            upload_max_age: a.upload_max_age,
        }
    }
}
