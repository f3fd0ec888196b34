//! `haproxy.cfg` text: pure and deterministic, so an unchanged state writes
//! the same bytes and "did anything change" is a string comparison.
//!
//! Each backend has a fixed number of server slots (`srv1`..`srvN`). Tasks
//! come and go through the Runtime API by re-addressing and enabling
//! slots, so only frontend or backend changes, or running out of slots,
//! need a reload. The file always shows the servers as they are, so a
//! HAProxy started from it serves the right tasks at once.

use super::model::{BackendSpec, Mode, Standing};
use crate::event::{AppId, TaskId};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Fewest slots a backend gets, so small apps scale without a reload.
pub const MIN_SLOTS: usize = 8;
/// Where a free slot points; it is disabled, and nothing listens there.
const FREE_SLOT: &str = "127.0.0.1:1";

/// Slots for a backend: room for twice the app's instances (a deployment
/// runs old and new side by side) and never fewer than its members.
pub fn slot_count(instances: u32, members: usize) -> usize {
    MIN_SLOTS.max(2 * instances as usize).max(members)
}

/// The parts of the file that come from flags, not from the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    pub group: String,
    pub stats_socket: PathBuf,
    pub bind: IpAddr,
    pub http_port: u16,
}

/// A task in a slot, at a resolved address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub task: TaskId,
    pub addr: SocketAddr,
    /// `Ready` or `Drain`.
    pub standing: Standing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub spec: BackendSpec,
    /// `srv1` is `slots[0]`; `None` is a free, disabled slot.
    pub slots: Vec<Option<Endpoint>>,
}

/// By backend name.
pub type Backends = BTreeMap<String, Backend>;

/// The file, and which app each part of it came from, to tell which app a
/// HAProxy error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Inclusive 1-based line ranges.
    owners: Vec<(usize, usize, AppId)>,
    /// Proxy (frontend and backend) names.
    names: BTreeMap<String, AppId>,
}

impl Rendered {
    pub fn owner_of_line(&self, line: usize) -> Option<&AppId> {
        let mut owners = self.owners.iter();
        owners
            .find(|(first, last, _)| (*first..=*last).contains(&line))
            .map(|(_, _, app)| app)
    }

    pub fn owner_of_name(&self, name: &str) -> Option<&AppId> {
        self.names.get(name)
    }
}

pub fn frontend_name(port: u16) -> String {
    format!("fe_{port}")
}

const HTTP_FRONTEND: &str = "fe_http";

pub fn render(options: &RenderOptions, backends: &Backends) -> Rendered {
    let mut out = Out::default();
    out.line(&format!(
        "# Written by `stride lb haproxy` for group '{}'. Edits are overwritten.",
        options.group
    ));
    out.line("global");
    out.line(&format!(
        "    stats socket {} mode 600 level admin expose-fd listeners",
        options.stats_socket.display()
    ));
    out.line("    stats timeout 2m");
    // HAProxy's own HTTP client (for Lua, unused here) would otherwise load
    // every system CA on each start, check and reload: ~40 ms of each.
    out.line("    httpclient.ssl.verify none");
    out.line("");
    out.line("defaults");
    out.line("    mode tcp");
    out.line("    timeout connect 5s");
    out.line("    timeout client 1m");
    out.line("    timeout server 1m");
    // A task that died before Stride says so refuses connections: each
    // retry goes to another server (no turn-around wait), so clients see
    // no error, where retrying the dead one would end in a 503.
    out.line("    retries 3");
    out.line("    option redispatch 1");
    let vhosts: Vec<(&String, &Backend)> = backends
        .iter()
        .filter(|(_, b)| !b.spec.vhosts.is_empty())
        .collect();
    if !vhosts.is_empty() {
        out.line("");
        out.line(&format!("frontend {HTTP_FRONTEND}"));
        out.line(&format!(
            "    bind {}",
            bind(options.bind, options.http_port)
        ));
        out.line("    mode http");
        http_frontend(&mut out);
        for (name, backend) in vhosts {
            let first = out.next_line();
            // The port is not part of the host name; `word` drops it.
            out.line(&format!(
                "    use_backend {name} if {{ req.hdr(host),lower,word(1,:) -m str {} }}",
                backend.spec.vhosts.join(" ")
            ));
            out.own(first, &backend.spec.app);
        }
    }
    for (name, backend) in backends {
        let first = out.next_line();
        render_app(&mut out, options, name, backend);
        out.own(first, &backend.spec.app);
        let frontend = frontend_name(backend.spec.service_port);
        out.names.insert(frontend, backend.spec.app.clone());
        out.names.insert(name.clone(), backend.spec.app.clone());
    }
    Rendered {
        text: out.text,
        owners: out.owners,
        names: out.names,
    }
}

fn render_app(out: &mut Out, options: &RenderOptions, name: &str, backend: &Backend) {
    let spec = &backend.spec;
    let mode = match spec.mode {
        Mode::Http => "http",
        Mode::Tcp => "tcp",
    };
    out.line("");
    out.line(&format!("# {}", spec.app));
    out.line(&format!("frontend {}", frontend_name(spec.service_port)));
    out.line(&format!(
        "    bind {}",
        bind(options.bind, spec.service_port)
    ));
    out.line(&format!("    mode {mode}"));
    if spec.mode == Mode::Http {
        http_frontend(out);
    }
    out.line(&format!("    default_backend {name}"));
    out.line(&format!("backend {name}"));
    out.line(&format!("    mode {mode}"));
    out.line(&format!(
        "    balance {}",
        spec.balance.as_deref().unwrap_or("roundrobin")
    ));
    if spec.mode == Mode::Http {
        out.line("    option forwardfor");
    }
    for (i, slot) in backend.slots.iter().enumerate() {
        let server = match slot {
            Some(Endpoint {
                addr,
                standing: Standing::Ready,
                ..
            }) => format!("    server srv{} {addr}", i + 1),
            // Draining has no config keyword; a fresh process has no open
            // connections to finish, so disabled is the same thing.
            Some(Endpoint { addr, .. }) => format!("    server srv{} {addr} disabled", i + 1),
            None => format!("    server srv{} {FREE_SLOT} disabled", i + 1),
        };
        out.line(&server);
    }
}

