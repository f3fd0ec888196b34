//! Agents and resource arithmetic: scalars (cpus, mem, disk) and port
//! ranges, with the bookkeeping a master keeps per agent.

use serde_json::{Value, json};

use stride_mesos::types::{
    AgentId, AllocationInfo, Attribute, Resource, Scalar, ValueRange, ValueText, ValueType,
};

use super::LocalClusterError;
use super::config::PortRange;

/// Mesos keeps scalars in fixed point with three decimals; so do we, so
/// that 0.1 + 0.2 subtracts back to exactly nothing.
type Milli = i64;

fn to_milli(value: f64) -> Milli {
    (value * 1000.0).round() as Milli
}

fn from_milli(value: Milli) -> f64 {
    value as f64 / 1000.0
}

/// The resources this cluster knows: anything else in a task is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResourceSet {
    cpus: Milli,
    mem: Milli,
    disk: Milli,
    /// Sorted, disjoint, non-adjacent inclusive ranges.
    ports: Vec<(u64, u64)>,
}

impl ResourceSet {
    pub(crate) fn new(cpus: f64, mem: f64, disk: f64, ports: PortRange) -> Self {
        Self {
            cpus: to_milli(cpus),
            mem: to_milli(mem),
            disk: to_milli(disk),
            ports: vec![(ports.begin, ports.end)],
        }
    }

    pub(crate) fn from_mesos(resources: &[Resource]) -> Self {
        let mut set = Self::default();
        for resource in resources {
            let scalar = resource.scalar.map_or(0, |s| to_milli(s.value));
            match resource.name.as_str() {
                "cpus" => set.cpus += scalar,
                "mem" => set.mem += scalar,
                "disk" => set.disk += scalar,
                "ports" => {
                    for range in resource.ranges.iter().flat_map(|r| &r.range) {
                        set.ports.push((range.begin, range.end));
                    }
                }
                _ => {}
            }
        }
        set.ports = merge(std::mem::take(&mut set.ports));
        set
    }

    /// Whether an offer of these would be worth making: Mesos' minimum
    /// allocatable is 0.01 cpus or 32 MB of memory.
    pub(crate) fn is_allocatable(&self) -> bool {
        self.cpus >= 10 || self.mem >= 32_000
    }

    pub(crate) fn contains(&self, other: &ResourceSet) -> bool {
        self.cpus >= other.cpus
            && self.mem >= other.mem
            && self.disk >= other.disk
            && other.ports.iter().all(|&(begin, end)| {
                self.ports
                    .iter()
                    .any(|&(have_begin, have_end)| have_begin <= begin && end <= have_end)
            })
    }

    pub(crate) fn add(&mut self, other: &ResourceSet) {
        self.cpus += other.cpus;
        self.mem += other.mem;
        self.disk += other.disk;
        let mut ports = std::mem::take(&mut self.ports);
        ports.extend_from_slice(&other.ports);
        self.ports = merge(ports);
    }

    /// Removes `other`; the caller has checked `contains(other)`.
    pub(crate) fn subtract(&mut self, other: &ResourceSet) {
        self.cpus -= other.cpus;
        self.mem -= other.mem;
        self.disk -= other.disk;
        for &(begin, end) in &other.ports {
            self.ports = self
                .ports
                .iter()
                .flat_map(|&(have_begin, have_end)| {
                    let below = (have_begin < begin).then(|| (have_begin, have_end.min(begin - 1)));
                    let above = (have_end > end).then(|| (have_begin.max(end + 1), have_end));
                    if have_end < begin || have_begin > end {
                        vec![(have_begin, have_end)]
                    } else {
                        below.into_iter().chain(above).collect()
                    }
                })
                .collect();
        }
    }

    /// Every port, in order; what `PORT0..N` are made of.
    pub(crate) fn port_list(&self) -> impl Iterator<Item = u64> + '_ {
        self.ports.iter().flat_map(|&(begin, end)| begin..=end)
    }

    /// The offer shape of a real master: ports, cpus, mem, disk, each with
    /// the deprecated `role: "*"` and, for MULTI_ROLE frameworks, the
    /// allocation role.
    pub(crate) fn to_mesos(&self, allocation_role: Option<&str>) -> Vec<Resource> {
        let mut resources = Vec::new();
        if !self.ports.is_empty() {
            let ranges = self
                .ports
                .iter()
                .map(|&(begin, end)| ValueRange { begin, end })
                .collect();
            resources.push(Resource::ranges("ports", ranges));
        }
        for (name, value) in [("cpus", self.cpus), ("mem", self.mem), ("disk", self.disk)] {
            if value > 0 {
                resources.push(Resource::scalar(name, from_milli(value)));
            }
        }
        for resource in &mut resources {
            resource.role = Some("*".to_string());
            resource.allocation_info = allocation_role.map(|role| AllocationInfo {
                role: Some(role.to_string()),
            });
        }
        resources
    }

    /// Mesos' text form, as in TASK_ERROR messages:
    /// `ports(allocated: *):[31001-32000]; cpus(allocated: *):3.8`.
    pub(crate) fn describe(&self, role: &str) -> String {
        let mut parts = Vec::new();
        if !self.ports.is_empty() {
            parts.push(format!("ports(allocated: {role}):{}", self.ports_text()));
        }
        for (name, value) in [("cpus", self.cpus), ("mem", self.mem), ("disk", self.disk)] {
            if value > 0 {
                parts.push(format!("{name}(allocated: {role}):{}", from_milli(value)));
            }
        }
        parts.join("; ")
    }

    fn ports_text(&self) -> String {
        let ranges: Vec<String> = self
            .ports
            .iter()
            .map(|(begin, end)| format!("{begin}-{end}"))
            .collect();
        format!("[{}]", ranges.join(", "))
    }

    /// The `/master/state` shape: `{"cpus": 4.0, ..., "ports": "[31000-32000]"}`.
    pub(crate) fn state_json(&self) -> Value {
        let mut json = json!({
            "disk": from_milli(self.disk),
            "mem": from_milli(self.mem),
            "gpus": 0.0,
            "cpus": from_milli(self.cpus),
        });
        if !self.ports.is_empty() {
            json["ports"] = Value::String(self.ports_text());
        }
        json
    }
}

