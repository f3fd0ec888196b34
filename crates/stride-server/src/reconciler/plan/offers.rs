//! The offers in hand as spendable space: cpus, mem, disk, gpus and port
//! ranges left on each, so one plan never books the same resource twice.

use super::agents::{AgentInfo, Agents};
use super::constraints::{Placed, Rules};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use stride_core::projection::{App, State};
use stride_log::event::AgentId;
use stride_log::event::app::AppDefinition;
use stride_mesos::types::{Offer, OfferId, Resource, ValueRange};

/// Why an offer was not used, in Marathon's words (`/v2/queue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum RejectReason {
    UnfulfilledConstraint,
    InsufficientCpus,
    InsufficientMemory,
    InsufficientDisk,
    InsufficientGpus,
    InsufficientPorts,
}

impl RejectReason {
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::UnfulfilledConstraint => "UnfulfilledConstraint",
            RejectReason::InsufficientCpus => "InsufficientCpus",
            RejectReason::InsufficientMemory => "InsufficientMemory",
            RejectReason::InsufficientDisk => "InsufficientDisk",
            RejectReason::InsufficientGpus => "InsufficientGpus",
            RejectReason::InsufficientPorts => "InsufficientPorts",
        }
    }
}

/// Where one task goes, and what it takes.
pub(super) struct Placement {
    pub offer: OfferId,
    pub agent: AgentId,
    pub host: String,
    pub ports: Vec<u32>,
    pub resources: Vec<Resource>,
}

pub(super) struct OfferPool<'a> {
    spaces: Vec<Space<'a>>,
}

struct Space<'a> {
    offer: &'a Offer,
    agent: AgentInfo,
    scalars: BTreeMap<&'a str, Vec<Slot<'a>>>,
    ports: Vec<PortSlot<'a>>,
    used: bool,
    /// The first reason (in funnel order) any app had to pass it over.
    rejected: Option<RejectReason>,
}

struct Slot<'a> {
    left: f64,
    template: &'a Resource,
}

#[derive(Clone)]
struct PortSlot<'a> {
    free: Vec<ValueRange>,
    template: &'a Resource,
}

/// Float sums of cpus such as 0.1 + 0.2 must still fit 0.3.
const EPSILON: f64 = 1e-9;

#[derive(Clone, Copy)]
enum PortNeed {
    Any,
    Exact(u32),
}

impl<'a> OfferPool<'a> {
    pub fn new(offers: &'a [Offer], state: &State) -> Self {
        // Ports our own live tasks hold stay booked even if an offer names
        // them: a launch whose ACCEPT never reached Mesos still owns them
        // until Mesos says otherwise.
        let mut held: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
        for task in state.tasks.values() {
            if let (Some(agent), false) = (&task.agent, task.condition.is_terminal()) {
                held.entry(agent.as_str()).or_default().extend(&task.ports);
            }
        }
        let spaces = offers
            .iter()
            .map(|offer| {
                let busy = held.get(offer.agent_id.value.as_str());
                Space::new(offer, busy)
            })
            .collect();
        OfferPool { spaces }
    }

    /// Takes room for one task of `app` from the first offer that has it,
    /// or says why each offer does not.
    pub fn place(
        &mut self,
        app: &App,
        rules: &Rules,
        placed: &Placed,
        agents: &Agents,
    ) -> Result<Placement, BTreeMap<RejectReason, u32>> {
        let definition = &app.definition;
        let needs = port_needs(definition);
        let mut rejections = BTreeMap::new();
        for space in &mut self.spaces {
            match space.take(definition, &needs, rules, placed, agents) {
                Ok(placement) => return Ok(placement),
                Err(reason) => {
                    *rejections.entry(reason).or_insert(0) += 1;
                    space.rejected = Some(space.rejected.map_or(reason, |r| r.min(reason)));
                }
            }
        }
        Err(rejections)
    }

    /// Offers no launch uses, and why: the first reason in the funnel
    /// any app had to pass one over, `None` if no app looked at it.
    pub fn unused(&self) -> Vec<(OfferId, Option<RejectReason>)> {
        self.spaces
            .iter()
            .filter(|s| !s.used)
            .map(|s| (s.offer.id.clone(), s.rejected))
            .collect()
    }
}

impl<'a> Space<'a> {
    fn new(offer: &'a Offer, busy: Option<&BTreeSet<u32>>) -> Self {
        let mut scalars: BTreeMap<&str, Vec<Slot>> = BTreeMap::new();
        let mut ports = Vec::new();
        for resource in &offer.resources {
            if let Some(scalar) = resource.scalar {
                scalars.entry(&resource.name).or_default().push(Slot {
                    left: scalar.value,
                    template: resource,
                });
            }
            if let (Some(ranges), "ports") = (&resource.ranges, resource.name.as_str()) {
                let mut free = ranges.range.clone();
                for port in busy.into_iter().flatten() {
                    free = without(&free, u64::from(*port));
                }
                ports.push(PortSlot {
                    free,
                    template: resource,
                });
            }
        }
        Space {
            offer,
            agent: AgentInfo::of(offer),
            scalars,
            ports,
            used: false,
            rejected: None,
        }
    }

