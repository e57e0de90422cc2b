//! The dashboard (`/api/dashboard/`) and the interactive API docs (`/api/docs`, Swagger UI), served from files
//! embedded at build time: no CDN, no requests to other origins, and a strict Content-Security-Policy (scripts
//! and styles only from these files; the API is the only thing fetched).

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorCode};

/// (path under `/api/dashboard/`, content type, bytes, long-lived cache).
const FILES: &[(&str, &str, &[u8], bool)] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("../../../assets/dashboard/index.html"), false),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../../assets/dashboard/app.js"), false),
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../../assets/dashboard/app.css"), false),
    ("docs.js", "text/javascript; charset=utf-8", include_bytes!("../../../assets/dashboard/docs.js"), false),
    ("vendor/uplot/uPlot.iife.min.js", "text/javascript; charset=utf-8", include_bytes!("../../../assets/vendor/uplot/uPlot.iife.min.js"), true),
    ("vendor/uplot/uPlot.min.css", "text/css; charset=utf-8", include_bytes!("../../../assets/vendor/uplot/uPlot.min.css"), true),
    ("vendor/uplot/LICENSE", "text/plain; charset=utf-8", include_bytes!("../../../assets/vendor/uplot/LICENSE"), true),
    (
        "vendor/swagger-ui/swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/vendor/swagger-ui/swagger-ui-bundle.js"),
        true,
    ),
    ("vendor/swagger-ui/swagger-ui.css", "text/css; charset=utf-8", include_bytes!("../../../assets/vendor/swagger-ui/swagger-ui.css"), true),
    ("vendor/swagger-ui/LICENSE", "text/plain; charset=utf-8", include_bytes!("../../../assets/vendor/swagger-ui/LICENSE"), true),
    ("vendor/swagger-ui/NOTICE", "text/plain; charset=utf-8", include_bytes!("../../../assets/vendor/swagger-ui/NOTICE"), true),
    (
        "vendor/swagger-ui/swagger-ui-bundle.js.LICENSE.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../../../assets/vendor/swagger-ui/swagger-ui-bundle.js.LICENSE.txt"),
        true,
    ),
];

const DOCS_PAGE: &[u8] = include_bytes!("../../../assets/dashboard/docs.html");

/// The dashboard's policy: everything from this origin only, no inline script or style, no framing.
pub const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// Swagger UI sets inline styles on its elements; scripts stay file-only.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn respond(content_type: &'static str, body: &'static [u8], csp: &'static str, immutable: bool) -> Response {
    let cache = if immutable { "public, max-age=86400" } else { "no-cache" };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}

/// `/api/dashboard/` and its files.
pub async fn dashboard_file(path: Option<Path<String>>) -> Response {
    let wanted = path.map(|Path(p)| p).unwrap_or_default();
    let wanted = if wanted.is_empty() { "index.html" } else { wanted.as_str() };
    match FILES.iter().find(|(name, ..)| *name == wanted) {
        Some((_, content_type, body, immutable)) => respond(content_type, body, DASHBOARD_CSP, *immutable),
        None => ApiError::new(ErrorCode::NotFound, "no such dashboard file").into_response(),
    }
}

/// `/api/docs`: Swagger UI over `/api/openapi.json`.
pub async fn docs_page() -> Response {
    respond("text/html; charset=utf-8", DOCS_PAGE, DOCS_CSP, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_pages_load_is_served_from_this_origin() {
        for page in [include_str!("../../../assets/dashboard/index.html"), include_str!("../../../assets/dashboard/docs.html")] {
            for reference in page.split(['"', '\'']).filter(|s| s.starts_with("/api/dashboard/")) {
                let name = &reference["/api/dashboard/".len()..];
                assert!(FILES.iter().any(|(f, ..)| *f == name), "{reference} is not served");
            }
            assert!(!page.contains("http://") && !page.contains("https://"), "no other origin");
            assert!(!page.contains("<script>") && !page.contains("style="), "no inline script or style under the policy");
        }
    }
}
