//! HTTP requests by method, route template and status, with latency.
//!
//! The route is the template the router matched (`/v2/deployments/{id}`),
//! never the raw path, so ids never become labels. A wildcard route
//! (`/v2/apps/{*rest}`) serves several resources; the API's `refine` names
//! the finer template a path under it has (`/v2/apps/{id}/tasks`).

use super::Metrics;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// The finer template of `path`, which matched the wildcard route
/// `matched`; `None` keeps `matched`.
pub type Refine = fn(matched: &str, path: &str) -> Option<&'static str>;

/// The middleware's state.
#[derive(Clone)]
pub struct Tracking {
    pub metrics: Metrics,
    pub refine: Refine,
}

/// What a request that matched no route is labelled.
const UNMATCHED: &str = "unmatched";

/// Middleware: records every request once its answer is ready.
pub async fn track(State(tracking): State<Tracking>, request: Request, next: Next) -> Response {
    let Some(started) = tracking.metrics.start() else {
        return next.run(request).await;
    };
    let method = method_name(request.method());
    let route: std::borrow::Cow<'static, str> = match request.extensions().get::<MatchedPath>() {
        Some(matched) => match (tracking.refine)(matched.as_str(), request.uri().path()) {
            Some(template) => template.into(),
            None => matched.as_str().to_owned().into(),
        },
        None => UNMATCHED.into(),
    };
    let response = next.run(request).await;
    let status = response.status().as_u16();
    tracking
        .metrics
        .http_request(method, &route, status, started.elapsed());
    response
}

/// Methods by name; anything else (a client may send any token) is `other`.
fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Format, Observed};
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    fn refine(matched: &str, path: &str) -> Option<&'static str> {
        let rest = path.strip_prefix("/apps/")?;
        (matched == "/apps/{*rest}" && rest.ends_with("/tasks")).then_some("/apps/{id}/tasks")
    }

    #[tokio::test]
    async fn requests_are_labelled_by_template_never_by_path() {
        let metrics = Metrics::on();
        let tracking = Tracking {
            metrics: metrics.clone(),
            refine,
        };
        let router = Router::new()
            .route("/items/{id}", get(|| async { "ok" }))
            .route("/apps/{*rest}", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(tracking, track));
        for uri in [
            "/items/1",
            "/items/2",
            "/apps/a/b/tasks",
            "/apps/c",
            "/nowhere/secret",
        ] {
            let request = axum::http::Request::builder()
                .uri(uri)
                .method(if uri == "/items/2" { "BREW" } else { "GET" })
                .body(Body::empty())
                .unwrap();
            router.clone().oneshot(request).await.unwrap();
        }
        let text = metrics.render(&Observed::default(), Format::Text).unwrap();
        for line in [
            r#"stride_http_requests_total{method="GET",route="/items/{id}",status="200"} 1"#,
            r#"stride_http_requests_total{method="other",route="/items/{id}",status="405"} 1"#,
            r#"stride_http_requests_total{method="GET",route="/apps/{id}/tasks",status="200"} 1"#,
            r#"stride_http_requests_total{method="GET",route="/apps/{*rest}",status="200"} 1"#,
            r#"stride_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("secret") && !text.contains("a/b"), "{text}");
    }
}
