//! The HTTP server behind `crtask serve`, as two routers: the public one
//! (the webhook routes and `/healthz`) and the management API's (the CLI's
//! `/api/v1/`, documented in docs/API.md, and `/healthz`).

use crate::api_auth::{require_token, ApiAuth};
use crate::json_errors::json_errors;
use crate::worker::{RunEvents, WorkerConfig};
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use crtask_core::domain::api::{ErrorBody, QuickBuildRequest, TaskRunRequest, UploadResponse};
use crtask_core::domain::identity::RolePolicy;
use crtask_core::domain::model::{ContextSource, Task};
use crtask_core::ports::{Builder, Clock, Store};
use crtask_core::Error as CoreError;
use crtask_executor::logs::LogDir;
use futures_util::StreamExt;
use serde::Deserialize;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything a request handler may use.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub builder: Arc<dyn Builder>,
    pub clock: Arc<dyn Clock>,
    pub logs: LogDir,
    pub workers: WorkerConfig,
    pub events: Arc<RunEvents>,
    /// The git webhook secrets' files, checked at each delivery (read again
    /// when changed) so a rotated secret takes effect without a restart.
    pub git_secrets: Arc<crate::secret_files::SecretFiles>,
    /// Largest webhook body accepted, bytes.
    pub webhook_body_limit: usize,
    /// Registry notification credentials (bearer tokens; HMAC secrets).
    pub registry_token_files: Arc<Vec<PathBuf>>,
    pub registry_secret_files: Arc<Vec<PathBuf>>,
    /// The registry host as FROM lines name it (default: `--registry`).
    pub registry_host: Option<String>,
    /// The queue, for dispatching base-image runs after the settle window.
    pub queue: tokio::sync::mpsc::UnboundedSender<String>,
    /// Limits against stalled, oversized and hostile traffic.
    pub limits: crate::limits::Limits,
    /// Bytes of webhook bodies in memory at once.
    pub body_budget: crate::webhook_gate::BodyBudget,
    /// The store's notification outbox (`GET /api/v1/runs/{id}/notifications`).
    pub notifications: Option<crate::store::SqliteStore>,
}

