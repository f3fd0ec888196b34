//! `/v2/eventSubscriptions`: Marathon's HTTP callback subscriptions, made
//! reliable (see `callbacks/`).

use super::extract::{Caller, idempotency_key};
use super::{ApiError, Shared};
use crate::command::Command;
use crate::event::json::envelope_json;
use crate::stream::marathon::marathon_event;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackQuery {
    callback_url: Option<String>,
}

/// Marathon's `callbackUrls`, plus each delivery's cursor and last error.
pub async fn list(State(shared): State<Shared>) -> Json<Value> {
    let urls: Vec<String> = shared.projection.read().callbacks.keys().cloned().collect();
    let statuses = shared.callbacks.statuses();
    Json(json!({"callbackUrls": urls, "subscriptions": statuses}))
}

pub async fn subscribe(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let callback_url = required(query)?;
    refuse_own_address(&callback_url, &shared).await?;
    let key = idempotency_key(&headers)?;
    let command = Command::SubscribeCallback {
        callback_url: callback_url.clone(),
    };
    let outcome = shared.committer.submit(actor, key, command).await?;
    Ok(Json(answer(&outcome, "subscribe_event", &callback_url)))
}

pub async fn unsubscribe(
    State(shared): State<Shared>,
    Caller(actor): Caller,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let callback_url = required(query)?;
    let key = idempotency_key(&headers)?;
    let command = Command::UnsubscribeCallback {
        callback_url: callback_url.clone(),
    };
    let outcome = shared.committer.submit(actor, key, command).await?;
    Ok(Json(answer(&outcome, "unsubscribe_event", &callback_url)))
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
/// publishes nothing, so it gets the same shape without a seq.
fn answer(outcome: &crate::command::Outcome, kind: &str, url: &str) -> Value {
    match outcome.events.first() {
        Some(envelope) => {
            let mut body =
                marathon_event(envelope).map_or_else(|| envelope_json(envelope), |(_, b)| b);
            body["seq"] = json!(envelope.seq);
            body
        }
        None => json!({"eventType": kind, "callbackUrl": url}),
    }
}
