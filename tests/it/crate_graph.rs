//! The crate graph is the architecture (ARCHITECTURE.md, "Parts"): each
//! workspace crate may depend only on the Stride crates below it (`cargo
//! metadata`), and what `cargo tree -p` shows under a crate holds nothing
//! it must not drag into its users. Cargo itself refuses a cycle between
//! crates; this test keeps the layering.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Each Stride crate and the Stride crates it may depend on directly.
const LAYERS: &[(&str, &[&str])] = &[
    ("stride-runtime", &[]),
    ("stride-sched", &[]),
    ("stride-auth", &[]),
    ("stride-log", &[]),
    ("stride-core", &["stride-log"]),
    ("stride-protocol", &["stride-core", "stride-log"]),
    ("stride-mesos", &["stride-runtime"]),
    (
        "stride-local",
        &["stride-mesos", "stride-runtime", "stride-sched"],
    ),
    ("stride-zk", &[]),
    (
        "stride-lb",
        &[
            "stride-core",
            "stride-log",
            "stride-protocol",
            "stride-runtime",
        ],
    ),
    (
        "stride-server",
        &[
            "stride-auth",
            "stride-core",
            "stride-local",
            "stride-log",
            "stride-mesos",
            "stride-protocol",
            "stride-runtime",
            "stride-sched",
            "stride-zk",
        ],
    ),
    (
        "stride-bench",
        &[
            "stride-auth",
            "stride-core",
            "stride-lb",
            "stride-local",
            "stride-log",
            "stride-mesos",
            "stride-protocol",
            "stride-runtime",
            "stride-sched",
            "stride-server",
            "stride-zk",
        ],
    ),
    (
        "stride",
        &[
            "stride-auth",
            "stride-bench",
            "stride-core",
            "stride-lb",
            "stride-log",
            "stride-local",
            "stride-mesos",
            "stride-protocol",
            "stride-runtime",
            "stride-sched",
            "stride-server",
            "stride-zk",
        ],
    ),
];

/// Each crate and the packages that must not be anywhere below it.
const FORBIDDEN: &[(&str, &[&str])] = &[
    // The wire client is for any Mesos scheduler, not a store.
    ("stride-mesos", &["sled", "bincode", "stride-server"]),
    // The embedded cluster is a Mesos stand-in, knowing nothing of Stride's log.
    (
        "stride-local",
        &[
            "sled",
            "bincode",
            "stride-log",
            "stride-server",
            "stride-bench",
        ],
    ),
    ("stride-runtime", &["sled", "bincode", "stride-server"]),
    // The one crate allowed an unsafe call: only the system's bindings.
    (
        "stride-sched",
        &["tokio", "sled", "stride-runtime", "stride-server"],
    ),
    // The log is read by the pure core and by sidecars: no async runtime.
    ("stride-log", &["tokio", "stride-server"]),
    // The pure core: no async runtime, no storage engine.
    ("stride-core", &["tokio", "sled", "stride-server"]),
    ("stride-protocol", &["tokio", "sled", "stride-server"]),
    // Who may do what is decided without a server or a store.
    (
        "stride-auth",
        &["tokio", "sled", "axum", "hyper", "stride-server"],
    ),
    // The sidecar follows the stream; it never opens a store, nor needs
    // the server to do so.
    ("stride-lb", &["sled", "stride-server", "stride-bench"]),
    // The server is a library: errors typed per part (anyhow is the
    // binary's), and no sidecar inside it.
    ("stride-server", &["anyhow", "stride-lb", "stride-bench"]),
    // ZooKeeper carries the log's batches as opaque bytes.
    (
        "stride-zk",
        &["sled", "bincode", "stride-log", "stride-server"],
    ),
];

fn cargo() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

fn run(command: &mut Command) -> Vec<u8> {
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Every package `cargo tree -p name` shows under `name`: normal
/// dependencies, with only the features `name` and what it uses ask for.
fn tree(name: &str) -> BTreeSet<String> {
    let stdout = run(cargo().args([
        "tree",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--offline",
        "-p",
        name,
    ]));
    String::from_utf8_lossy(&stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The workspace crates and each package's direct normal dependencies.
struct Graph {
    workspace: BTreeSet<String>,
    direct: BTreeMap<String, Vec<String>>,
}

impl Graph {
    fn load() -> Graph {
        let stdout = run(cargo().args(["metadata", "--format-version", "1", "--offline"]));
        let metadata: Value = serde_json::from_slice(&stdout).expect("metadata is JSON");
        let names: BTreeMap<&str, &str> = metadata["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|package| {
                let id = package["id"].as_str().expect("id");
                (id, package["name"].as_str().expect("name"))
            })
            .collect();
        let workspace = metadata["workspace_members"]
            .as_array()
            .expect("workspace_members")
            .iter()
            .map(|id| names[id.as_str().expect("member id")].to_owned())
            .collect();
        let direct = metadata["resolve"]["nodes"]
            .as_array()
            .expect("resolve")
            .iter()
            .map(|node| {
                let deps = node["deps"]
                    .as_array()
                    .expect("deps")
                    .iter()
                    // Build and dev dependencies are not part of the library.
                    .filter(|dep| {
                        dep["dep_kinds"]
                            .as_array()
                            .expect("dep_kinds")
                            .iter()
                            .any(|kind| kind["kind"].is_null())
                    })
                    .map(|dep| names[dep["pkg"].as_str().expect("pkg")].to_owned())
                    .collect();
                (
                    names[node["id"].as_str().expect("node id")].to_owned(),
                    deps,
                )
            })
            .collect();
        Graph { workspace, direct }
    }

    fn direct(&self, name: &str) -> &[String] {
        self.direct
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in the graph"))
    }
}

#[test]
fn every_workspace_crate_has_its_place_in_the_layers() {
    let graph = Graph::load();
    let layered: BTreeSet<String> = LAYERS.iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(
        graph.workspace, layered,
        "a crate was added without a place in LAYERS"
    );
}

#[test]
fn each_crate_depends_only_on_the_stride_crates_below_it() {
    let graph = Graph::load();
    for (name, allowed) in LAYERS {
        let stride_deps: BTreeSet<&str> = graph
            .direct(name)
            .iter()
            .filter(|dep| graph.workspace.contains(*dep))
            .map(String::as_str)
            .collect();
        let allowed: BTreeSet<&str> = allowed.iter().copied().collect();
        assert!(
            stride_deps.is_subset(&allowed),
            "{name} depends on {stride_deps:?}; only {allowed:?} are below it"
        );
    }
}

#[test]
fn crates_do_not_drag_in_what_they_must_not() {
    // The check can fail: the server below its own crate has both.
    let server = tree("stride-server");
    assert!(
        server.contains("tokio") && server.contains("sled"),
        "{server:?}"
    );
    for (name, forbidden) in FORBIDDEN {
        let below = tree(name);
        assert!(below.contains(*name), "cargo tree -p {name}: {below:?}");
        for package in *forbidden {
            assert!(
                !below.contains(*package),
                "{name} depends on {package}, directly or through another crate"
            );
        }
    }
}

#[test]
fn only_the_log_names_bincode() {
    let graph = Graph::load();
    let naming: BTreeSet<&str> = graph
        .workspace
        .iter()
        .filter(|name| graph.direct(name).iter().any(|dep| dep == "bincode"))
        .map(String::as_str)
        .collect();
    assert_eq!(naming, BTreeSet::from(["stride-log"]));
}
