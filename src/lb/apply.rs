//! Bringing HAProxy in line with the state, the cheapest way that is safe.
//!
//! Server changes (a task up, down, draining, healthy or not) go through
//! the Runtime API into pre-allocated slots: no reload. Anything else (an
//! app, a service port, labels, or more slots than a backend has) writes a
//! checked file and reloads seamlessly, then sets every slot again, since
//! a reload is also how a stale runtime state would come back. An app whose
//! part of the file HAProxy rejects is left out until its definition
//! changes, so it never holds up the others.

use super::config::{Backend, Backends, Endpoint, RenderOptions, Rendered, render, slot_count};
use super::install::{ConfigFile, InstallError, rejected_apps};
use super::master::MasterError;
use super::model::{self, BackendSpec, Desired, Selection, Standing};
use super::runtime::{AdminState, RuntimeApi, RuntimeError, ServerCommand};
use super::status::{AppNote, StatusHandle, Took};
use super::supervisor::Haproxy;
use crate::event::{AppId, TaskId};
use crate::projection::State;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot update HAProxy's servers")]
    Runtime(#[source] RuntimeError),
    #[error("cannot install the new configuration")]
    Install(#[source] InstallError),
    #[error(
        "HAProxy did not take the new configuration (kept as {kept}); the old one keeps serving"
    )]
    Reload {
        kept: PathBuf,
        #[source]
        source: MasterError,
    },
    #[error(
        "HAProxy serves a configuration this sidecar has not confirmed, and the new one failed (kept as {kept})"
    )]
    NothingInstalled { kept: PathBuf },
}

/// A backend as the state wants it, hosts resolved.
struct Wanted {
    spec: BackendSpec,
    instances: u32,
    config_version: u64,
    endpoints: Vec<Endpoint>,
}

struct Rejection {
    config_version: u64,
    reason: String,
}

pub struct Applier {
    render: RenderOptions,
    selection: Selection,
    file: ConfigFile,
    haproxy: Arc<Haproxy>,
    runtime: RuntimeApi,
    resolver: Resolver,
    /// What HAProxy serves, slot by slot. Kept when HAProxy restarts so
    /// tasks keep their slots.
    installed: Option<Backends>,
    /// Whether HAProxy's runtime state is known to match `installed`.
    in_sync: bool,
    /// The text of the installed file, as last written or confirmed.
    written: Option<String>,
    rejected: BTreeMap<AppId, Rejection>,
    /// A file that passed `haproxy -c` but failed to load (a port taken by
    /// another process...): not tried again until the text changes.
    failed: Option<String>,
    status: StatusHandle,
}

impl Applier {
    pub fn new(
        render: RenderOptions,
        selection: Selection,
        file: ConfigFile,
        haproxy: Arc<Haproxy>,
        status: StatusHandle,
    ) -> Applier {
        Applier {
            runtime: RuntimeApi::new(&render.stats_socket),
            render,
            selection,
            file,
            haproxy,
            resolver: Resolver::default(),
            installed: None,
            in_sync: false,
            written: None,
            rejected: BTreeMap::new(),
            failed: None,
            status,
        }
    }

    /// HAProxy restarted or was replaced: set everything again next time.
    pub fn invalidate(&mut self) {
        self.in_sync = false;
        self.runtime.disconnect();
    }

    /// Makes HAProxy serve `state`. `Ok` means every server change is in
    /// effect for every backend HAProxy has; apps left out are in /status.
    pub async fn apply(&mut self, state: &State) -> Result<(), ApplyError> {
        let desired = model::desired(state, &self.selection);
        self.rejected.retain(|app, rejection| {
            desired
                .backends
                .values()
                .any(|b| &b.spec.app == app && b.config_version == rejection.config_version)
        });
        let wanted = resolve(&mut self.resolver, &desired).await;
        let result = self.converge(&wanted).await;
        self.report(&desired, result.as_ref().err());
        result
    }

    fn needs_reload(&self, wanted: &BTreeMap<String, Wanted>) -> bool {
        let Some(installed) = self.installed.as_ref().filter(|_| self.in_sync) else {
            return true;
        };
        let serving: Vec<(&String, &Wanted)> = wanted
            .iter()
            .filter(|(_, w)| !self.rejected.contains_key(&w.spec.app))
            .collect();
        installed.len() != serving.len()
            || serving.iter().any(|(name, w)| match installed.get(*name) {
                None => true,
                Some(backend) => {
                    backend.spec != w.spec
                        || backend.slots.len() < w.endpoints.len()
                        // Grow ahead of a deployment, not in the middle of it.
                        || backend.slots.len() < 2 * w.instances as usize
                }
            })
    }

