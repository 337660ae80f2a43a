//! Serving one listener: the only place `crtask serve` hands a socket to
//! the HTTP stack, for the public listener and the API's alike, so that
//! what applies to every connection is set here once.

use crate::{Error, Result};
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Binds `addr`; `what` names the flag in the error (`--listen`).
pub async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("{what}: cannot listen on {addr}: {e}")))
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// requests in progress finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
