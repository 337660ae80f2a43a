//! Every error answer is `{"error": "..."}` (docs/API.md), including the
//! ones crtask's handlers never see: axum's extractor rejections (malformed
//! JSON 400, wrong content type 415, unprocessable body 422, over the body
//! limit 413), unknown routes (404) and wrong methods (405), and whatever a
//! layer in front of the routes answers.
//!
//! Hand-written: a `map_response`-style layer is the whole job, and no
//! maintained crate rewrites framework rejections into one JSON shape.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use crtask_core::domain::api::ErrorBody;

/// Longest error text taken over from a non-JSON answer; framework
/// messages are one line, so more would be someone else's page.
const MAX_TEXT: usize = 4096;

/// Longest request path quoted back in a message.
const MAX_PATH: usize = 200;

/// An error answer in the documented shape.
pub fn error_response(status: StatusCode, error: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: error.into(),
        }),
    )
        .into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json") || v.to_ascii_lowercase().ends_with("+json")
        })
}

/// The request path as quoted in messages: at most [`MAX_PATH`] characters
/// (a path has no control characters: the HTTP parser refuses them).
fn quoted_path(path: &str) -> String {
    match path.char_indices().nth(MAX_PATH) {
        Some((i, _)) => format!("{}...", &path[..i]),
        None => path.to_string(),
    }
}

/// The message for an error answer that came without one.
fn default_message(status: StatusCode, method: &Method, path: &str) -> String {
    let path = quoted_path(path);
    match status {
        StatusCode::NOT_FOUND => format!("no such route: {method} {path}"),
        StatusCode::METHOD_NOT_ALLOWED => format!("method {method} is not allowed on {path}"),
        s => s
            .canonical_reason()
            .map(|r| r.to_lowercase())
            .unwrap_or_else(|| format!("error {}", s.as_u16())),
    }
}

/// Middleware: rewrites any 4xx/5xx answer that is not JSON into
/// `{"error": "<its text>"}`, keeping the status and the other headers
/// (`Allow` on a 405, `WWW-Authenticate` on a 401).
pub async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(resp.headers()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let error = if text.is_empty() {
        default_message(status, &method, &path)
    } else {
        text
    };
    let json = serde_json::to_vec(&ErrorBody { error }).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_types_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for (v, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/problem+json", true),
            ("text/plain; charset=utf-8", false),
            ("application/jsonx", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            assert_eq!(is_json(&h), json, "{v}");
        }
    }

    #[test]
    fn messages_for_empty_answers_name_the_request() {
        let m = default_message(StatusCode::NOT_FOUND, &Method::GET, "/x");
        assert_eq!(m, "no such route: GET /x");
        let m = default_message(StatusCode::METHOD_NOT_ALLOWED, &Method::DELETE, "/healthz");
        assert_eq!(m, "method DELETE is not allowed on /healthz");
        let m = default_message(StatusCode::REQUEST_TIMEOUT, &Method::GET, "/");
        assert_eq!(m, "request timeout");
        let long = format!("/{}", "a".repeat(500));
        let m = default_message(StatusCode::NOT_FOUND, &Method::GET, &long);
        assert_eq!(m.len(), "no such route: GET ".len() + MAX_PATH + 3);
    }
}
