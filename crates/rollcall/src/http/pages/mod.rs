//! The kiosk (`/`) and admin (`/admin`) pages and their assets, compiled into the binary.
//!
//! Plain HTML, CSS and JavaScript with no build step and nothing fetched from the internet at run
//! time. Pages reference their assets as `/assets/NAME?v=HASH` (the hash of the asset's bytes,
//! filled in once at start-up), so assets can be cached for a year while a new binary still
//! serves fresh ones; the pages themselves are always revalidated.

use super::error::ApiError;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::LazyLock;

/// One file served under `/assets/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("static/", $name)),
        }
    };
}

static ASSETS: &[Asset] = &[
    asset!("common.js", "text/javascript; charset=utf-8"),
    asset!("kiosk.js", "text/javascript; charset=utf-8"),
    asset!("admin.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
];

const KIOSK_HTML: &str = include_str!("static/kiosk.html");
const ADMIN_HTML: &str = include_str!("static/admin.html");

/// Same-origin only: the pages talk to this server and nothing else, and no inline script runs.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' blob: data:; \
media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
frame-ancestors 'none'; form-action 'self'";

/// The pages with each asset URL carrying its content hash.
struct Pages {
    kiosk: String,
    admin: String,
    /// `"HASH"` per asset, in `ASSETS` order: the ETag and the `?v=` value.
    etags: Vec<String>,
}

static PAGES: LazyLock<Pages> = LazyLock::new(|| {
    let hashes: Vec<String> = ASSETS
        .iter()
        .map(|a| format!("{:016x}", fnv1a(a.bytes)))
        .collect();
    let versioned = |html: &str| {
        ASSETS
            .iter()
            .zip(&hashes)
            .fold(html.to_owned(), |html, (asset, hash)| {
                let plain = format!("\"/assets/{}\"", asset.name);
                html.replace(&plain, &format!("\"/assets/{}?v={hash}\"", asset.name))
            })
    };
    Pages {
        kiosk: versioned(KIOSK_HTML),
        admin: versioned(ADMIN_HTML),
        etags: hashes.iter().map(|h| format!("\"{h}\"")).collect(),
    }
});

/// FNV-1a: a stable content hash for cache busting (not a security boundary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `GET /`, `GET /admin` and `GET /assets/{*path}`; stateless, so it merges into any router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(kiosk))
        .route("/admin", get(admin))
        .route("/assets/{*path}", get(asset))
}

#[utoipa::path(
    get,
    path = "/",
    tag = "pages",
    responses((status = 200, description = "The kiosk page", body = String, content_type = "text/html"))
)]
pub async fn kiosk() -> Response {
    page(&PAGES.kiosk)
}

#[utoipa::path(
    get,
    path = "/admin",
    tag = "pages",
    responses((status = 200, description = "The admin page", body = String, content_type = "text/html"))
)]
pub async fn admin() -> Response {
    page(&PAGES.admin)
}

fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/assets/{path}",
    tag = "pages",
    params(("path" = String, Path, description = "The asset's file name, e.g. `kiosk.js`")),
    responses(
        (status = 200, description = "The script, style sheet or icon"),
        (status = 304, description = "Unchanged since the `If-None-Match` ETag"),
        (status = 404, description = "No such asset"),
    )
)]
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == path) else {
        return ApiError::not_found(format!("no asset named `{path}`")).into_response();
    };
    let asset = &ASSETS[index];
    let etag = PAGES.etags[index].as_str();
    let cache = [
        (header::ETAG, HeaderValue::from_static(etag)),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let revalidated = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if revalidated {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    )];
    (content_type, cache, asset.bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(uri: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(uri);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        router::<()>()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    #[tokio::test]
    async fn pages_are_html_and_reference_versioned_assets() {
        for uri in ["/", "/admin"] {
            let response = get(uri, None).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/html; charset=utf-8"
            );
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            let html = String::from_utf8(body.to_vec()).expect("utf-8");
            assert!(html.contains("/assets/common.js?v="), "{uri}: {html}");
            assert!(html.contains("/assets/style.css?v="), "{uri}: {html}");
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "{uri} loads from the internet"
            );
        }
    }

    #[tokio::test]
    async fn assets_have_types_and_cache_headers() {
        for (name, kind) in [
            ("kiosk.js", "text/javascript"),
            ("admin.js", "text/javascript"),
            ("style.css", "text/css"),
            ("icon.svg", "image/svg+xml"),
        ] {
            let response = get(&format!("/assets/{name}"), None).await;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            let content_type = response.headers()[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii");
            assert!(content_type.starts_with(kind), "{name}: {content_type}");
            assert!(response.headers()[header::CACHE_CONTROL]
                .to_str()
                .expect("ascii")
                .contains("max-age"));
            let etag = response.headers()[header::ETAG]
                .to_str()
                .expect("ascii")
                .to_owned();
            let again = get(&format!("/assets/{name}"), Some(&etag)).await;
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{name}");
        }
    }

    #[tokio::test]
    async fn unknown_assets_are_404() {
        for uri in ["/assets/nope.js", "/assets/../Cargo.toml"] {
            let response = get(uri, None).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/json",
                "{uri}"
            );
        }
        // No name at all does not reach the asset handler: the app's fallback answers it.
        assert_eq!(get("/assets/", None).await.status(), StatusCode::NOT_FOUND);
    }
}
