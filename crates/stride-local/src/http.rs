//! HTTP front of the local master: the v1 scheduler endpoint with a real
//! master's framing, status codes and error texts, plus `/master/state`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::Value;
use tokio_stream::wrappers::UnboundedReceiverStream;

use stride_mesos::types::{Call, CallKind};

use super::master::{CallRejection, Master};

const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

pub(crate) fn router(master: Arc<Master>) -> Router {
    Router::new()
        .route("/api/v1/scheduler", post(scheduler))
        .route("/master/api/v1/scheduler", post(scheduler))
        .route("/master/state", get(state))
        .route("/state", get(state))
        .route("/master/state.json", get(state))
        .route("/master/frameworks", get(frameworks))
        .route("/master/slaves", get(slaves))
        .route("/master/teardown", post(operator_teardown))
        .route("/teardown", post(operator_teardown))
        .route("/files/read", get(super::files::read))
        .route("/health", get(health))
        .route("/master/health", get(health))
        .with_state(master)
}

async fn state(State(master): State<Arc<Master>>) -> Response {
    axum::Json(master.state_json()).into_response()
}

async fn frameworks(State(master): State<Arc<Master>>) -> Response {
    let state = master.state_json();
    axum::Json(serde_json::json!({
        "frameworks": state["frameworks"],
        "completed_frameworks": state["completed_frameworks"],
        "unregistered_frameworks": [],
    }))
    .into_response()
}

/// The agents, as `/master/slaves` lists them (the sandbox reader finds an
/// agent's address there).
async fn slaves(State(master): State<Arc<Master>>) -> Response {
    let state = master.state_json();
    axum::Json(serde_json::json!({
        "slaves": state["slaves"],
        "recovered_slaves": [],
    }))
    .into_response()
}

/// The operator's `POST /master/teardown` with form field `frameworkId`.
async fn operator_teardown(
    State(master): State<Arc<Master>>,
    axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(id) = form.get("frameworkId") else {
        return bad_request("Missing 'frameworkId' query parameter in the request body");
    };
    let framework_id = stride_mesos::types::FrameworkId::new(id.clone());
    if master.teardown(&framework_id) {
        StatusCode::OK.into_response()
    } else {
        bad_request("No framework found with specified ID")
    }
}

async fn health() -> StatusCode {
    StatusCode::OK
}

fn plain(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    plain(StatusCode::BAD_REQUEST, message)
}

impl IntoResponse for CallRejection {
    fn into_response(self) -> Response {
        match self {
            CallRejection::BadRequest(message) => bad_request(message),
            CallRejection::Forbidden(message) => plain(StatusCode::FORBIDDEN, message),
        }
    }
}

/// `type` values a 1.11 master knows. Anything else reads as no type at
/// all, because protobuf drops unknown enum values.
const KNOWN_CALL_TYPES: &[&str] = &[
    "SUBSCRIBE",
    "TEARDOWN",
    "ACCEPT",
    "DECLINE",
    "ACCEPT_INVERSE_OFFERS",
    "DECLINE_INVERSE_OFFERS",
    "REVIVE",
    "KILL",
    "SHUTDOWN",
    "ACKNOWLEDGE",
    "ACKNOWLEDGE_OPERATION_STATUS",
    "RECONCILE",
    "RECONCILE_OPERATIONS",
    "MESSAGE",
    "REQUEST",
    "SUPPRESS",
    "UPDATE_FRAMEWORK",
];

/// Call types that must carry their payload field, and its name.
fn required_payload(kind: &str) -> Option<&'static str> {
    match kind {
        "SUBSCRIBE" => Some("subscribe"),
        "ACCEPT" => Some("accept"),
        "DECLINE" => Some("decline"),
        "KILL" => Some("kill"),
        "ACKNOWLEDGE" => Some("acknowledge"),
        "RECONCILE" => Some("reconcile"),
        _ => None,
    }
}

/// Parses and validates a call body in the order a real master does:
/// JSON, then protobuf conversion, then `Call` validation. The error is
/// the text of the 400 answer.
fn parse_call(body: &[u8]) -> Result<Call, String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("Failed to parse body into JSON: {e}"))?;
    let convert_error =
        |message: String| format!("Failed to convert JSON into Call protobuf: {message}");
    let Some(object) = json.as_object() else {
        return Err(convert_error("Expecting a JSON object".to_string()));
    };
    let validate_error = |message: String| format!("Failed to validate scheduler::Call: {message}");
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .filter(|kind| KNOWN_CALL_TYPES.contains(kind))
        .ok_or_else(|| validate_error("Expecting 'type' to be present".to_string()))?;
    if kind != "SUBSCRIBE" && !object.contains_key("framework_id") {
        return Err(validate_error(
            "Expecting 'framework_id' to be present".to_string(),
        ));
    }
    if let Some(field) = required_payload(kind)
        && !object.contains_key(field)
    {
        return Err(validate_error(format!("Expecting '{field}' to be present")));
    }
    serde_path_to_error::deserialize(json)
        .map_err(|e| convert_error(format!("{} at '{}'", e.inner(), e.path())))
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|item| {
        let media = item.split(';').next().unwrap_or("").trim();
        ["application/json", "application/*", "*/*"]
            .iter()
            .any(|ok| media.eq_ignore_ascii_case(ok))
    })
}