    /// Server updates when they are enough; else a new file and a reload,
    /// tried again without each app HAProxy rejects.
    async fn converge(&mut self, wanted: &BTreeMap<String, Wanted>) -> Result<(), ApplyError> {
        let started = Instant::now();
        loop {
            if !self.needs_reload(wanted) {
                // What called for it was left out (a rejected app).
                return self.update_servers(wanted).await;
            }
            let next = layout(wanted, self.installed.as_ref(), &self.rejected);
            let rendered = render(&self.render, &next);
            let current = self.file.current();
            if !self.in_sync && current.as_deref() == Some(rendered.text.as_str()) {
                // HAProxy was started from this very file, or still serves
                // it: setting the servers is enough.
                self.installed = Some(next);
                self.written = current;
                return self.sync_servers(None).await;
            }
            if self.failed.as_deref() == Some(rendered.text.as_str()) {
                return self.fall_back(wanted).await;
            }
            if let Some((app, reason)) = self.taken_port(&next) {
                self.reject(&app, reason, wanted);
                continue;
            }
            match self.file.install_checked(&rendered.text).await {
                Ok(()) => {}
                Err(InstallError::Rejected { kept, output }) => {
                    let apps = rejected_apps(&output, &kept, &rendered);
                    if apps.is_empty() {
                        self.failed = Some(rendered.text);
                        self.fall_back(wanted).await?;
                        return Err(ApplyError::Install(InstallError::Rejected { kept, output }));
                    }
                    for app in apps {
                        self.reject(&app, alerts(&output), wanted);
                    }
                    continue;
                }
                Err(other) => return Err(ApplyError::Install(other)),
            }
            return match self.haproxy.master.reload().await {
                Ok(processes) => {
                    tracing::info!(
                        worker_pid = processes.worker_pid(),
                        backends = next.len(),
                        "HAProxy reloaded."
                    );
                    self.installed = Some(next);
                    self.written = Some(rendered.text);
                    self.failed = None;
                    self.invalidate();
                    self.sync_servers(None).await?;
                    self.status.record(Took::Reload, started.elapsed());
                    Ok(())
                }
                Err(source) => self.reload_failed(rendered, current, source, wanted).await,
            };
        }
    }

    /// Puts the old file back (HAProxy still serves it), keeps the new
    /// one aside, and keeps the old backends' servers current.
    async fn reload_failed(
        &mut self,
        rendered: Rendered,
        previous: Option<String>,
        source: MasterError,
        wanted: &BTreeMap<String, Wanted>,
    ) -> Result<(), ApplyError> {
        if let Some(previous) = &previous {
            self.file.install(previous).map_err(ApplyError::Install)?;
        }
        let kept = self
            .file
            .keep_rejected(&rendered.text)
            .map_err(ApplyError::Install)?;
        self.failed = Some(rendered.text);
        self.fall_back(wanted).await?;
        Err(ApplyError::Reload { kept, source })
    }

    /// The new file cannot be loaded: serve what can be served with the
    /// installed one.
    async fn fall_back(&mut self, wanted: &BTreeMap<String, Wanted>) -> Result<(), ApplyError> {
        if self.installed.is_none() {
            return Err(ApplyError::NothingInstalled {
                kept: self.file.rejected_path(),
            });
        }
        self.update_servers(wanted).await
    }

    /// Server changes only, into the installed backends' slots.
    async fn update_servers(
        &mut self,
        wanted: &BTreeMap<String, Wanted>,
    ) -> Result<(), ApplyError> {
        let Some(installed) = &self.installed else {
            return Ok(());
        };
        let mut next = installed.clone();
        for (name, backend) in next.iter_mut() {
            let endpoints = wanted.get(name).map_or(&[][..], |w| &w.endpoints[..]);
            backend.slots = place(&backend.slots, endpoints, backend.slots.len());
        }
        let before = match self.in_sync {
            true => Some(installed.clone()),
            false => None,
        };
        self.installed = Some(next);
        self.sync_servers(before.as_ref()).await
    }

    /// Sends what changed since `before` (everything when `None`), then
    /// rewrites the file so it shows the servers as they are.
    async fn sync_servers(&mut self, before: Option<&Backends>) -> Result<(), ApplyError> {
        let Some(installed) = &self.installed else {
            return Ok(());
        };
        let mut commands = Vec::new();
        for (name, backend) in installed {
            let old = before.and_then(|b| b.get(name)).map(|b| &b.slots[..]);
            changes(name, old, &backend.slots, &mut commands);
        }
        if !commands.is_empty() {
            let started = Instant::now();
            if let Err(error) = self.runtime.run(&commands).await {
                self.in_sync = false;
                return Err(ApplyError::Runtime(error));
            }
            self.status.record(Took::Runtime, started.elapsed());
        }
        self.in_sync = true;
        let text = render(&self.render, installed).text;
        if self.written.as_ref() != Some(&text) {
            self.file.install(&text).map_err(ApplyError::Install)?;
            self.written = Some(text);
        }
        Ok(())
    }

