//! `/v2/eventSubscriptions`: Marathon's HTTP callback subscriptions, made
//! reliable (see `callbacks/`).

use super::extract::Caller;
use super::{ApiError, Shared};
use crate::callbacks::SEQ_HEADER;
use crate::stream::marathon::{PlanFormat, marathon_events};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use stride_core::command::Command;
use stride_log::event::json::envelope_json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackQuery {
    callback_url: Option<String>,
}

/// Marathon's `callbackUrls`.
#[utoipa::path(
    get,
    path = "/v2/eventSubscriptions",
    tag = "events",
    summary = "Callback URLs",
    responses(
        (status = 200, description = "Subscribed URLs", body = crate::api::openapi::CallbackUrls),
    )
)]
pub async fn list(State(shared): State<Shared>) -> Json<Value> {
    let urls: Vec<String> = shared.projection.read().callbacks.keys().cloned().collect();
    Json(json!({ "callbackUrls": urls }))
}

/// `GET /v1/subscriptions`: each delivery's cursor and last error.
#[utoipa::path(
    get,
    path = "/v1/subscriptions",
    tag = "events",
    summary = "Each callback delivery's cursor and errors",
    responses(
        (status = 200, description = "Deliveries", body = crate::api::openapi::Deliveries),
    )
)]
pub async fn deliveries(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({ "subscriptions": shared.callbacks.statuses() }))
}

#[utoipa::path(
    post,
    path = "/v2/eventSubscriptions",
    tag = "events",
    summary = "Subscribe a callback URL",
    params(
        crate::api::openapi::Callback,
    ),
    responses(
        (status = 200, description = "The subscribe_event", body = crate::api::openapi::SubscriptionEvent),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 422, response = crate::api::openapi::Invalid),
        (status = 503, response = crate::api::openapi::Unavailable),
    )
)]
pub async fn subscribe(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let callback_url = required(query)?;
    refuse_own_address(&callback_url, &shared).await?;
    let command = Command::SubscribeCallback {
        callback_url: callback_url.clone(),
    };
    let outcome = super::deployable::commit(&shared, actor, &headers, command).await?;
    Ok(answer(&shared, &outcome, "subscribe_event", &callback_url))
}

#[utoipa::path(
    delete,
    path = "/v2/eventSubscriptions",
    tag = "events",
    summary = "Unsubscribe a callback URL",
    params(
        crate::api::openapi::Callback,
    ),
    responses(
        (status = 200, description = "The unsubscribe_event", body = crate::api::openapi::SubscriptionEvent),
        (status = 400, response = crate::api::openapi::BadRequest),
        (status = 404, response = crate::api::openapi::NotFound),
        (status = 422, response = crate::api::openapi::Invalid),
        (status = 503, response = crate::api::openapi::Unavailable),
    )
)]
pub async fn unsubscribe(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let callback_url = required(query)?;
    let command = Command::UnsubscribeCallback {
        callback_url: callback_url.clone(),
    };
    let outcome = super::deployable::commit(&shared, actor, &headers, command).await?;
    Ok(answer(
        &shared,
        &outcome,
        "unsubscribe_event",
        &callback_url,
    ))
}

fn required(query: CallbackQuery) -> Result<String, ApiError> {
    query
        .callback_url
        .filter(|url| !url.is_empty())
        .ok_or_else(|| ApiError::BadRequest("query parameter callbackUrl is required".into()))
}

/// Callbacks to this server's own API would feed its log forever. (Any
/// other malformed URL is the command's to refuse.)
async fn refuse_own_address(url: &str, shared: &Shared) -> Result<(), ApiError> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Ok(());
    };
    match crate::callbacks::reaching_listener(&parsed, shared.server.address).await {
        None => Ok(()),
        Some(address) => Err(ApiError::invalid_field(
            "/callbackUrl".into(),
            format!(
                "'{url}' leads back to this server ({address}): its callbacks would feed its own log"
            ),
        )),
    }
}

/// Marathon answers with the event it published; a repeated subscribe
/// publishes nothing, so it gets the same shape. The event's seq, if one
/// was recorded, is in the `X-Stride-Seq` header.
fn answer(
    shared: &Shared,
    outcome: &stride_core::command::Outcome,
    kind: &str,
    url: &str,
) -> Response {
    let Some(envelope) = outcome.events.first() else {
        return Json(json!({"eventType": kind, "callbackUrl": url})).into_response();
    };
    let body = marathon_events(envelope, &*shared.projection, PlanFormat::Full)
        .into_iter()
        .next()
        .map_or_else(|| envelope_json(envelope), |(_, body)| body);
    let mut response = Json(body).into_response();
    if let Ok(seq) = HeaderValue::from_str(&envelope.seq.to_string()) {
        response.headers_mut().insert(SEQ_HEADER, seq);
    }
    response
}