async fn scheduler(State(master): State<Arc<Master>>, headers: HeaderMap, body: Bytes) -> Response {
    // A real master authenticates before it reads the call.
    let principal = match &master.settings.credentials {
        None => None,
        Some(credentials) => match credentials.authenticate(&headers) {
            Some(principal) => Some(principal),
            None => return unauthorized(),
        },
    };
    // Protobuf bodies are valid on a real master; this one speaks JSON
    // only, and says so in the real master's words.
    if !is_json_content_type(&headers) {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expecting 'Content-Type' of application/json or application/x-protobuf",
        );
    }
    let call = match parse_call(&body) {
        Ok(call) => call,
        Err(message) => return bad_request(message),
    };
    let stream_id = headers
        .get(STREAM_ID_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let Call { framework_id, kind } = call;
    if let CallKind::Subscribe(mut subscribe) = kind {
        if let Some(principal) = principal {
            let info = &mut subscribe.framework_info;
            match &info.principal {
                Some(claimed) if *claimed != principal => {
                    return bad_request(format!(
                        "Failed to validate scheduler::Call: {}",
                        principal_mismatch(&principal, claimed)
                    ));
                }
                // The real master fills in the authenticated principal.
                _ => info.principal = Some(principal),
            }
        }
        if stream_id.is_some() {
            return bad_request("Subscribe calls should not include the 'Mesos-Stream-Id' header");
        }
        if !accepts_json(&headers) {
            return plain(
                StatusCode::NOT_ACCEPTABLE,
                "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
            );
        }
        return match master.subscribe(framework_id, *subscribe) {
            Ok(subscription) => subscribe_response(subscription),
            Err(rejection) => rejection.into_response(),
        };
    }
    // parse_call guarantees a framework id on every other call.
    let Some(framework_id) = framework_id else {
        return bad_request(
            "Failed to validate scheduler::Call: Expecting 'framework_id' to be present",
        );
    };
    if let Err(rejection) =
        master.authorize(&framework_id, stream_id.as_deref(), principal.as_deref())
    {
        return rejection.into_response();
    }
    match kind {
        CallKind::Subscribe(_) => {}
        CallKind::Teardown => {
            master.teardown(&framework_id);
        }
        CallKind::Accept(accept) => master.accept(&framework_id, accept),
        CallKind::Decline(decline) => master.decline(&framework_id, &decline),
        CallKind::Revive(_) => master.revive(&framework_id),
        CallKind::Suppress(_) => master.suppress(&framework_id),
        CallKind::Kill(kill) => master.kill(&framework_id, &kill),
        CallKind::Acknowledge(ack) => master.acknowledge(&framework_id, &ack.task_id, &ack.uuid),
        CallKind::Reconcile(reconcile) => master.reconcile(&framework_id, &reconcile.tasks),
        CallKind::Unknown(name) => {
            return plain(
                StatusCode::NOT_IMPLEMENTED,
                format!("Call type {name} is not implemented by the local Stride cluster"),
            );
        }
    }
    StatusCode::ACCEPTED.into_response()
}

/// A real master's answer to missing or wrong framework credentials.
fn unauthorized() -> Response {
    let challenge = format!("Basic realm=\"{}\"", super::credentials::REALM);
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
    )
        .into_response()
}

/// A real master's words when the authenticated principal is not the
/// framework's.
pub(crate) fn principal_mismatch(authenticated: &str, framework: &str) -> String {
    format!(
        "Authenticated principal '{authenticated}' does not match principal '{framework}' set in `FrameworkInfo`"
    )
}

/// `200 OK`, chunked RecordIO, `Mesos-Stream-Id`. The guard travels with
/// the body, so dropping the body (client gone) disconnects the framework.
fn subscribe_response(subscription: super::master::Subscription) -> Response {
    let guard = subscription.guard;
    let events = UnboundedReceiverStream::new(subscription.events).map(move |record| {
        let _keep_alive = &guard;
        Ok::<_, Infallible>(record)
    });
    let mut response = Response::new(Body::from_stream(events));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&subscription.stream_id) {
        headers.insert(STREAM_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection_text(body: &str) -> String {
        match parse_call(body.as_bytes()) {
            Ok(call) => panic!("accepted {call:?}"),
            Err(message) => message,
        }
    }

    #[test]
    fn bad_calls_are_rejected_with_the_real_masters_wording() {
        assert!(rejection_text("{not json").starts_with("Failed to parse body into JSON: "));
        assert_eq!(
            rejection_text("[1]"),
            "Failed to convert JSON into Call protobuf: Expecting a JSON object"
        );
        assert_eq!(
            rejection_text(r#"{"type":"FOO"}"#),
            "Failed to validate scheduler::Call: Expecting 'type' to be present"
        );
        assert_eq!(
            rejection_text(r#"{"type":"ACCEPT"}"#),
            "Failed to validate scheduler::Call: Expecting 'framework_id' to be present"
        );
        assert_eq!(
            rejection_text(r#"{"type":"ACCEPT","framework_id":{"value":"f"}}"#),
            "Failed to validate scheduler::Call: Expecting 'accept' to be present"
        );
        assert!(
            rejection_text(r#"{"type":"KILL","framework_id":{"value":"f"},"kill":{"task_id":5}}"#)
                .starts_with("Failed to convert JSON into Call protobuf: ")
        );
    }

    #[test]
    fn accept_header_must_allow_json() {
        let mut headers = HeaderMap::new();
        assert!(accepts_json(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        assert!(!accepts_json(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, */*;q=0.1"),
        );
        assert!(accepts_json(&headers));
    }
}
