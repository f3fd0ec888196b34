//! `GET /metrics`: what the metrics handle recorded, with what is read
//! now from the projection, the stream and the callbacks.

use super::app_routes::AppRoute;
use super::groups::GroupRoute;
use super::{ApiError, Shared, queue};
use crate::metrics::{CallbackObserved, Format, Observed, StreamObserved};
use crate::stream::Protocol;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use stride_log::event::condition::Condition;
use stride_runtime::clock::now_micros;

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "server",
    summary = "Prometheus metrics (docs/metrics.md)",
    responses(
        (status = 200, description = "OpenMetrics when Accept asks for it, else the text format 0.0.4", body = String, content_type = "text/plain"),
        (status = 404, response = crate::api::openapi::NotFound),
    )
)]
pub async fn metrics(
    State(shared): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !shared.metrics.is_on() {
        return Err(ApiError::NotFound(
            "metrics are off on this server (--no-metrics)".into(),
        ));
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    // Counting tasks reads the whole projection: off the async workers.
    let body = tokio::task::spawn_blocking(move || {
        let observed = observe(&shared);
        shared.metrics.render(&observed, format)
    })
    .await
    .map_err(ApiError::internal)?
    .unwrap_or_default();
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// The template of a path under a wildcard route: which app or group
/// resource it is.
pub fn refine(matched: &str, path: &str) -> Option<&'static str> {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .filter(|_| matched.starts_with(prefix))
    };
    if let Some(rest) = under("/v2/apps/") {
        return Some(AppRoute::parse(rest).template());
    }
    if let Some(rest) = under("/v2/groups/") {
        return Some(GroupRoute::parse(rest).template());
    }
    under("/v1/apps/")
        .filter(|rest| rest.trim_end_matches('/').ends_with("/diff"))
        .map(|_| "/v1/apps/{id}/diff")
}

fn observe(shared: &Shared) -> Observed {
    let head = shared.projection.head().0;
    let mut observed = Observed {
        head_seq: head,
        now_micros: now_micros(),
        streams: streams(shared, head),
        sidecars: shared
            .sidecars
            .all()
            .into_iter()
            .map(|s| (s.name, s.applied_seq.0))
            .collect(),
        callbacks: shared
            .callbacks
            .statuses()
            .into_iter()
            .map(|status| CallbackObserved {
                endpoint: endpoint(&status.callback_url),
                delivered: status.delivered,
                failed: status.failed_attempts,
                cursor: status.cursor.0,
            })
            .collect(),
        ..Observed::default()
    };
    let state = shared.projection.read();
    for task in state.tasks.values() {
        *observed
            .tasks
            .entry(condition_name(task.condition))
            .or_default() += 1;
        if !task.condition.is_terminal() {
            let health = match task.healthy {
                Some(true) => "healthy",
                Some(false) => "unhealthy",
                None => "unknown",
            };
            *observed.task_health.entry(health).or_default() += 1;
        }
    }
    observed.apps = state.apps.len() as u64;
    observed.deployments = state.deployments.len() as u64;
    for (entry, _) in queue::waiting(shared, &state, &stride_auth::Scope::All) {
        observed.queue_apps += 1;
        observed.queue_instances += u64::from(entry.count);
    }
    observed
}

/// Subscribers and the furthest one behind, for each protocol.
fn streams(shared: &Shared, head: u64) -> Vec<StreamObserved> {
    let positions = shared.stream.positions();
    [(Protocol::Websocket, "websocket"), (Protocol::Sse, "sse")]
        .into_iter()
        .map(|(protocol, name)| {
            let lags = positions
                .iter()
                .filter(|(p, _)| *p == protocol)
                .map(|(_, sent)| head.saturating_sub(sent.0));
            StreamObserved {
                protocol: name,
                subscribers: lags.clone().count() as u64,
                max_lag: lags.max().unwrap_or(0),
            }
        })
        .collect()
}

/// A callback URL as a label: scheme, host, port and path; a password or
/// a token in the query never reaches a dashboard.
fn endpoint(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or_default();
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}{}", parsed.scheme(), parsed.path())
        }
        Err(_) => "unparsable".to_owned(),
    }
}

fn condition_name(condition: Condition) -> &'static str {
    match condition {
        Condition::Provisioned => "provisioned",
        Condition::Staging => "staging",
        Condition::Starting => "starting",
        Condition::Running => "running",
        Condition::Killing => "killing",
        Condition::Finished => "finished",
        Condition::Failed => "failed",
        Condition::Killed => "killed",
        Condition::Error => "error",
        Condition::Dropped => "dropped",
        Condition::Unreachable => "unreachable",
        Condition::Gone => "gone",
        Condition::GoneByOperator => "gone_by_operator",
        Condition::Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::{endpoint, refine};

    #[test]
    fn wildcard_routes_are_labelled_by_resource() {
        let cases = [
            (
                "/v2/apps/{*rest}",
                "/v2/apps/prod/web",
                Some("/v2/apps/{id}"),
            ),
            (
                "/v2/apps/{*rest}",
                "/v2/apps/a/b/tasks/a_b.1",
                Some("/v2/apps/{id}/tasks/{taskId}"),
            ),
            (
                "/v2/apps/{*rest}",
                "/v2/apps/a/versions/2026-01-01T00:00:00Z",
                Some("/v2/apps/{id}/versions/{version}"),
            ),
            (
                "/v2/groups/{*rest}",
                "/v2/groups/prod/apps",
                Some("/v2/groups/{id}/apps"),
            ),
            (
                "/v1/apps/{*rest}",
                "/v1/apps/a/b/diff",
                Some("/v1/apps/{id}/diff"),
            ),
            ("/v1/apps/{*rest}", "/v1/apps/a/b", None),
            ("/v2/apps", "/v2/apps", None),
            ("/v2/queue/{*rest}", "/v2/queue/a/delay", None),
        ];
        for (matched, path, expected) in cases {
            assert_eq!(refine(matched, path), expected, "{path}");
        }
    }

    #[test]
    fn callback_labels_carry_no_secrets() {
        assert_eq!(
            endpoint("https://user:pw@hooks.example:8443/in?token=s3cret"),
            "https://hooks.example:8443/in"
        );
        assert_eq!(endpoint("not a url"), "unparsable");
    }
}