/// What every HTTP frontend has. On a reload the old worker would close
/// idle keep-alive connections at once, racing clients that send on them
/// (they see the connection close with no answer); instead it answers one
/// more request with `Connection: close`.
fn http_frontend(out: &mut Out) {
    out.line("    timeout http-request 10s");
    out.line("    option idle-close-on-response");
}

fn bind(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

#[derive(Default)]
struct Out {
    text: String,
    lines: usize,
    owners: Vec<(usize, usize, AppId)>,
    names: BTreeMap<String, AppId>,
}

impl Out {
    fn line(&mut self, line: &str) {
        let _ = writeln!(self.text, "{line}");
        self.lines += 1;
    }

    fn next_line(&self) -> usize {
        self.lines + 1
    }

    /// The lines written since `first` belong to `app`.
    fn own(&mut self, first: usize, app: &AppId) {
        self.owners.push((first, self.lines, app.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn options() -> RenderOptions {
        RenderOptions {
            group: "external".into(),
            stats_socket: "/run/lb/haproxy.sock".into(),
            bind: IpAddr::from([0, 0, 0, 0]),
            http_port: 80,
        }
    }

    fn backend(
        app: &str,
        port: u16,
        mode: Mode,
        vhosts: &[&str],
        slots: Vec<Option<Endpoint>>,
    ) -> (String, Backend) {
        let spec = BackendSpec {
            app: AppId::from(app),
            service_port: port,
            mode,
            balance: None,
            vhosts: vhosts.iter().map(|h| h.to_string()).collect(),
        };
        (
            super::super::model::backend_name(&spec),
            Backend { spec, slots },
        )
    }

    fn endpoint(task: &str, addr: &str, standing: Standing) -> Option<Endpoint> {
        Some(Endpoint {
            task: TaskId::from(task),
            addr: addr.parse().unwrap(),
            standing,
        })
    }

    /// Compares with `fixtures/lb/<name>.cfg`; `STRIDE_BLESS=1` rewrites it.
    fn golden(name: &str, text: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/lb")
            .join(format!("{name}.cfg"));
        if std::env::var_os("STRIDE_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} (STRIDE_BLESS=1 writes it)", path.display()));
        assert_eq!(
            text, expected,
            "{name}: rendering changed (STRIDE_BLESS=1 to accept)"
        );
    }

    #[test]
    fn rendering_matches_the_golden_files() {
        let cases: Vec<(&str, Vec<(String, Backend)>)> = vec![
            ("empty", vec![]),
            (
                "tcp_app",
                vec![backend(
                    "/db",
                    10001,
                    Mode::Tcp,
                    &[],
                    vec![endpoint("db.1", "10.0.0.1:31000", Standing::Ready), None],
                )],
            ),
            (
                "vhosts_share_the_http_frontend",
                vec![
                    backend(
                        "/prod/web",
                        10000,
                        Mode::Http,
                        &["web.example.com", "www.example.com"],
                        vec![
                            endpoint("web.1", "10.0.0.1:31000", Standing::Ready),
                            endpoint("web.2", "[2001:db8::2]:31001", Standing::Drain),
                            None,
                        ],
                    ),
                    backend(
                        "/prod/api",
                        10002,
                        Mode::Http,
                        &["api.example.com"],
                        vec![None],
                    ),
                    backend("/prod/raw", 10003, Mode::Tcp, &[], vec![None]),
                ],
            ),
        ];
        for (name, backends) in cases {
            let rendered = render(&options(), &backends.into_iter().collect());
            golden(name, &rendered.text);
        }
    }

    #[test]
    fn lines_and_proxy_names_lead_back_to_their_app() {
        let backends: Backends = [
            backend("/a", 10000, Mode::Http, &["a.example"], vec![None]),
            backend("/b", 10001, Mode::Tcp, &[], vec![None, None]),
        ]
        .into_iter()
        .collect();
        let rendered = render(&options(), &backends);
        let owner = |needle: &str| {
            let line = rendered
                .text
                .lines()
                .position(|l| l.contains(needle))
                .unwrap()
                + 1;
            rendered.owner_of_line(line).map(|a| a.to_string())
        };
        assert_eq!(owner("stats socket"), None);
        assert_eq!(owner("use_backend be_a_10000"), Some("/a".into()));
        assert_eq!(owner("frontend fe_10001"), Some("/b".into()));
        assert_eq!(owner("server srv2"), Some("/b".into()));
        assert_eq!(rendered.owner_of_name("be_b_10001").unwrap().as_str(), "/b");
        assert_eq!(rendered.owner_of_name("fe_10000").unwrap().as_str(), "/a");
        assert_eq!(rendered.owner_of_name("fe_http"), None);
    }

    #[test]
    fn slot_counts() {
        for (instances, members, slots) in [
            (0, 0, 8),
            (1, 1, 8),
            (4, 0, 8),
            (5, 2, 10),
            (3, 9, 9),
            (100, 0, 200),
        ] {
            assert_eq!(
                slot_count(instances, members),
                slots,
                "{instances} instances, {members} members"
            );
        }
    }
}
