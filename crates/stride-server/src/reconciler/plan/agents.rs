//! What Stride knows of each agent (host name, attributes), learnt from
//! offers: constraints on attributes need it for agents whose tasks run
//! there but which offer nothing right now.

use std::collections::BTreeMap;
use stride_log::event::AgentId;
use stride_mesos::types::{Attribute, Offer, ValueType};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agents {
    known: BTreeMap<AgentId, AgentInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentInfo {
    pub hostname: String,
    pub attributes: BTreeMap<String, String>,
}

impl Agents {
    pub fn learn(&mut self, offer: &Offer) {
        let id = AgentId(offer.agent_id.value.clone());
        self.known.insert(id, AgentInfo::of(offer));
    }

    pub fn get(&self, agent: &AgentId) -> Option<&AgentInfo> {
        self.known.get(agent)
    }

    pub fn all(&self) -> impl Iterator<Item = &AgentInfo> {
        self.known.values()
    }
}

impl AgentInfo {
    pub fn of(offer: &Offer) -> AgentInfo {
        AgentInfo {
            hostname: offer.hostname.clone(),
            attributes: offer
                .attributes
                .iter()
                .map(|a| (a.name.clone(), attribute_text(a)))
                .collect(),
        }
    }

    /// The value a constraint on `field` sees: the host name, or an
    /// attribute as Mesos prints it.
    pub fn field(&self, field: &str) -> Option<&str> {
        if field == "hostname" {
            return Some(&self.hostname);
        }
        self.attributes.get(field).map(String::as_str)
    }
}

fn attribute_text(attribute: &Attribute) -> String {
    match attribute.kind {
        ValueType::Text => attribute
            .text
            .as_ref()
            .map(|t| t.value.clone())
            .unwrap_or_default(),
        ValueType::Scalar => attribute
            .scalar
            .map(|s| s.value.to_string())
            .unwrap_or_default(),
        ValueType::Ranges => {
            let ranges = attribute.ranges.as_ref().map(|r| r.range.as_slice());
            let parts: Vec<String> = ranges
                .unwrap_or_default()
                .iter()
                .map(|r| format!("{}-{}", r.begin, r.end))
                .collect();
            format!("[{}]", parts.join(","))
        }
        ValueType::Set => {
            let items = attribute.set.as_ref().map(|s| s.item.join(","));
            format!("{{{}}}", items.unwrap_or_default())
        }
        // A value type newer than this code: no constraint can match it.
        ValueType::Other(_) => String::new(),
    }
}
