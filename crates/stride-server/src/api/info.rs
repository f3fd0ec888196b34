//! `/v2/info`, `/v2/leader` and `/ping`: who is serving and how, in
//! Marathon's shapes; `/v1/info` says what Stride itself is.

use super::Shared;
use super::error::ApiError;
use crate::ha::RoleView;
use axum::extract::State;
use axum::{Extension, Json};
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
    /// `https` with `--tls-cert`, else `http`: the one scheme it serves.
    pub scheme: &'static str,
    pub service_ports: PortRange,
    pub framework_name: String,
    /// The masters Stride drives, credentials removed; empty without Mesos
    /// or with `detector`.
    pub masters: Vec<String>,
    /// `--master zk://...`: where the leading master is found.
    pub detector: Option<crate::master_detector::MasterDetector>,
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
pub async fn info(State(shared): State<Shared>, ha: Option<Extension<RoleView>>) -> Json<Value> {
    let framework = shared.projection.read().framework.clone();
    let server = &shared.server;
    let (elected, leader) = match &ha {
        Some(Extension(view)) => {
            let view = view.now();
            (view.leading, leader_host_port(&view))
        }
        None => (true, Some(server.address.to_string())),
    };
    // The leader's own URL carries its scheme; a lone server, its own.
    let webui = match view_leader_url(ha.as_ref()) {
        Some(url) => url,
        None => server.url(),
    };
    let mut config = marathon_config(server, &webui);
    config["ha"] = json!(ha.is_some());
    let view = ha.as_ref().map(|Extension(view)| view.now());
    Json(json!({
        "name": "marathon",
        "version": MARATHON_API_VERSION,
        "buildref": concat!("stride-", env!("CARGO_PKG_VERSION")),
        "elected": elected,
        "leader": leader,
        "frameworkId": framework,
        "marathon_config": config,
        // With --zk; the other keys are Marathon's own tree's settings.
        "zookeeper_config": {
            "zk": view.as_ref().map(|v| &v.zk),
            "zk_compression": null,
            "zk_compression_threshold": null,
            "zk_connection_timeout": null,
            "zk_max_node_size": null,
            "zk_max_versions": null,
            "zk_session_timeout": view.as_ref().map(|v| v.session_timeout.as_millis() as u64),
            "zk_timeout": null,
        },
        // One listener: its port under its scheme, none under the other
        // (Marathon's `--disable_http` with HTTPS on).
        "http_config": {
            "http_port": (server.scheme == "http").then_some(server.address.port()),
            "https_port": (server.scheme == "https").then_some(server.address.port()),
        },
    }))
}

/// Marathon's `marathon_config`: its flags, by name; `webui` is the
/// leader's URL.
fn marathon_config(server: &ServerInfo, webui: &str) -> Value {
    // Marathon echoes its --master, and names the leading master's UI as
    // its MasterInfo does (`MesosLeaderInfo.scala`).
    let (master, leader_ui) = match &server.detector {
        Some(detector) => (
            detector.flag.clone(),
            detector.now().leading.map(|leading| leading.ui),
        ),
        None => (server.masters.join(","), server.masters.first().cloned()),
    };
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
        ("mesos_leader_ui_url", json!(leader_ui)),
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
        // Marathon's derived UI URL (scheme by TLS), as it tells Mesos.
        ("webui_url", json!(webui)),
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
pub async fn stride(State(shared): State<Shared>, ha: Option<Extension<RoleView>>) -> Json<Value> {
    let leader = match &ha {
        Some(Extension(view)) => leader_host_port(&view.now()),
        None => Some(shared.server.address.to_string()),
    };
    Json(json!({
        "name": "stride",
        "version": env!("CARGO_PKG_VERSION"),
        "marathonApiVersion": MARATHON_API_VERSION,
        "leader": leader,
        "highAvailability": ha.map(|Extension(view)| election(&shared, &view)),
        "mesosMaster": shared.server.detector.as_ref().map(detected),
    }))
}

/// The leading Mesos master as `--master zk://` finds it.
fn detected(detector: &crate::master_detector::MasterDetector) -> Value {
    let now = detector.now();
    json!({
        "master": detector.flag,
        "leading": now.leading.as_ref().map(|l| l.url.as_str()),
        "node": now.leading.as_ref().map(|l| &l.node),
        "detector": now.state.to_string(),
    })
}

/// `GET /v1/leader`: the election as this instance knows it, and the seq
/// its projection reflects; without `--zk`, this instance leads at epoch 0.
#[utoipa::path(
    get,
    path = "/v1/leader",
    tag = "server",
    summary = "The election and this instance's place in it",
    responses(
        (status = 200, description = "The leader, its epoch, this instance", body = crate::api::openapi::Election),
    )
)]
pub async fn election_v1(
    State(shared): State<Shared>,
    ha: Option<Extension<RoleView>>,
) -> Json<Value> {
    match ha {
        Some(Extension(view)) => Json(election(&shared, &view)),
        None => {
            let url = shared.server.url();
            Json(json!({
                "leading": true,
                "epoch": 0,
                "leader": {"url": url},
                "seq": shared.projection.head(),
                "zookeeper": false,
            }))
        }
    }
}

