//! With high availability a standby serves reads from its own projection
//! and passes every write (and task file reads, which need the leader's
//! Mesos subscription) to the leader, returning the leader's answer, as
//! Marathon's standbys do (`LeaderProxyFilter.scala`, which passes reads on
//! too): clients see one API whichever instance they reach. Every answer
//! names the leader (`X-Marathon-Leader`, as Marathon's leader does) and
//! the seq the answering instance reflects (`X-Stride-Seq`).

use super::RoleView;
use crate::published::Projection;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const SEQ: HeaderName = HeaderName::from_static("x-stride-seq");
const LEADER: HeaderName = HeaderName::from_static("x-marathon-leader");
/// Marathon's loop guard: a request passed on names the instance that
/// passed it, and one that comes back is refused.
const VIA: HeaderName = HeaderName::from_static("x-marathon-via");
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// The largest body passed on (app definitions and groups are far smaller).
const MAX_BODY: usize = 64 << 20;

#[derive(Clone)]
pub struct Proxy {
    view: RoleView,
    projection: Arc<Projection>,
    http: reqwest::Client,
}

impl Proxy {
    /// `builder` trusts `--ca-file` and sends no credentials of its own.
    pub fn new(
        view: RoleView,
        projection: Arc<Projection>,
        builder: reqwest::ClientBuilder,
    ) -> Proxy {
        let http = builder
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client builds");
        Proxy {
            view,
            projection,
            http,
        }
    }
}

pub async fn pass_writes_to_leader(
    State(proxy): State<Proxy>,
    request: Request,
    next: Next,
) -> Response {
    let reads = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let view = proxy.view.now();
    let local = reads && !needs_mesos(request.uri().path());
    let mut response = if local || view.leading {
        next.run(request).await
    } else {
        let remote = request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip().to_string());
        pass(&proxy, &view, remote, request).await
    };
    let seq = proxy.projection.head().0.to_string();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&seq) {
        headers.insert(SEQ, value);
    }
    if let Some((_, _, leader)) = &view.leader
        && let Ok(value) = HeaderValue::from_str(leader)
    {
        headers.insert(LEADER, value);
    }
    response
}

/// Reads only the leader can answer: task files come from the agents,
/// found through the leader's Mesos subscription.
fn needs_mesos(path: &str) -> bool {
    path.strip_prefix("/v1/tasks/")
        .is_some_and(|rest| rest.contains("/files/"))
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

async fn pass(
    proxy: &Proxy,
    view: &super::View,
    remote: Option<String>,
    request: Request,
) -> Response {
    let unavailable = |message: String| refuse(StatusCode::SERVICE_UNAVAILABLE, message);
    let host = view
        .url
        .split_once("://")
        .map_or(&*view.url, |(_, host)| host);
    let via = format!("1.1 {host}");
    let looped = request
        .headers()
        .get_all(VIA)
        .iter()
        .any(|value| value.as_bytes() == via.as_bytes());
    if looped {
        // Marathon's answer to a loop (502); here it means the leader this
        // instance named has stepped down meanwhile: a retry finds the next.
        return refuse(
            StatusCode::BAD_GATEWAY,
            "Detected proxying loop; retry".into(),
        );
    }
    let Some((_, _, leader)) = view
        .leader
        .as_ref()
        .filter(|(_, id, _)| *id != view.instance)
    else {
        return unavailable("Could not determine the current leader; retry".into());
    };
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(error) => return unavailable(format!("cannot read the request body: {error}")),
    };
    let mut headers = parts.headers.clone();
    headers.remove(header::HOST);
    headers.remove(header::CONNECTION);
    headers.remove(header::CONTENT_LENGTH);
    if let Ok(value) = HeaderValue::from_str(&via) {
        headers.append(VIA, value);
    }
    let forwarded = headers
        .get(&FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .into_iter()
        .chain(remote.as_deref())
        .collect::<Vec<_>>()
        .join(",");
    if let Ok(value) = HeaderValue::from_str(&forwarded) {
        headers.insert(FORWARDED_FOR, value);
    }
    let sent = proxy
        .http
        .request(parts.method, format!("{leader}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(error) => {
            return unavailable(format!(
                "cannot reach the leader at {leader}: {error}; retry"
            ));
        }
    };
    let status = answer.status();
    let mut headers = answer.headers().clone();
    headers.remove(header::TRANSFER_ENCODING);
    headers.remove(header::CONNECTION);
    headers.remove(header::CONTENT_LENGTH);
    let body = match answer.bytes().await {
        Ok(body) => body,
        Err(error) => {
            return refuse(
                StatusCode::BAD_GATEWAY,
                format!(
                    "the leader at {leader} answered {status} but its body was lost ({error}); retry"
                ),
            );
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
