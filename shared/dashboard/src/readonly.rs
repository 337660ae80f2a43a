//! The read-only API the UI calls, over any [`Store`]: what
//! `crtask dashboard` serves on loopback for the AWS platform, in the same
//! shapes as the local server's `/api/v1/` (docs/API.md), so one UI serves
//! both. Nothing here changes anything: every route is a `GET`.
//!
//! Access: the caller's AWS credentials stand behind these routes, so they
//! need a token ([`Access`]): `crtask dashboard` makes a random one at start
//! and prints the page's address with it (`/#token=...`, a fragment the
//! browser never sends). The page keeps it in `sessionStorage` and sends it
//! as `Authorization: Bearer`. Requests under a host name other than an IP
//! address or `localhost` are refused too (DNS rebinding).

use crate::overview::{self, Overview};
use crate::{Error, Result};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use crtask_core::domain::api::ErrorBody;
use crtask_core::domain::host::is_ip_or_localhost;
use crtask_core::domain::model::{BaseDependency, EventRecord, Run, Task};
use crtask_core::overview::listing;
use crtask_core::ports::{Clock, Store};
use crtask_core::signing::{token_matches_any, Secret};
use serde::Deserialize;
use std::sync::Arc;

/// Where a run's log comes from.
#[async_trait::async_trait]
pub trait Logs: Send + Sync {
    /// The run's log from byte `offset`; empty when there is none (yet).
    async fn read(&self, run: &Run, offset: u64) -> Result<Vec<u8>>;
}

/// Who may call the routes: the holder of this token.
#[derive(Clone)]
pub struct Access {
    token: Arc<Secret>,
}

impl Access {
    pub fn new(token: Secret) -> Access {
        Access {
            token: Arc::new(token),
        }
    }

    /// Whether a request with these headers may read.
    pub fn allows(
        &self,
        headers: &HeaderMap,
    ) -> std::result::Result<(), (StatusCode, &'static str)> {
        if let Some(host) = headers.get(header::HOST) {
            let ok = host.to_str().is_ok_and(is_ip_or_localhost);
            if !ok {
                return Err((
                    StatusCode::FORBIDDEN,
                    "the dashboard answers only requests addressed to localhost or an IP address",
                ));
            }
        }
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty());
        match token {
            None => Err((
                StatusCode::UNAUTHORIZED,
                "this API needs a token: send Authorization: Bearer <token>",
            )),
            Some(t) if token_matches_any(t, &[self.token.as_ref()]) => Ok(()),
            Some(_) => Err((StatusCode::UNAUTHORIZED, "the API token is wrong")),
        }
    }
}

async fn require(State(access): State<Access>, req: Request, next: Next) -> Response {
    match access.allows(req.headers()) {
        Ok(()) => next.run(req).await,
        Err((status, msg)) => {
            let mut resp = (
                status,
                Json(ErrorBody {
                    error: msg.to_string(),
                }),
            )
                .into_response();
            if status == StatusCode::UNAUTHORIZED {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"crtask\""),
                );
            }
            resp
        }
    }
}

#[derive(Clone)]
struct Ro {
    store: Arc<dyn Store>,
    logs: Arc<dyn Logs>,
}

/// The page, its assets and the read-only API behind `access`.
pub fn router(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    logs: Arc<dyn Logs>,
    access: Access,
) -> Router {
    let api = Router::new()
        .route("/api/v1/runs", get(list_runs))
        .route("/api/v1/runs/{id}", get(show_run))
        .route("/api/v1/runs/{id}/log", get(run_log))
        .route("/api/v1/tasks", get(list_tasks))
        .route("/api/v1/tasks/{name}", get(show_task))
        .route("/api/v1/tasks/{name}/dependencies", get(task_dependencies))
        .route("/api/v1/events", get(list_events))
        .with_state(Ro {
            store: store.clone(),
            logs,
        })
        .merge(overview::routes(Overview { store, clock }))
        .route_layer(middleware::from_fn_with_state(access, require));
    Router::new()
        .merge(api)
        .merge(crate::assets::router())
        .fallback(|| async { Error::Core(crtask_core::Error::not_found("route", "this path")) })
        .layer(middleware::from_fn(crate::assets::security_headers))
}

async fn list_runs(
    State(s): State<Ro>,
    Query(q): Query<listing::RunsQuery>,
) -> Result<Json<Vec<serde_json::Value>>> {
    Ok(Json(listing::runs(s.store.as_ref(), q).await?))
}

async fn get_run(s: &Ro, id: &str) -> Result<Run> {
    s.store
        .get_run(id)
        .await?
        .ok_or_else(|| crtask_core::Error::not_found("run", id).into())
}

async fn show_run(State(s): State<Ro>, Path(id): Path<String>) -> Result<Json<serde_json::Value>> {
    Ok(Json(crtask_core::service::run_json(
        &get_run(&s, &id).await?,
    )))
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    offset: u64,
}

async fn run_log(
    State(s): State<Ro>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response> {
    let run = get_run(&s, &id).await?;
    let bytes = s.logs.read(&run, q.offset).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response())
}

async fn list_tasks(State(s): State<Ro>) -> Result<Json<Vec<Task>>> {
    Ok(Json(
        crtask_core::overview::listing::tasks(s.store.as_ref()).await?,
    ))
}

async fn find_task(s: &Ro, name: &str) -> Result<Task> {
    s.store
        .get_task(name)
        .await?
        .ok_or_else(|| crtask_core::Error::not_found("task", name).into())
}

async fn show_task(State(s): State<Ro>, Path(name): Path<String>) -> Result<Json<Task>> {
    Ok(Json(find_task(&s, &name).await?.redacted()))
}

async fn task_dependencies(
    State(s): State<Ro>,
    Path(name): Path<String>,
) -> Result<Json<Vec<BaseDependency>>> {
    find_task(&s, &name).await?;
    Ok(Json(s.store.dependencies_of(&name).await?))
}

async fn list_events(
    State(s): State<Ro>,
    Query(q): Query<listing::EventsQuery>,
) -> Result<Json<Vec<EventRecord>>> {
    Ok(Json(listing::events(s.store.as_ref(), q).await?))
}

#[cfg(test)]
mod tests;
