//! `GET /api/v1/graph` (the image dependency graph, with what rebuilds when
//! each image moves) and `GET /api/v1/timers` (every task's timers with
//! their next fire time). Read-only; the caller puts them behind its token
//! check.

use crate::Result;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use crtask_core::overview::{graph, timers};
use crtask_core::ports::{Clock, Store};
use std::sync::Arc;

/// What the overview routes read.
#[derive(Clone)]
pub struct Overview {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

/// The routes, with their state applied.
pub fn routes(o: Overview) -> Router {
    Router::new()
        .route("/api/v1/graph", get(dependency_graph))
        .route("/api/v1/timers", get(list_timers))
        .with_state(o)
}

async fn dependency_graph(State(o): State<Overview>) -> Result<Json<graph::Graph>> {
    Ok(Json(graph::load(o.store.as_ref()).await?))
}

async fn list_timers(State(o): State<Overview>) -> Result<Json<Vec<timers::TimerView>>> {
    Ok(Json(timers::load(o.store.as_ref(), o.clock.now()).await?))
}