    fn take(
        &mut self,
        definition: &AppDefinition,
        needs: &[PortNeed],
        rules: &Rules,
        placed: &Placed,
        agents: &Agents,
    ) -> Result<Placement, RejectReason> {
        if rules.broken_by(&self.agent, placed, agents).is_some() {
            return Err(RejectReason::UnfulfilledConstraint);
        }
        let wanted = [
            ("cpus", definition.cpus, RejectReason::InsufficientCpus),
            ("mem", definition.mem, RejectReason::InsufficientMemory),
            ("disk", definition.disk, RejectReason::InsufficientDisk),
            (
                "gpus",
                f64::from(definition.gpus),
                RejectReason::InsufficientGpus,
            ),
        ];
        for (name, amount, reason) in wanted {
            if amount > EPSILON && self.left(name) + EPSILON < amount {
                return Err(reason);
            }
        }
        let mut ports = self.ports.clone();
        let chosen = allocate(&mut ports, needs).ok_or(RejectReason::InsufficientPorts)?;
        let mut resources = Vec::new();
        for (name, amount, _) in wanted {
            if amount > EPSILON {
                resources.extend(self.spend(name, amount));
            }
        }
        resources.extend(port_resources(&self.ports, &chosen));
        self.ports = ports;
        self.used = true;
        Ok(Placement {
            offer: self.offer.id.clone(),
            agent: AgentId(self.offer.agent_id.value.clone()),
            host: self.offer.hostname.clone(),
            ports: chosen.iter().map(|(_, p)| *p).collect(),
            resources,
        })
    }

    fn left(&self, name: &str) -> f64 {
        self.scalars
            .get(name)
            .map_or(0.0, |slots| slots.iter().map(|s| s.left).sum())
    }

    /// Takes `amount` from the slots of `name`, in order, one resource per
    /// slot drawn from (each keeps its role and allocation info).
    fn spend(&mut self, name: &str, mut amount: f64) -> Vec<Resource> {
        let mut taken = Vec::new();
        for slot in self.scalars.get_mut(name).into_iter().flatten() {
            if amount <= EPSILON {
                break;
            }
            let part = amount.min(slot.left);
            if part <= EPSILON {
                continue;
            }
            slot.left -= part;
            amount -= part;
            let mut resource = slot.template.clone();
            resource.scalar = Some(stride_mesos::types::Scalar { value: part });
            taken.push(resource);
        }
        taken
    }
}

fn port_needs(definition: &AppDefinition) -> Vec<PortNeed> {
    if definition.uses_port_mappings() {
        let mappings = definition.container.iter().flat_map(|c| &c.port_mappings);
        return mappings
            .filter_map(|m| match m.host_port? {
                0 => Some(PortNeed::Any),
                port => Some(PortNeed::Exact(port)),
            })
            .collect();
    }
    definition
        .port_definitions
        .iter()
        .map(|d| {
            if definition.require_ports {
                PortNeed::Exact(d.port)
            } else {
                PortNeed::Any
            }
        })
        .collect()
}

/// Picks a port for every need (exact ones first, then the lowest free),
/// as (slot index, port) in need order; `None` if any cannot be had.
fn allocate(slots: &mut [PortSlot], needs: &[PortNeed]) -> Option<Vec<(usize, u32)>> {
    let mut chosen = vec![None; needs.len()];
    for (i, need) in needs.iter().enumerate() {
        if let PortNeed::Exact(port) = need {
            let slot = slots.iter().position(|s| contains(&s.free, *port))?;
            slots[slot].free = without(&slots[slot].free, u64::from(*port));
            chosen[i] = Some((slot, *port));
        }
    }
    for (i, need) in needs.iter().enumerate() {
        if let PortNeed::Any = need {
            let (slot, port) = slots
                .iter()
                .enumerate()
                .find_map(|(n, s)| s.free.first().map(|r| (n, r.begin)))?;
            slots[slot].free = without(&slots[slot].free, port);
            chosen[i] = Some((slot, u32::try_from(port).ok()?));
        }
    }
    chosen.into_iter().collect()
}

fn port_resources(slots: &[PortSlot], chosen: &[(usize, u32)]) -> Vec<Resource> {
    let mut by_slot: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for (slot, port) in chosen {
        by_slot.entry(*slot).or_default().push(u64::from(*port));
    }
    by_slot
        .into_iter()
        .map(|(slot, mut ports)| {
            ports.sort_unstable();
            let mut ranges: Vec<ValueRange> = Vec::new();
            for port in ports {
                match ranges.last_mut() {
                    Some(last) if last.end + 1 == port => last.end = port,
                    _ => ranges.push(ValueRange {
                        begin: port,
                        end: port,
                    }),
                }
            }
            let mut resource = slots[slot].template.clone();
            resource.ranges = Some(stride_mesos::types::Ranges { range: ranges });
            resource
        })
        .collect()
}

fn contains(ranges: &[ValueRange], port: u32) -> bool {
    let port = u64::from(port);
    ranges.iter().any(|r| r.begin <= port && port <= r.end)
}

fn without(ranges: &[ValueRange], port: u64) -> Vec<ValueRange> {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    for r in ranges {
        if port < r.begin || port > r.end {
            out.push(*r);
            continue;
        }
        if r.begin < port {
            out.push(ValueRange {
                begin: r.begin,
                end: port - 1,
            });
        }
        if port < r.end {
            out.push(ValueRange {
                begin: port + 1,
                end: r.end,
            });
        }
    }
    out
}
