//! Where a `MasterInfo` says its master is: how a master announces itself
//! in ZooKeeper, as JSON (apache/mesos `include/mesos/mesos.proto`
//! `MasterInfo` and `Address`).

use super::MasterInfo;
use reqwest::Url;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterInfoError {
    #[error("not a JSON MasterInfo: {0}")]
    Json(String),
    #[error("MasterInfo {id} names no address a scheduler can reach")]
    NoAddress { id: String },
}

impl MasterInfo {
    pub fn from_json(data: &[u8]) -> Result<MasterInfo, MasterInfoError> {
        serde_json::from_slice(data).map_err(|e| MasterInfoError::Json(e.to_string()))
    }

    /// Where its scheduler API is: `http://address.ip:address.port`
    /// (`address.hostname` without an ip; the deprecated `ip` and `port`
    /// without an address).
    pub fn url(&self) -> Result<Url, MasterInfoError> {
        let no_address = || MasterInfoError::NoAddress {
            id: self.id.clone(),
        };
        let (host, port) = match &self.address {
            Some(address) => {
                let host = address.ip.clone().or_else(|| address.hostname.clone());
                (host, address.port)
            }
            None => {
                let ip = Ipv4Addr::from(self.ip.to_le_bytes());
                (Some(ip.to_string()), self.port)
            }
        };
        let port = u16::try_from(port).ok().filter(|p| *p != 0);
        let host = host.filter(|h| !h.is_empty());
        let (Some(host), Some(port)) = (host, port) else {
            return Err(no_address());
        };
        let host = match host.parse::<std::net::Ipv6Addr>() {
            Ok(v6) => format!("[{v6}]"),
            Err(_) => host,
        };
        Url::parse(&format!("http://{host}:{port}")).map_err(|_| no_address())
    }

    /// Its web UI as Marathon names the leading master's
    /// (`mesos_leader_ui_url`): `http://<hostname>:<port>/`.
    pub fn ui_url(&self) -> String {
        let address = self.address.as_ref();
        let host = self
            .hostname
            .clone()
            .or_else(|| address.and_then(|a| a.hostname.clone()))
            .or_else(|| address.and_then(|a| a.ip.clone()))
            .unwrap_or_else(|| Ipv4Addr::from(self.ip.to_le_bytes()).to_string());
        format!("http://{host}:{}/", self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a Mesos 1.11 master writes (`JSON::protobuf(MasterInfo)`).
    const ANNOUNCED: &str = r#"{"address":{"hostname":"m1.example","ip":"10.0.0.7","port":5050},
        "capabilities":[{"type":"AGENT_UPDATE"},{"type":"AGENT_DRAINING"}],
        "hostname":"m1.example","id":"6f3c5d1e-1d2b-4a2c-9b1e-0c3b7c1f0a11","ip":117440522,
        "pid":"master@10.0.0.7:5050","port":5050,"version":"1.11.0"}"#;

    #[test]
    fn the_address_names_the_scheduler_api_and_the_hostname_the_ui() {
        let info = MasterInfo::from_json(ANNOUNCED.as_bytes()).expect("parses");
        assert_eq!(
            info.url().expect("an address").as_str(),
            "http://10.0.0.7:5050/"
        );
        assert_eq!(info.ui_url(), "http://m1.example:5050/");
    }

    #[test]
    fn before_address_the_packed_ip_and_port_serve() {
        let info =
            MasterInfo::from_json(br#"{"id":"a","ip":117440522,"port":5051}"#).expect("parses");
        assert_eq!(
            info.url().expect("an address").as_str(),
            "http://10.0.0.7:5051/"
        );
    }

    #[test]
    fn an_unusable_announcement_says_why() {
        let bad = MasterInfo::from_json(b"{\"id\":").expect_err("not JSON");
        assert!(bad.to_string().contains("not a JSON MasterInfo"), "{bad}");
        let info =
            MasterInfo::from_json(br#"{"id":"a","ip":0,"port":5050,"address":{"port":5050}}"#)
                .expect("parses");
        assert_eq!(
            info.url(),
            Err(MasterInfoError::NoAddress { id: "a".into() })
        );
    }
}
