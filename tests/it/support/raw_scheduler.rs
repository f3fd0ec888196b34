//! A deliberately dumb scheduler for protocol tests: raw JSON over reqwest,
//! RecordIO decoded with Stride's decoder, nothing hidden. Tests see every
//! event, header and status code exactly as a client would.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use stride_mesos::recordio::RecordIoDecoder;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

pub fn framework_info(name: &str, failover_timeout: f64) -> Value {
    json!({
        "user": "stride-test",
        "name": name,
        "failover_timeout": failover_timeout,
        "checkpoint": true,
        "roles": ["*"],
        "capabilities": [
            {"type": "MULTI_ROLE"},
            {"type": "TASK_KILLING_STATE"},
            {"type": "PARTITION_AWARE"}
        ]
    })
}

pub struct RawScheduler {
    pub http: reqwest::Client,
    pub url: String,
    pub framework_id: String,
    pub stream_id: String,
    /// The SUBSCRIBED event.
    pub subscribed: Value,
    /// The SUBSCRIBE response's status and headers.
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    events: mpsc::UnboundedReceiver<Value>,
    /// Events read while waiting for something else, oldest first.
    backlog: VecDeque<Value>,
    reader: JoinHandle<()>,
}

impl Drop for RawScheduler {
    fn drop(&mut self) {
        // Closing the stream is how a scheduler "crashes".
        self.reader.abort();
    }
}

