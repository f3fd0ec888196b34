//! The web UI at `/ui`: static ES modules compiled into the binary, so a
//! fresh machine serves it with no build step. Everything it shows comes
//! from the public API (`/v1/state`, `/v1/stream`, `/v2/...`); this module
//! only hands out the files.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($path:literal: $content_type:expr),* $(,)?) => {
        [$(Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("assets/", $path)),
        }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: [Asset; 17] = assets![
    "index.html": "text/html; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "main.js": JS,
    "api.js": JS,
    "live.js": JS,
    "fold.js": JS,
    "format.js": JS,
    "chart.js": JS,
    "metrics.js": JS,
    "apps.js": JS,
    "app.js": JS,
    "actions.js": JS,
    "deployments.js": JS,
    "events.js": JS,
    "audit.js": JS,
    "logs.js": JS,
    "vendor/htm-preact.js": JS,
];

/// One tag for the whole set: the assets change only with the binary.
static ETAG: LazyLock<HeaderValue> = LazyLock::new(|| {
    let mut hasher = DefaultHasher::new();
    for asset in &ASSETS {
        asset.path.hash(&mut hasher);
        asset.body.hash(&mut hasher);
    }
    HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish())).expect("hex is a header")
});

/// `index.html` with a `modulepreload` link for every module, so the
/// browser fetches them all at once rather than one import level after
/// another.
static INDEX: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let links: String = ASSETS
        .iter()
        .filter(|asset| asset.content_type == JS)
        .map(|asset| format!("<link rel=\"modulepreload\" href=\"{}\">\n", asset.path))
        .collect();
    let index = ASSETS
        .iter()
        .find(|asset| asset.path == "index.html")
        .map(|asset| String::from_utf8_lossy(asset.body))
        .expect("index.html is an asset");
    index.replace("<!-- modules -->\n", &links).into_bytes()
});

/// The page may talk only to the server that served it (the API and its
/// websocket), and never runs inline script.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        // Relative module imports need the trailing slash.
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move { serve(&path, &headers) }),
        )
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.path == path) else {
        return (StatusCode::NOT_FOUND, format!("no UI file {path}")).into_response();
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag == *ETAG);
    let mut response = match fresh {
        true => StatusCode::NOT_MODIFIED.into_response(),
        false if asset.path == "index.html" => INDEX.as_slice().into_response(),
        false => asset.body.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Revalidated every load (a 304 costs one round trip), so a new binary
    // is picked up at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::ETAG, ETAG.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(uri: &str, etag: Option<&HeaderValue>) -> Response {
        let mut request = Request::builder().uri(uri);
        if let Some(tag) = etag {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        router::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_asset_is_served_with_its_type_and_revalidated_by_tag() {
        for asset in &ASSETS {
            let response = get(&format!("/ui/{}", asset.path), None).await;
            assert_eq!(response.status(), StatusCode::OK, "{}", asset.path);
            assert_eq!(response.headers()[header::CONTENT_TYPE], asset.content_type);
            let tag = response.headers()[header::ETAG].clone();
            let again = get(&format!("/ui/{}", asset.path), Some(&tag)).await;
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{}", asset.path);
        }
        let index = get("/ui/", None).await;
        let body = axum::body::to_bytes(index.into_body(), 1 << 20)
            .await
            .unwrap();
        let index = String::from_utf8_lossy(&body);
        for module in ASSETS.iter().filter(|a| a.content_type == JS) {
            let link = format!("<link rel=\"modulepreload\" href=\"{}\">", module.path);
            assert!(index.contains(&link), "{index}");
        }
        let redirect = get("/ui", None).await;
        assert_eq!(redirect.headers()[header::LOCATION], "/ui/");
        assert_eq!(
            get("/ui/../Cargo.toml", None).await.status(),
            StatusCode::NOT_FOUND
        );
    }

    /// Every module the page imports is one the server hands out.
    #[test]
    fn every_import_is_an_asset() {
        let imports = regex::Regex::new(r#"from\s+'\./([^']+)'"#).unwrap();
        for asset in ASSETS.iter().filter(|a| a.content_type == JS) {
            let text = std::str::from_utf8(asset.body).unwrap();
            for import in imports.captures_iter(text) {
                let base = asset.path.rsplit_once('/').map_or("", |(dir, _)| dir);
                let target = match base {
                    "" => import[1].to_owned(),
                    dir => format!("{dir}/{}", &import[1]),
                };
                assert!(
                    ASSETS.iter().any(|a| a.path == target),
                    "{} imports {target}, which is not served",
                    asset.path
                );
            }
        }
    }
}