fn merge(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (begin, end) in ranges {
        match merged.last_mut() {
            Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((begin, end)),
        }
    }
    merged
}

/// One simulated agent. `used` is held by tasks, `offered` by outstanding
/// offers; what is left is free to offer.
#[derive(Debug)]
pub(crate) struct Agent {
    pub(crate) id: AgentId,
    /// `slave(N)`, the agent's libprocess name in offers and state.
    pub(crate) pid_name: String,
    pub(crate) hostname: String,
    pub(crate) attributes: Vec<Attribute>,
    pub(crate) total: ResourceSet,
    pub(crate) used: ResourceSet,
    pub(crate) offered: ResourceSet,
    pub(crate) registered_time: f64,
}

impl Agent {
    pub(crate) fn free(&self) -> ResourceSet {
        let mut free = self.total.clone();
        free.subtract(&self.used);
        free.subtract(&self.offered);
        free
    }
}

/// Parses Mesos attribute syntax, `rack:r1;zone:a;level:3`: numbers become
/// SCALAR attributes, everything else TEXT, as on a Mesos agent.
pub(crate) fn parse_attributes(text: &str) -> Result<Vec<Attribute>, LocalClusterError> {
    text.split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair
                .split_once(':')
                .filter(|(name, value)| !name.trim().is_empty() && !value.trim().is_empty())
                .ok_or_else(|| LocalClusterError::InvalidAttribute(text.to_string()))?;
            let (name, value) = (name.trim().to_string(), value.trim());
            let attribute = match value.parse::<f64>() {
                Ok(number) if number.is_finite() => Attribute {
                    name,
                    kind: ValueType::Scalar,
                    scalar: Some(Scalar { value: number }),
                    ranges: None,
                    set: None,
                    text: None,
                },
                _ => Attribute {
                    name,
                    kind: ValueType::Text,
                    scalar: None,
                    ranges: None,
                    set: None,
                    text: Some(ValueText {
                        value: value.to_string(),
                    }),
                },
            };
            Ok(attribute)
        })
        .collect()
}

/// The `/master/state` shape of attributes: `{"rack": "r1", "level": 3.0}`.
pub(crate) fn attributes_json(attributes: &[Attribute]) -> Value {
    let map = attributes
        .iter()
        .map(|attribute| {
            let value = match (&attribute.scalar, &attribute.text) {
                (Some(scalar), _) => json!(scalar.value),
                (None, Some(text)) => json!(text.value),
                (None, None) => Value::Null,
            };
            (attribute.name.clone(), value)
        })
        .collect();
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(cpus: f64, mem: f64, ports: &[(u64, u64)]) -> ResourceSet {
        ResourceSet {
            cpus: to_milli(cpus),
            mem: to_milli(mem),
            disk: 0,
            ports: ports.to_vec(),
        }
    }

    #[test]
    fn subtracting_ports_splits_ranges_and_adding_merges_them_back() {
        let mut free = set(4.0, 8192.0, &[(31000, 32000)]);
        let task = set(0.1, 32.0, &[(31000, 31000), (31005, 31006)]);
        assert!(free.contains(&task));
        free.subtract(&task);
        assert_eq!(free.ports, vec![(31001, 31004), (31007, 32000)]);
        assert_eq!(free.cpus, 3900);
        assert!(!free.contains(&task));
        free.add(&task);
        assert_eq!(free, set(4.0, 8192.0, &[(31000, 32000)]));
    }

    #[test]
    fn describe_matches_the_mesos_text_form() {
        let offer = set(3.8, 8128.0, &[(31001, 32000)]);
        assert_eq!(
            offer.describe("*"),
            "ports(allocated: *):[31001-32000]; cpus(allocated: *):3.8; mem(allocated: *):8128"
        );
    }

    #[test]
    fn attributes_parse_as_text_or_scalar() {
        let attributes = parse_attributes("rack:r1; level:3").expect("valid");
        assert_eq!(
            attributes_json(&attributes),
            json!({"rack": "r1", "level": 3.0})
        );
        assert!(parse_attributes("rack").is_err());
        assert!(parse_attributes("rack:").is_err());
    }
}
