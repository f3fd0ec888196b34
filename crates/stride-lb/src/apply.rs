//! Bringing HAProxy in line with the state, the cheapest way that is safe.
//!
//! Server changes (a task up, down, draining, healthy or not) go through
//! the Runtime API into pre-allocated slots: no reload. Anything else (an
//! app, a service port, labels, or more slots than a backend has) writes a
//! checked file and reloads seamlessly, then sets every slot again, since
//! a reload is also how a stale runtime state would come back. An app whose
//! part of the file HAProxy rejects is left out until its definition
//! changes, so it never holds up the others.

use super::config::{Backend, Backends, RenderOptions, Rendered, render};
use super::install::{ConfigFile, InstallError, rejected_apps};
use super::master::MasterError;
use super::model::{self, BackendSpec, Desired, Selection};
use super::runtime::{RuntimeApi, RuntimeError};
use super::slots::{Resolver, Wanted, changes, layout, place, resolve};
use super::status::{AppNote, StatusHandle, Took};
use super::supervisor::Haproxy;
use crate::event::AppId;
use crate::projection::State;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use stride_runtime::error::chain;
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

struct Rejection {
    config_version: u64,
    reason: String,
}

/// A backend and its frontend as HAProxy loads them: servers aside.
type Proxy = (String, BackendSpec, usize);

fn proxies(backends: &Backends) -> Vec<Proxy> {
    let shape = |(name, b): (&String, &Backend)| (name.clone(), b.spec.clone(), b.slots.len());
    backends.iter().map(shape).collect()
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
    /// Proxies that HAProxy failed to load with no app to blame (a port
    /// taken by another process...): not tried again until they change.
    failed: Option<Vec<Proxy>>,
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
            let next = layout(wanted, self.installed.as_ref(), |app| {
                self.rejected.contains_key(app)
            });
            let rendered = render(&self.render, &next);
            let current = self.file.current();
            if !self.in_sync && current.as_deref() == Some(rendered.text.as_str()) {
                // HAProxy was started from this very file, or still serves
                // it: setting the servers is enough.
                self.installed = Some(next);
                self.written = current;
                return self.sync_servers(None).await;
            }
            if self.failed.as_ref() == Some(&proxies(&next)) {
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
                        self.failed = Some(proxies(&next));
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
                Err(source) => {
                    self.failed = Some(proxies(&next));
                    self.reload_failed(rendered, current, source, wanted).await
                }
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
            status.last_error = error.map(|e| chain(e));
        });
    }
}

/// The file a fresh sidecar would write for `state`: `--dry-run`.
pub async fn render_state(state: &State, selection: &Selection, options: &RenderOptions) -> String {
    let desired = model::desired(state, selection);
    let wanted = resolve(&mut Resolver::default(), &desired).await;
    render(options, &layout(&wanted, None, |_| false)).text
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

#[cfg(test)]
mod tests {
    use super::*;

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
