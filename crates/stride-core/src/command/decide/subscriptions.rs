//! Event subscriptions (`/v2/eventSubscriptions`): HTTP callbacks.

use super::super::FieldError;
use super::Rejection;
use crate::event::{CallbackSubscribed, CallbackUnsubscribed, Event};
use crate::projection::State;

pub fn subscribe(state: &State, callback_url: &str) -> Result<Vec<Event>, Rejection> {
    check_callback_url(callback_url)?;
    // Subscribing twice is a no-op, as in Marathon.
    if state.callbacks.contains_key(callback_url) {
        return Ok(Vec::new());
    }
    Ok(vec![Event::CallbackSubscribed(CallbackSubscribed {
        callback_url: callback_url.to_owned(),
    })])
}

pub fn unsubscribe(state: &State, callback_url: &str) -> Result<Vec<Event>, Rejection> {
    if !state.callbacks.contains_key(callback_url) {
        return Err(Rejection::not_found(format!(
            "no event subscription for callbackUrl {callback_url}"
        )));
    }
    Ok(vec![Event::CallbackUnsubscribed(CallbackUnsubscribed {
        callback_url: callback_url.to_owned(),
    })])
}

/// Only absolute http(s) URLs: delivery POSTs to them.
fn check_callback_url(url: &str) -> Result<(), Rejection> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(()),
        _ => Err(Rejection::invalid(vec![FieldError {
            path: "/callbackUrl".into(),
            errors: vec![format!("'{url}' is not an absolute http(s) URL")],
        }])),
    }
}
