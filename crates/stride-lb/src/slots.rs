//! Server slots: which task sits in which `srvN` of a backend, and the
//! Runtime API commands that move a backend from one assignment to the
//! next. Tasks keep their slot for as long as they are served, so a change
//! touches only the slots that changed.

use super::config::{Backend, Backends, Endpoint, slot_count};
use super::model::{BackendSpec, Desired, Standing};
use super::runtime::{AdminState, ServerCommand};
use crate::event::{AppId, TaskId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::time::Instant;

/// A backend as the state wants it, hosts resolved.
pub(super) struct Wanted {
    pub spec: BackendSpec,
    pub instances: u32,
    pub config_version: u64,
    pub endpoints: Vec<Endpoint>,
}

/// The desired backends with task hosts resolved; tasks on hosts that do
/// not resolve are not served (and logged).
pub(super) async fn resolve(
    resolver: &mut Resolver,
    desired: &Desired,
) -> BTreeMap<String, Wanted> {
    let mut wanted = BTreeMap::new();
    for (name, backend) in &desired.backends {
        let mut endpoints = Vec::with_capacity(backend.members.len());
        for member in &backend.members {
            if let Some(ip) = resolver.resolve(&member.host).await {
                endpoints.push(Endpoint {
                    task: member.task.clone(),
                    addr: SocketAddr::new(ip, member.port),
                    standing: member.standing,
                });
            }
        }
        wanted.insert(
            name.clone(),
            Wanted {
                spec: backend.spec.clone(),
                instances: backend.instances,
                config_version: backend.config_version,
                endpoints,
            },
        );
    }
    wanted
}

/// Backends for a new file: slots sized from the state, tasks kept in the
/// slots they had in `installed`, some apps left out.
pub(super) fn layout(
    wanted: &BTreeMap<String, Wanted>,
    installed: Option<&Backends>,
    left_out: impl Fn(&AppId) -> bool,
) -> Backends {
    wanted
        .iter()
        .filter(|(_, w)| !left_out(&w.spec.app))
        .map(|(name, w)| {
            let capacity = slot_count(w.instances, w.endpoints.len());
            let previous = installed
                .and_then(|i| i.get(name))
                .map_or(&[][..], |b| &b.slots[..]);
            let slots = place(previous, &w.endpoints, capacity);
            let backend = Backend {
                spec: w.spec.clone(),
                slots,
            };
            (name.clone(), backend)
        })
        .collect()
}

/// New slots for `endpoints`: each task keeps the slot it had; newcomers
/// take the lowest free ones; what does not fit waits for a reload.
pub(super) fn place(
    previous: &[Option<Endpoint>],
    endpoints: &[Endpoint],
    capacity: usize,
) -> Vec<Option<Endpoint>> {
    let by_task: HashMap<&TaskId, &Endpoint> = endpoints.iter().map(|e| (&e.task, e)).collect();
    let mut slots: Vec<Option<Endpoint>> = vec![None; capacity];
    let mut placed = HashSet::new();
    for (slot, old) in slots.iter_mut().zip(previous) {
        if let Some(endpoint) = old.as_ref().and_then(|o| by_task.get(&o.task)) {
            *slot = Some((*endpoint).clone());
            placed.insert(&endpoint.task);
        }
    }
    let mut free = 0;
    for endpoint in endpoints.iter().filter(|e| !placed.contains(&e.task)) {
        while free < capacity && slots[free].is_some() {
            free += 1;
        }
        let Some(slot) = slots.get_mut(free) else {
            break;
        };
        *slot = Some(endpoint.clone());
    }
    slots
}

/// Commands turning slots `old` (unknown when `None`) into `new`.
pub(super) fn changes(
    backend: &str,
    old: Option<&[Option<Endpoint>]>,
    new: &[Option<Endpoint>],
    out: &mut Vec<ServerCommand>,
) {
    let state = |slot, state| ServerCommand::State {
        backend: backend.to_owned(),
        slot,
        state,
    };
    let admin = |endpoint: &Endpoint| match endpoint.standing {
        Standing::Ready => AdminState::Ready,
        // `Out` tasks never get a slot; draining is the safe reading anyway.
        Standing::Drain | Standing::Out => AdminState::Drain,
    };
    for (slot, after) in new.iter().enumerate() {
        let before = old.map(|o| o.get(slot).cloned().flatten());
        match (before, after) {
            (Some(None), None) => {}
            (None | Some(Some(_)), None) => out.push(state(slot, AdminState::Maint)),
            (Some(Some(was)), Some(now)) if was.task == now.task => {
                if was.addr != now.addr {
                    out.push(ServerCommand::Addr {
                        backend: backend.to_owned(),
                        slot,
                        addr: now.addr,
                    });
                }
                if was.standing != now.standing {
                    out.push(state(slot, admin(now)));
                }
            }
            (before, Some(now)) => {
                // Another task takes the slot: nothing new reaches the old
                // one while it is re-addressed.
                if matches!(before, Some(Some(_))) {
                    out.push(state(slot, AdminState::Maint));
                }
                out.push(ServerCommand::Addr {
                    backend: backend.to_owned(),
                    slot,
                    addr: now.addr,
                });
                out.push(state(slot, admin(now)));
            }
        }
    }
}

/// Task hosts are agent names: resolved once and cached, failures briefly.
#[derive(Default)]
pub(super) struct Resolver {
    cache: HashMap<String, (Option<IpAddr>, Instant)>,
}

impl Resolver {
    const FOUND_FOR: Duration = Duration::from_secs(300);
    const MISSING_FOR: Duration = Duration::from_secs(30);

    pub(super) async fn resolve(&mut self, host: &str) -> Option<IpAddr> {
        if let Ok(ip) = host.parse() {
            return Some(ip);
        }
        if host.is_empty() {
            return None;
        }
        if let Some((ip, at)) = self.cache.get(host) {
            let ttl = if ip.is_some() {
                Self::FOUND_FOR
            } else {
                Self::MISSING_FOR
            };
            if at.elapsed() < ttl {
                return *ip;
            }
        }
        let lookup =
            tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host, 0)));
        let ip = match lookup.await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                // IPv4 first: agents that have both are mostly reached over it.
                let v4 = addrs.iter().find(|a| a.is_ipv4());
                v4.or(addrs.first()).map(SocketAddr::ip)
            }
            _ => None,
        };
        if ip.is_none() {
            tracing::warn!(
                host,
                "Cannot resolve a task's host; its tasks are not served."
            );
        }
        self.cache.insert(host.to_owned(), (ip, Instant::now()));
        ip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(task: &str, port: u16, standing: Standing) -> Endpoint {
        Endpoint {
            task: TaskId::from(task),
            addr: SocketAddr::from(([10, 0, 0, 1], port)),
            standing,
        }
    }

    #[test]
    fn tasks_keep_their_slots_and_newcomers_fill_the_lowest_free_ones() {
        let a = endpoint("a", 1, Standing::Ready);
        let b = endpoint("b", 2, Standing::Ready);
        let c = endpoint("c", 3, Standing::Ready);
        let first = place(&[], &[a.clone(), b.clone()], 4);
        assert_eq!(first, [Some(a.clone()), Some(b.clone()), None, None]);
        let b_drains = endpoint("b", 2, Standing::Drain);
        let second = place(&first, &[c.clone(), b_drains.clone()], 4);
        assert_eq!(second, [Some(c.clone()), Some(b_drains), None, None]);
        let full = place(&[], &[a, b, c], 2);
        assert_eq!(full.iter().flatten().count(), 2, "what does not fit waits");
    }

    #[test]
    fn changes_touch_only_what_changed() {
        let a = endpoint("a", 1, Standing::Ready);
        let mut moved = endpoint("a", 9, Standing::Ready);
        let lines = |old: Option<&[Option<Endpoint>]>, new: &[Option<Endpoint>]| {
            let mut out = Vec::new();
            changes("be", old, new, &mut out);
            out.iter().map(ServerCommand::line).collect::<Vec<_>>()
        };
        assert!(lines(Some(&[Some(a.clone()), None]), &[Some(a.clone()), None]).is_empty());
        assert_eq!(
            lines(Some(&[None, None]), &[Some(a.clone()), None]),
            [
                "set server be/srv1 addr 10.0.0.1 port 1",
                "set server be/srv1 state ready"
            ]
        );
        assert_eq!(
            lines(Some(&[Some(a.clone())]), &[None]),
            ["set server be/srv1 state maint"]
        );
        moved.standing = Standing::Drain;
        assert_eq!(
            lines(Some(&[Some(a.clone())]), &[Some(moved.clone())]),
            [
                "set server be/srv1 addr 10.0.0.1 port 9",
                "set server be/srv1 state drain"
            ]
        );
        let b = endpoint("b", 2, Standing::Ready);
        assert_eq!(
            lines(Some(&[Some(a.clone())]), &[Some(b)]),
            [
                "set server be/srv1 state maint",
                "set server be/srv1 addr 10.0.0.1 port 2",
                "set server be/srv1 state ready"
            ]
        );
        assert_eq!(
            lines(None, &[Some(a), None]),
            [
                "set server be/srv1 addr 10.0.0.1 port 1",
                "set server be/srv1 state ready",
                "set server be/srv2 state maint"
            ],
            "unknown runtime state: everything is set"
        );
    }
}
