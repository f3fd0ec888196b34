//! `/v2/info`, `/v2/leader` and `/ping`: who is serving and how, in
//! Marathon's shapes; `/v1/info` says what Stride itself is.

use super::Shared;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::net::SocketAddr;
use stride_core::command::PortRange;
use stride_mesos::config::DEFAULT_FAILOVER_TIMEOUT;

/// The Marathon version `/v2/info` reports: clients gate features on it
/// (Marathon 1.x shapes are what Stride speaks), so it is not Stride's own.
pub const MARATHON_API_VERSION: &str = "1.11.0";

/// Facts about this server that clients may ask for.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// The address the API is bound to; with a single Stride it is the leader.
    pub address: SocketAddr,
    pub service_ports: PortRange,
    pub framework_name: String,
    /// The masters Stride drives, credentials removed; empty without Mesos.
    pub masters: Vec<String>,
    pub mesos_user: String,
}

/// Marathon's `MarathonInfo` (InfoResource.scala). Every key Marathon
/// writes is here; settings Stride has no counterpart for are `null`, as
/// Marathon writes an unset option.
#[utoipa::path(
    get,
    path = "/v2/info",
    tag = "server",
    summary = "Marathon's MarathonInfo",
    responses(
        (status = 200, description = "Who serves, and how", body = crate::api::openapi::Info),
    )
)]
pub async fn info(State(shared): State<Shared>) -> Json<Value> {
    let framework = shared.projection.read().framework.clone();
    let server = &shared.server;
    let leader = server.address.to_string();
    Json(json!({
        "name": "marathon",
        "version": MARATHON_API_VERSION,
        "buildref": concat!("stride-", env!("CARGO_PKG_VERSION")),
        "elected": true,
        "leader": leader,
        "frameworkId": framework,
        "marathon_config": marathon_config(server, &leader),
        // Stride keeps its state in its own log, not in ZooKeeper.
        "zookeeper_config": {
            "zk": null,
            "zk_compression": null,
            "zk_compression_threshold": null,
            "zk_connection_timeout": null,
            "zk_max_node_size": null,
            "zk_max_versions": null,
            "zk_session_timeout": null,
            "zk_timeout": null,
        },
        "http_config": {
            "http_port": server.address.port(),
            "https_port": null,
        },
    }))
}

/// Marathon's `marathon_config`: its flags, by name.
fn marathon_config(server: &ServerInfo, leader: &str) -> Value {
    let master = server.masters.join(",");
    let entries = [
        ("access_control_allow_origin", json!(null)),
        ("checkpoint", json!(true)),
        ("decline_offer_duration", json!(null)),
        ("default_network_name", json!(null)),
        ("env_vars_prefix", json!(null)),
        ("executor", json!("//cmd")),
        (
            "failover_timeout",
            json!(DEFAULT_FAILOVER_TIMEOUT.as_secs()),
        ),
        ("features", json!([])),
        ("framework_name", json!(server.framework_name)),
        ("ha", json!(false)),
        ("hostname", json!(server.address.ip().to_string())),
        ("launch_token", json!(null)),
        ("launch_token_refresh_interval", json!(null)),
        ("leader_proxy_connection_timeout_ms", json!(null)),
        ("leader_proxy_read_timeout_ms", json!(null)),
        ("local_port_max", json!(server.service_ports.last)),
        ("local_port_min", json!(server.service_ports.first)),
        ("master", json!(master)),
        ("max_instances_per_offer", json!(null)),
        ("mesos_bridge_name", json!(null)),
        ("mesos_heartbeat_failure_threshold", json!(null)),
        ("mesos_heartbeat_interval", json!(null)),
        ("mesos_leader_ui_url", json!(server.masters.first())),
        ("mesos_role", json!("*")),
        ("mesos_user", json!(server.mesos_user)),
        ("new_group_enforce_role", json!("Off")),
        ("min_revive_offers_interval", json!(null)),
        ("offer_matching_timeout", json!(null)),
        ("on_elected_prepare_timeout", json!(null)),
        ("reconciliation_initial_delay", json!(null)),
        ("reconciliation_interval", json!(null)),
        ("scale_apps_initial_delay", json!(null)),
        ("scale_apps_interval", json!(null)),
        ("store_cache", json!(null)),
        ("task_launch_confirm_timeout", json!(null)),
        ("task_launch_timeout", json!(null)),
        // Required numbers in Marathon's RAML; Stride expunges lost
        // tasks in every reconciliation instead of on a timer.
        ("task_lost_expunge_initial_delay", json!(0)),
        ("task_lost_expunge_interval", json!(0)),
        ("task_reservation_timeout", json!(null)),
        ("webui_url", json!(format!("http://{leader}"))),
        ("maintenance_mode", json!(null)),
    ];
    Value::Object(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

/// `GET /v1/info`: what Stride is, which `/v2/info` cannot say without
/// confusing Marathon clients.
#[utoipa::path(
    get,
    path = "/v1/info",
    tag = "server",
    summary = "What Stride is",
    responses(
        (status = 200, description = "Name and versions", body = crate::api::openapi::Info),
    )
)]
pub async fn stride(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({
        "name": "stride",
        "version": env!("CARGO_PKG_VERSION"),
        "marathonApiVersion": MARATHON_API_VERSION,
        "leader": shared.server.address.to_string(),
    }))
}

#[utoipa::path(
    get,
    path = "/v2/leader",
    tag = "server",
    summary = "The leader",
    responses(
        (status = 200, description = "The leading server", body = crate::api::openapi::Leader),
    )
)]
pub async fn leader(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({ "leader": shared.server.address.to_string() }))
}

/// `DELETE /v2/leader`. A lone Stride is re-elected at once, so abdicating
/// does what a new leader does: it subscribes to Mesos again and
/// reconciles every task.
#[utoipa::path(
    delete,
    path = "/v2/leader",
    tag = "server",
    summary = "Abdicate: resubscribe to Mesos and reconcile",
    responses(
        (status = 200, description = "Leadership abdicated", body = crate::api::openapi::ErrorBody),
    )
)]
pub async fn abdicate(State(shared): State<Shared>) -> Json<Value> {
    if let Some(mesos) = &shared.mesos {
        mesos.reconnect();
    }
    Json(json!({ "message": "Leadership abdicated" }))
}

#[utoipa::path(
    get,
    path = "/ping",
    tag = "server",
    summary = "Liveness",
    responses(
        (status = 200, description = "pong", body = String, content_type = "text/plain"),
    )
)]
pub async fn ping() -> &'static str {
    "pong"
}