/// Reads secret files (trimmed, empty ones skipped), warning about unreadable ones.
fn read_secret_files(files: &[PathBuf], what: &str) -> Vec<crtask_core::signing::Secret> {
    files
        .iter()
        .filter_map(|p| match std::fs::read_to_string(p) {
            Ok(t) => Some(crtask_core::signing::Secret::new(t.trim())),
            Err(e) => {
                tracing::warn!("cannot read {what} file {}: {e}", p.display());
                None
            }
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// An error answer with the right status code.
pub struct ApiError(StatusCode, String);

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let code = match &e {
            CoreError::Invalid(_) | CoreError::Template(_) => StatusCode::BAD_REQUEST,
            CoreError::NotFound { .. } => StatusCode::NOT_FOUND,
            CoreError::Conflict { .. } => StatusCode::CONFLICT,
            CoreError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            CoreError::Store(_) | CoreError::Builder(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, e.to_string())
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        CoreError::from(e).into()
    }
}

impl From<crtask_executor::Error> for ApiError {
    fn from(e: crtask_executor::Error) -> Self {
        CoreError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The public listener (`--listen`): the webhooks and `/healthz`, nothing
/// else. The management API is never served here (`/api/...` is a 404).
pub fn public_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/webhooks/git", post(git_webhook))
        .route("/webhooks/registry", post(registry_webhook))
        .fallback(public_not_found)
        .with_state(state)
        .layer(middleware::from_fn(json_errors))
}

/// The management API's listener (`--api-listen`): `/api/v1/` (everything
/// the CLI and the dashboard use, behind [`require_token`]), `/healthz`,
/// and the dashboard's page at `/`.
pub fn api_router(state: AppState, auth: ApiAuth) -> Router {
    let api = Router::new()
        .route("/api/v1/contexts", post(upload_context))
        .route("/api/v1/builds", post(quick_build))
        .route("/api/v1/patches", post(patch_image))
        .route(
            "/api/v1/patch-config",
            get(show_patch_config)
                .put(set_patch_config)
                .delete(delete_patch_config),
        )
        .route("/api/v1/runs", get(list_runs))
        .route("/api/v1/runs/{id}", get(show_run))
        .route("/api/v1/runs/{id}/cancel", post(cancel_run))
        .route("/api/v1/runs/{id}/log", get(run_log))
        .route("/api/v1/runs/{id}/notifications", get(run_notifications))
        .route("/api/v1/tasks", get(list_tasks).post(create_task))
        .route(
            "/api/v1/tasks/{name}",
            get(show_task).put(update_task).delete(delete_task),
        )
        .route("/api/v1/tasks/{name}/runs", post(run_task))
        .route("/api/v1/events", get(list_events))
        .route("/api/v1/images/dependents", get(image_dependents))
        .route("/api/v1/tasks/{name}/dependencies", get(task_dependencies))
        .with_state(state.clone())
        // The dashboard's read-only views (docs/DASHBOARD.md).
        .merge(crtask_dashboard::overview::routes(
            crtask_dashboard::overview::Overview {
                store: state.store.clone(),
                clock: state.clock.clone(),
            },
        ))
        .route_layer(middleware::from_fn_with_state(auth, require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
        .merge(api)
        // The dashboard's page and assets at `/`: public, they hold no data.
        .merge(crtask_dashboard::assets::router())
        .layer(middleware::from_fn(json_errors))
}

/// Unknown routes of the public listener; API paths say where the API is.
async fn public_not_found(uri: axum::http::Uri) -> ApiError {
    let msg = if uri.path() == "/api" || uri.path().starts_with("/api/") {
        "the management API is not served on this listener: it answers on the \
         server's --api-listen address (default 127.0.0.1:7879)"
            .to_string()
    } else {
        "no such route: this listener serves POST /webhooks/git, \
         POST /webhooks/registry and GET /healthz"
            .to_string()
    };
    ApiError(StatusCode::NOT_FOUND, msg)
}

async fn healthz(State(s): State<AppState>) -> ApiResult<&'static str> {
    s.store.ping().await?;
    Ok("ok\n")
}

/// Streams a tar.gz upload to disk (limit enforced as it arrives), then
/// extracts it safely; the extracted directory is the context's id.
async fn upload_context(
    State(s): State<AppState>,
    req: Request,
) -> ApiResult<(StatusCode, Json<UploadResponse>)> {
    let limit = s.workers.context_limit;
    let uploads = s.workers.uploads_dir();
    let dir = tempfile::Builder::new()
        .prefix("ctx-")
        .tempdir_in(&uploads)
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot store the upload: {e}"),
            )
        })?;
    let mut archive = tempfile::tempfile_in(&uploads).map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot store the upload: {e}"),
        )
    })?;
    let mut stream = req.into_body().into_data_stream();
    let mut received: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            let code = if crate::listener::is_body_timeout(&e) {
                StatusCode::REQUEST_TIMEOUT
            } else {
                StatusCode::BAD_REQUEST
            };
            ApiError(code, format!("upload interrupted: {e}"))
        })?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "context is larger than the server's limit of {} bytes",
                    limit
                ),
            ));
        }
        archive.write_all(&chunk).map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot store the upload: {e}"),
            )
        })?;
    }
    let dest = dir.path().to_path_buf();
    let unpack = s.limits.context.unpack(limit);
    let stats = tokio::task::spawn_blocking(move || {
        archive.seek(SeekFrom::Start(0))?;
        crtask_executor::context::unpack_limited(std::io::BufReader::new(archive), &dest, &unpack)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let kept = dir.keep();
    crate::sweeper::touch(&kept);
    let id = kept
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(UploadResponse {
            id,
            files: stats.files,
            bytes: stats.bytes,
        }),
    ))
}

fn valid_upload_id(id: &str) -> bool {
    id.starts_with("ctx-")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn quick_build(
    State(s): State<AppState>,
    Json(req): Json<QuickBuildRequest>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    if let ContextSource::Uploaded { id } = &req.context {
        if !valid_upload_id(id) || !s.workers.uploads_dir().join(id).is_dir() {
            return Err(CoreError::not_found("uploaded context", id.clone()).into());
        }
    }
    let run = crtask_core::service::quick_build(
        s.store.as_ref(),
        s.builder.as_ref(),
        s.clock.as_ref(),
        s.workers.registry.as_deref(),
        req,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(run_json(&run))))
}