impl RawScheduler {
    /// SUBSCRIBEs (first time, or as a failover when `info` has an `id`)
    /// and waits for SUBSCRIBED.
    pub async fn subscribe(url: &str, info: Value) -> Self {
        let mut call = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}});
        if let Some(id) = info.get("id") {
            call["framework_id"] = id.clone();
        }
        let http = reqwest::Client::new();
        let response = http
            .post(url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .json(&call)
            .send()
            .await
            .expect("SUBSCRIBE request");
        let status = response.status();
        let headers = response.headers().clone();
        let stream_id = headers
            .get("Mesos-Stream-Id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let (sender, events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut decoder = RecordIoDecoder::default();
            while let Some(Ok(chunk)) = body.next().await {
                decoder.push(&chunk);
                while let Ok(Some(record)) = decoder.next_record() {
                    let event: Value = serde_json::from_slice(&record).expect("event is JSON");
                    if sender.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        let mut scheduler = Self {
            http,
            url: url.to_string(),
            framework_id: String::new(),
            stream_id,
            subscribed: Value::Null,
            status,
            headers,
            events,
            backlog: VecDeque::new(),
            reader,
        };
        let subscribed = scheduler.next_event().await;
        assert_eq!(subscribed["type"], "SUBSCRIBED", "{subscribed}");
        scheduler.framework_id = subscribed["subscribed"]["framework_id"]["value"]
            .as_str()
            .expect("framework id")
            .to_string();
        scheduler.subscribed = subscribed;
        scheduler
    }

    pub async fn next_event(&mut self) -> Value {
        if let Some(event) = self.backlog.pop_front() {
            return event;
        }
        tokio::time::timeout(EVENT_TIMEOUT, self.events.recv())
            .await
            .expect("an event in time")
            .expect("stream open")
    }

    /// The next event within `wait`, if any.
    pub async fn try_next_event(&mut self, wait: Duration) -> Option<Value> {
        if let Some(event) = self.backlog.pop_front() {
            return Some(event);
        }
        tokio::time::timeout(wait, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// The first event (backlog first) for which `want` holds; others go
    /// to the backlog. Reliable updates are acknowledged as they arrive
    /// when `ack` is set.
    pub async fn wait_for(&mut self, ack: bool, want: impl Fn(&Value) -> bool) -> Value {
        if let Some(index) = self.backlog.iter().position(&want) {
            return self.backlog.remove(index).expect("index in range");
        }
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no matching event in time; skipped {:?}", self.backlog))
                .expect("stream open");
            if ack && event["type"] == "UPDATE" {
                self.acknowledge(&event).await;
            }
            if want(&event) {
                return event;
            }
            self.backlog.push_back(event);
        }
    }

    pub async fn wait_for_offers(&mut self) -> Vec<Value> {
        let event = self.wait_for(true, |e| e["type"] == "OFFERS").await;
        event["offers"]["offers"]
            .as_array()
            .expect("offers")
            .clone()
    }

    /// Waits for `task_id` to reach `state`, acknowledging everything.
    pub async fn wait_for_state(&mut self, task_id: &str, state: &str) -> Value {
        let event = self
            .wait_for(true, |e| {
                e["type"] == "UPDATE"
                    && e["update"]["status"]["task_id"]["value"] == task_id
                    && e["update"]["status"]["state"] == state
            })
            .await;
        event["update"]["status"].clone()
    }

    /// POSTs a call on this subscription; returns status and body.
    pub async fn call(&self, mut call: Value) -> (u16, String) {
        call["framework_id"] = json!({"value": self.framework_id});
        self.post_raw(&call.to_string(), Some(&self.stream_id))
            .await
    }

    pub async fn post_raw(&self, body: &str, stream_id: Option<&str>) -> (u16, String) {
        let mut request = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(stream_id) = stream_id {
            request = request.header("Mesos-Stream-Id", stream_id);
        }
        let response = request.send().await.expect("call");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    pub async fn acknowledge(&self, event: &Value) {
        let status = &event["update"]["status"];
        let Some(uuid) = status.get("uuid") else {
            return;
        };
        let (code, body) = self
            .call(json!({
                "type": "ACKNOWLEDGE",
                "acknowledge": {
                    "agent_id": status["agent_id"],
                    "task_id": status["task_id"],
                    "uuid": uuid,
                }
            }))
            .await;
        assert_eq!((code, body.as_str()), (202, ""), "ACKNOWLEDGE");
    }

    pub async fn accept(&self, offer: &Value, tasks: Vec<Value>, refuse_seconds: f64) {
        let (code, body) = self
            .call(json!({
                "type": "ACCEPT",
                "accept": {
                    "offer_ids": [offer["id"]],
                    "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
                    "filters": {"refuse_seconds": refuse_seconds}
                }
            }))
            .await;
        assert_eq!((code, body.as_str()), (202, ""), "ACCEPT");
    }

    pub async fn decline(&self, offer: &Value, refuse_seconds: f64) {
        let (code, _) = self
            .call(json!({
                "type": "DECLINE",
                "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": refuse_seconds}}
            }))
            .await;
        assert_eq!(code, 202, "DECLINE");
    }

    pub async fn kill(&self, task_id: &str) {
        let (code, _) = self
            .call(json!({"type": "KILL", "kill": {"task_id": {"value": task_id}}}))
            .await;
        assert_eq!(code, 202, "KILL");
    }
}

/// A command task for `offer`'s agent; `ports` are taken from the offer.
pub fn command_task(offer: &Value, task_id: &str, command: &str, ports: &[u64]) -> Value {
    let mut resources = vec![
        json!({"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}),
        json!({"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}}),
    ];
    if !ports.is_empty() {
        let ranges: Vec<Value> = ports
            .iter()
            .map(|p| json!({"begin": p, "end": p}))
            .collect();
        resources.push(json!({"name": "ports", "type": "RANGES", "ranges": {"range": ranges}}));
    }
    json!({
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": resources,
        "command": {"value": command}
    })
}

/// The first `count` ports of an offer.
pub fn offered_ports(offer: &Value, count: usize) -> Vec<u64> {
    let ranges = offer["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["name"] == "ports")
        .flat_map(|r| r["ranges"]["range"].as_array().cloned().unwrap_or_default());
    ranges
        .flat_map(|range| {
            let begin = range["begin"].as_u64().unwrap_or(0);
            let end = range["end"].as_u64().unwrap_or(0);
            begin..=end
        })
        .take(count)
        .collect()
}

pub fn scalar(offer: &Value, name: &str) -> f64 {
    offer["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == name)
        .and_then(|r| r["scalar"]["value"].as_f64())
        .unwrap_or(0.0)
}