fn election(shared: &Shared, view: &RoleView) -> Value {
    let view = view.now();
    let state = shared.projection.read();
    json!({
        "instance": view.instance,
        "url": view.url,
        "leading": view.leading,
        "epoch": view.leader.as_ref().map(|(epoch, _, _)| epoch),
        "leader": view.leader.as_ref().map(|(epoch, instance, url)| json!({
            "epoch": epoch,
            "instance": instance,
            "url": url,
        })),
        // The last election the log records, as far as this instance has applied it.
        "recorded": state.leader.as_ref().map(|e| json!({
            "epoch": e.epoch,
            "instance": e.instance,
            "url": e.url,
        })),
        "seq": state.seq,
        "zookeeper": view.connected,
    })
}

impl ServerInfo {
    /// This server's base URL, in the scheme it serves.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }
}

/// The known leader's base URL, with high availability.
fn view_leader_url(ha: Option<&Extension<RoleView>>) -> Option<String> {
    let Extension(view) = ha?;
    let view = view.now();
    let (_, _, url) = view.leader.as_ref()?;
    Some(url.trim_end_matches('/').to_owned())
}

/// The leader as Marathon names it: `host:port`.
fn leader_host_port(view: &crate::ha::View) -> Option<String> {
    view.leader.as_ref().map(|(_, _, url)| {
        url.trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_owned()
    })
}

#[utoipa::path(
    get,
    path = "/v2/leader",
    tag = "server",
    summary = "The leader",
    responses(
        (status = 200, description = "The leading server", body = crate::api::openapi::Leader),
        (status = 404, description = "There is no leader (high availability, none elected)", body = crate::api::openapi::ErrorBody),
    )
)]
pub async fn leader(
    State(shared): State<Shared>,
    ha: Option<Extension<RoleView>>,
) -> Result<Json<Value>, ApiError> {
    let leader = match ha {
        Some(Extension(view)) => leader_host_port(&view.now()),
        None => Some(shared.server.address.to_string()),
    };
    // Marathon's words when no leader is known (LeaderResource.scala).
    let leader = leader.ok_or_else(|| ApiError::NotFound("There is no leader".into()))?;
    Ok(Json(json!({ "leader": leader })))
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
        (status = 404, description = "There is no leader (a standby with none known)", body = crate::api::openapi::ErrorBody),
    )
)]
pub async fn abdicate(
    State(shared): State<Shared>,
    ha: Option<Extension<RoleView>>,
) -> Result<Json<Value>, ApiError> {
    match ha {
        // A standby passes this to the leader; one that gets it anyway (no
        // leader known) answers as Marathon's non-leader does.
        Some(Extension(view)) if !view.now().leading => {
            return Err(ApiError::NotFound("There is no leader".into()));
        }
        Some(Extension(view)) => view.abdicate(),
        None => {
            if let Some(mesos) = shared.mesos.get() {
                mesos.reconnect();
            }
        }
    }
    Ok(Json(json!({ "message": "Leadership abdicated" })))
}

#[utoipa::path(
    get,
    path = "/ping",
    tag = "server",
    summary = "Liveness",
    // Open to all, credentials or none.
    security(()),
    responses(
        (status = 200, description = "pong", body = String, content_type = "text/plain"),
    )
)]
pub async fn ping() -> &'static str {
    "pong"
}