async fn patch_image(
    State(s): State<AppState>,
    Json(req): Json<crtask_core::domain::api::PatchApiRequest>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let run = crtask_core::patch::queue::queue_patch(
        s.store.as_ref(),
        s.builder.as_ref(),
        s.clock.as_ref(),
        s.workers.registry.as_deref(),
        &req,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(run_json(&run))))
}

async fn set_patch_config(
    State(s): State<AppState>,
    Json(req): Json<crtask_core::domain::api::PatchConfigRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    use crtask_core::patch::continuous;
    if s.workers.registry.is_none() {
        return Err(CoreError::invalid(
            "continuous patching needs the server's registry: start it with --registry",
        )
        .into());
    }
    let now = s.clock.now();
    let schedule = continuous::PatchSchedule::from_request(&req, now)?;
    crate::patch_schedule::save(&s.workers.data_dir, &schedule)?;
    Ok(Json(schedule.describe(now)))
}

async fn show_patch_config(State(s): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    match crate::patch_schedule::load(&s.workers.data_dir)? {
        Some(c) => Ok(Json(c.describe(s.clock.now()))),
        None => Err(CoreError::not_found("continuous patching configuration", "default").into()),
    }
}

async fn delete_patch_config(State(s): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    if crate::patch_schedule::delete(&s.workers.data_dir)? {
        Ok(Json(serde_json::json!({"deleted": true})))
    } else {
        Err(CoreError::not_found("continuous patching configuration", "default").into())
    }
}

fn run_json(run: &crtask_core::domain::model::Run) -> serde_json::Value {
    crtask_core::service::run_json(run)
}

async fn list_runs(
    State(s): State<AppState>,
    Query(q): Query<crtask_core::overview::listing::RunsQuery>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    Ok(Json(
        crtask_core::overview::listing::runs(s.store.as_ref(), q).await?,
    ))
}

async fn get_run(s: &AppState, id: &str) -> ApiResult<crtask_core::domain::model::Run> {
    s.store
        .get_run(id)
        .await?
        .ok_or_else(|| CoreError::not_found("run", id).into())
}

async fn show_run(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(run_json(&get_run(&s, &id).await?)))
}

/// A run's notifications and every attempt to deliver them.
async fn run_notifications(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Json<Vec<crtask_core::notify::NotificationRecord>>> {
    get_run(&s, &id).await?;
    Ok(Json(match &s.notifications {
        Some(outbox) => outbox.notifications_of_run(&id).await?,
        None => Vec::new(),
    }))
}

async fn cancel_run(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let run = get_run(&s, &id).await?;
    if run.status.is_terminal() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("run {id} has already finished ({})", run.status),
        ));
    }
    s.builder.cancel(&id).await?;
    // Wait briefly for the worker to record the cancellation.
    for _ in 0..50 {
        let r = get_run(&s, &id).await?;
        if r.status.is_terminal() {
            return Ok(Json(run_json(&r)));
        }
        s.events.wait(Duration::from_millis(100)).await;
    }
    Ok(Json(run_json(&get_run(&s, &id).await?)))
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    follow: bool,
    #[serde(default)]
    offset: u64,
}

fn read_from(path: &std::path::Path, offset: u64) -> Vec<u8> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let _ = std::io::Read::by_ref(&mut f)
        .take(256 * 1024)
        .read_to_end(&mut buf);
    buf
}

