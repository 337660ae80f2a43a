//! The UI's files, embedded in the binary (no CDN, no build step: plain
//! HTML, CSS and JavaScript), served with security headers.
//!
//! `include_str!` is all this needs: four fixed files, no directory walk,
//! so no embedding crate.
//!
//! The page holds no data; its script fetches everything from `/api/v1/`
//! with the API token (kept in the tab's `sessionStorage`, sent as
//! `Authorization: Bearer`), and writes every string it received with
//! `textContent`, never as HTML. The policy below forbids inline scripts
//! and styles, other origins, framing and form posts, so even a string
//! that slipped through could not run.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");
const ICON: &str = include_str!("../assets/icon.svg");

/// The Content-Security-Policy of every dashboard answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// `/` (the page) and `/dashboard/*` (its script, style sheet and icon).
pub fn router() -> Router {
    Router::new()
        .route("/", get(|| file("text/html; charset=utf-8", INDEX)))
        .route(
            "/dashboard/app.js",
            get(|| file("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route(
            "/dashboard/app.css",
            get(|| file("text/css; charset=utf-8", STYLE)),
        )
        .route("/dashboard/icon.svg", get(|| file("image/svg+xml", ICON)))
        .layer(middleware::from_fn(security_headers))
}

async fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Middleware: the dashboard's security headers on every answer (the
/// API's JSON included, where the caller layers it): CSP, no MIME sniffing,
/// no referrer, no framing.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    async fn get_path(path: &str) -> Response {
        router()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn assets_are_served_with_their_types_and_the_policy() {
        for (path, ty) in [
            ("/", "text/html; charset=utf-8"),
            ("/dashboard/app.js", "text/javascript; charset=utf-8"),
            ("/dashboard/app.css", "text/css; charset=utf-8"),
            ("/dashboard/icon.svg", "image/svg+xml"),
        ] {
            let r = get_path(path).await;
            assert_eq!(r.status(), 200, "{path}");
            let h = r.headers();
            assert_eq!(h[header::CONTENT_TYPE], ty, "{path}");
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        }
        assert_eq!(get_path("/dashboard/nope.js").await.status(), 404);
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere_and_runs_no_inline_code() {
        assert!(!INDEX.contains("http://") && !INDEX.contains("https://"));
        assert!(
            !INDEX.contains("<script>"),
            "inline scripts are refused by the CSP"
        );
        assert!(
            !INDEX.contains("style="),
            "inline styles are refused by the CSP"
        );
        assert!(INDEX.contains(r#"<script src="/dashboard/app.js""#));
        // Data never reaches the page as HTML.
        assert!(!SCRIPT.contains("innerHTML"));
        assert!(!SCRIPT.contains("insertAdjacentHTML"));
        assert!(!SCRIPT.contains("document.write"));
        assert!(!SCRIPT.contains("eval("));
    }
}