    /// A new frontend port another process holds would fail the reload
    /// without a word on which app is at fault; find it first. (Ports the
    /// installed file binds are HAProxy's own.)
    fn taken_port(&self, next: &Backends) -> Option<(AppId, String)> {
        let installed = self.installed.as_ref().filter(|_| self.in_sync)?;
        let bound: HashSet<u16> = installed.values().map(|b| b.spec.service_port).collect();
        let http_bound = installed.values().any(|b| !b.spec.vhosts.is_empty());
        for backend in next.values() {
            let spec = &backend.spec;
            let mut new_ports = Vec::new();
            if !bound.contains(&spec.service_port) {
                new_ports.push(spec.service_port);
            }
            if !spec.vhosts.is_empty() && !http_bound {
                new_ports.push(self.render.http_port);
            }
            for port in new_ports {
                if std::net::TcpListener::bind((self.render.bind, port)).is_err() {
                    let reason = format!("port {port} is in use on this host");
                    return Some((spec.app.clone(), reason));
                }
            }
        }
        None
    }

    fn reject(&mut self, app: &AppId, reason: String, wanted: &BTreeMap<String, Wanted>) {
        tracing::warn!(%app, %reason, kept = %self.file.rejected_path().display(), "HAProxy rejects this app's configuration; leaving it out until its definition changes.");
        let config_version = wanted
            .values()
            .find(|w| &w.spec.app == app)
            .map_or(0, |w| w.config_version);
        self.rejected.insert(
            app.clone(),
            Rejection {
                config_version,
                reason,
            },
        );
    }

    fn report(&self, desired: &Desired, error: Option<&ApplyError>) {
        let installed = self.installed.as_ref();
        let backends = installed.map_or(0, |i| i.len());
        let servers = installed.map_or(0, |i| {
            i.values().map(|b| b.slots.iter().flatten().count()).sum()
        });
        let note = |(app, reason): (&AppId, &String)| AppNote {
            app: app.to_string(),
            reason: reason.clone(),
        };
        let rejected = self
            .rejected
            .iter()
            .map(|(app, r)| note((app, &r.reason)))
            .collect();
        let skipped = desired.skipped.iter().map(note).collect();
        self.status.update(|status| {
            status.backends = backends;
            status.servers = servers;
            status.rejected = rejected;
            status.skipped = skipped;
            status.last_error = error.map(|e| super::chain(e));
        });
    }
}

/// The desired backends with task hosts resolved; tasks on hosts that do
/// not resolve are not served (and logged).
async fn resolve(resolver: &mut Resolver, desired: &Desired) -> BTreeMap<String, Wanted> {
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
/// slots they had in `installed`, rejected apps left out.
fn layout(
    wanted: &BTreeMap<String, Wanted>,
    installed: Option<&Backends>,
    rejected: &BTreeMap<AppId, Rejection>,
) -> Backends {
    wanted
        .iter()
        .filter(|(_, w)| !rejected.contains_key(&w.spec.app))
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

/// The file a fresh sidecar would write for `state`: `--dry-run`.
pub async fn render_state(state: &State, selection: &Selection, options: &RenderOptions) -> String {
    let desired = model::desired(state, selection);
    let wanted = resolve(&mut Resolver::default(), &desired).await;
    render(options, &layout(&wanted, None, &BTreeMap::new())).text
}

/// New slots for `endpoints`: each task keeps the slot it had; newcomers
/// take the lowest free ones; what does not fit waits for a reload.
fn place(
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
fn changes(
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

/// The `[ALERT]` lines of a `haproxy -c` run: the why, without the noise.
fn alerts(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| {
            l.contains("[ALERT]") && !l.contains("Fatal errors") && !l.contains("Error(s) found")
        })
        .map(str::trim)
        .collect();
    lines.join("; ")
}

/// Task hosts are agent names: resolved once and cached, failures briefly.
#[derive(Default)]
struct Resolver {
    cache: HashMap<String, (Option<IpAddr>, Instant)>,
}

impl Resolver {
    const FOUND_FOR: Duration = Duration::from_secs(300);
    const MISSING_FOR: Duration = Duration::from_secs(30);

    async fn resolve(&mut self, host: &str) -> Option<IpAddr> {
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

    #[test]
    fn alerts_keep_the_reason() {
        let output = "[NOTICE]   (1) : haproxy version is 2.6.12\n\
            [ALERT]    (1) : config : parsing [/x.cfg:15] : balance only supports 'roundrobin'\n\
            [ALERT]    (1) : config : Error(s) found in configuration file : /x.cfg\n\
            [ALERT]    (1) : config : Fatal errors found in configuration.";
        assert_eq!(
            alerts(output),
            "[ALERT]    (1) : config : parsing [/x.cfg:15] : balance only supports 'roundrobin'"
        );
    }
}