/// The run's log from `offset`; with `follow`, the answer streams until the run ends.
async fn run_log(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Response> {
    get_run(&s, &id).await?;
    let path: PathBuf = s.logs.path(&id);
    if !q.follow {
        let mut out = Vec::new();
        let mut off = q.offset;
        loop {
            let chunk = read_from(&path, off);
            if chunk.is_empty() {
                break;
            }
            off += chunk.len() as u64;
            out.extend(chunk);
        }
        return Ok(([("content-type", "text/plain; charset=utf-8")], out).into_response());
    }
    struct Follow {
        s: AppState,
        id: String,
        path: PathBuf,
        offset: u64,
        finished: bool,
    }
    let st = Follow {
        s,
        id,
        path,
        offset: q.offset,
        finished: false,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            let chunk = read_from(&st.path, st.offset);
            if !chunk.is_empty() {
                st.offset += chunk.len() as u64;
                return Some((Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)), st));
            }
            if st.finished {
                return None;
            }
            match st.s.store.get_run(&st.id).await {
                Ok(Some(r)) if !r.status.is_terminal() => {
                    st.s.events.wait(Duration::from_millis(200)).await;
                }
                // Finished (or gone): read what is left once more, then end.
                _ => st.finished = true,
            }
        }
    });
    Ok((
        [
            ("content-type", "text/plain; charset=utf-8"),
            ("cache-control", "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn list_tasks(State(s): State<AppState>) -> ApiResult<Json<Vec<Task>>> {
    Ok(Json(
        crtask_core::overview::listing::tasks(s.store.as_ref()).await?,
    ))
}

async fn show_task(
    State(s): State<AppState>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<Task>> {
    let task = s
        .store
        .get_task(&name)
        .await?
        .ok_or_else(|| CoreError::not_found("task", name))?;
    Ok(Json(task.redacted()))
}

async fn create_task(
    State(s): State<AppState>,
    Json(task): Json<Task>,
) -> ApiResult<(StatusCode, Json<Task>)> {
    crtask_core::domain::identity::check(task.identity.as_deref(), RolePolicy::Local)?;
    let task = crtask_core::service::create_task(s.store.as_ref(), s.clock.as_ref(), task).await?;
    prescan(&s, &task).await;
    Ok((StatusCode::CREATED, Json(task.redacted())))
}

async fn update_task(
    State(s): State<AppState>,
    UrlPath(name): UrlPath<String>,
    Json(task): Json<Task>,
) -> ApiResult<Json<Task>> {
    crtask_core::domain::identity::check(task.identity.as_deref(), RolePolicy::Local)?;
    let task =
        crtask_core::service::update_task(s.store.as_ref(), s.clock.as_ref(), &name, task).await?;
    prescan(&s, &task).await;
    Ok(Json(task.redacted()))
}

async fn delete_task(
    State(s): State<AppState>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<StatusCode> {
    if s.store.delete_task(&name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(CoreError::not_found("task", name).into())
    }
}

async fn run_task(
    State(s): State<AppState>,
    UrlPath(name): UrlPath<String>,
    body: Option<Json<TaskRunRequest>>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let run = crtask_core::service::run_task(
        s.store.as_ref(),
        s.builder.as_ref(),
        s.clock.as_ref(),
        s.workers.registry.as_deref(),
        &name,
        &req.values,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(run_json(&run))))
}

fn header_pairs(h: &axum::http::HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_string(), v.to_string()))
        })
        .collect()
}

/// Reads a webhook body up to `limit` bytes, after the checks of
/// [`crate::webhook_gate`] (a credential header, before any of the body is
/// read; the memory budget). `Err` is the answer (401, 408, 413, 503), and
/// the refused delivery is recorded like any other. The budget is held until
/// the returned room is dropped.
async fn body_bytes(
    s: &AppState,
    source: crtask_core::domain::model::EventSource,
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<(bytes::Bytes, crate::webhook_gate::Reserved), Response> {
    use crate::webhook_gate::{read_body, require_credential};
    let received_at = s.clock.now();
    let read = async {
        require_credential(source, headers)?;
        let room = s.body_budget.reserve(headers, limit).await?;
        Ok((read_body(body, headers, limit).await?, room))
    };
    read.await.map_err(|refused: crate::webhook_gate::Refusal| {
        let (store, reason) = (s.store.clone(), refused.reason.clone());
        tokio::spawn(async move {
            if let Ok(id) = store.next_event_id().await {
                let _ = store
                    .record_event(&crtask_core::domain::model::EventRecord {
                        id,
                        source,
                        delivery_id: None,
                        received_at,
                        outcome: crtask_core::domain::model::Outcome::Rejected,
                        reason,
                        runs: Vec::new(),
                        detail: serde_json::json!({}),
                    })
                    .await;
            }
        });
        answer_response(crtask_core::trigger::answer::Answer::rejected(
            refused.status,
            refused.reason,
        ))
    })
}

/// A trigger handler's answer as an HTTP response.
fn answer_response(answer: crtask_core::trigger::answer::Answer) -> Response {
    let code = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(answer.body())).into_response()
}

