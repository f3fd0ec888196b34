//! `/v2/info`, `/v2/leader` and `/ping`: who is serving and how.

use super::Shared;
use crate::command::PortRange;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Facts about this server that clients may ask for.
#[derive(Debug, Clone, Copy)]
pub struct ServerInfo {
    /// The address the API is bound to; with a single Stride it is the leader.
    pub address: SocketAddr,
    pub service_ports: PortRange,
}

pub async fn info(State(shared): State<Shared>) -> Json<Value> {
    let framework = shared.projection.read().framework.clone();
    let server = shared.server;
    Json(json!({
        "name": "stride",
        "version": env!("CARGO_PKG_VERSION"),
        "elected": true,
        "leader": server.address.to_string(),
        "frameworkId": framework,
        "marathon_config": {
            "local_port_min": server.service_ports.first,
            "local_port_max": server.service_ports.last,
        },
        "http_config": {
            "http_port": server.address.port(),
        },
    }))
}

pub async fn leader(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({ "leader": shared.server.address.to_string() }))
}

pub async fn ping() -> &'static str {
    "pong"
}