/// `POST /webhooks/git`: GitHub, GitLab, Gitea/Forgejo and Bitbucket deliveries.
async fn git_webhook(State(s): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let (body, _room) = match body_bytes(
        &s,
        crtask_core::domain::model::EventSource::Git,
        &parts.headers,
        body,
        s.webhook_body_limit,
    )
    .await
    {
        Ok(b) => b,
        Err(r) => return r,
    };
    let secrets = s.git_secrets.current();
    let deps = crtask_core::trigger::git::handler::GitHookDeps {
        store: s.store.as_ref(),
        builder: s.builder.as_ref(),
        clock: s.clock.as_ref(),
        secrets: &secrets,
        body_limit: s.webhook_body_limit,
    };
    let answer =
        crtask_core::trigger::git::handler::handle(&deps, &header_pairs(&parts.headers), &body)
            .await;
    s.events.changed();
    answer_response(answer)
}

async fn list_events(
    State(s): State<AppState>,
    Query(q): Query<crtask_core::overview::listing::EventsQuery>,
) -> ApiResult<Json<Vec<crtask_core::domain::model::EventRecord>>> {
    Ok(Json(
        crtask_core::overview::listing::events(s.store.as_ref(), q).await?,
    ))
}

/// Scans a task's Dockerfile when its context is readable here (a local
/// directory), so base-image updates reach it before its first run
/// ([`crtask_core::service::prescan`]). Anything unreadable is left to the
/// first run.
async fn prescan(s: &AppState, task: &Task) {
    let Ok(ContextSource::LocalDir { path }) = ContextSource::parse_task_context(&task.context)
    else {
        return;
    };
    let Some(file) =
        crtask_executor::fsutil::resolve_inside(std::path::Path::new(&path), &task.file)
    else {
        return;
    };
    let Ok(text) = tokio::fs::read_to_string(&file).await else {
        return;
    };
    if let Err(e) = crtask_core::service::prescan(s.store.as_ref(), task, &text).await {
        tracing::warn!(task = %task.name, error = %e, "cannot record the task's base images");
    }
}

/// `POST /webhooks/registry`: CNCF distribution notifications (and ECR
/// EventBridge events), authenticated by bearer token or HMAC signature.
async fn registry_webhook(State(s): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let (body, _room) = match body_bytes(
        &s,
        crtask_core::domain::model::EventSource::Registry,
        &parts.headers,
        body,
        s.webhook_body_limit,
    )
    .await
    {
        Ok(b) => b,
        Err(r) => return r,
    };
    let tokens = read_secret_files(&s.registry_token_files, "registry webhook token");
    let secrets = read_secret_files(&s.registry_secret_files, "registry webhook secret");
    let deps = crtask_core::trigger::registry::handler::UpdateDeps {
        store: s.store.as_ref(),
        clock: s.clock.as_ref(),
        registry: s.workers.registry.as_deref(),
    };
    let auth = crtask_core::trigger::registry::handler::RegistryAuth {
        tokens: &tokens,
        hmac_secrets: &secrets,
        registry_host: s.registry_host.as_deref(),
    };
    let (answer, runs) = crtask_core::trigger::registry::handler::handle(
        &deps,
        &auth,
        &header_pairs(&parts.headers),
        &body,
    )
    .await;
    crate::worker::dispatch_later(
        s.queue.clone(),
        runs.into_iter().map(|r| r.run_id).collect(),
        s.workers.settle_window,
    );
    s.events.changed();
    answer_response(answer)
}

#[derive(Deserialize)]
struct ImageQuery {
    image: String,
}

/// Which tasks rebuild when `image` changes.
async fn image_dependents(
    State(s): State<AppState>,
    Query(q): Query<ImageQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        crtask_core::service::dependents(s.store.as_ref(), &q.image).await?,
    ))
}

async fn task_dependencies(
    State(s): State<AppState>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<Vec<crtask_core::domain::model::BaseDependency>>> {
    s.store
        .get_task(&name)
        .await?
        .ok_or_else(|| CoreError::not_found("task", name.clone()))?;
    Ok(Json(s.store.dependencies_of(&name).await?))
}
