//! The crate graph is the architecture (ARCHITECTURE.md, "Parts"): each
//! workspace crate may depend only on the Stride crates below it, and the
//! leaves stay free of what they must not drag into their users. Cargo
//! itself refuses a cycle between crates; this test keeps the layering.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Each Stride crate and the Stride crates it may depend on directly.
const LAYERS: &[(&str, &[&str])] = &[
    ("stride-runtime", &[]),
    ("stride-log", &[]),
    ("stride-mesos", &["stride-runtime"]),
    ("stride", &["stride-log", "stride-mesos", "stride-runtime"]),
];

/// Each crate and the packages that must not be anywhere below it.
const FORBIDDEN: &[(&str, &[&str])] = &[
    // The wire client is for any Mesos scheduler, not a store.
    ("stride-mesos", &["sled", "bincode"]),
    ("stride-runtime", &["sled", "bincode"]),
    // The log is read by the pure core and by sidecars: no async runtime.
    ("stride-log", &["tokio"]),
];

struct Graph {
    names: BTreeMap<String, String>,
    normal_deps: BTreeMap<String, Vec<String>>,
    workspace: BTreeSet<String>,
}

impl Graph {
    fn load() -> Graph {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let output = Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--offline",
                "--manifest-path",
            ])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .output()
            .expect("cargo metadata runs");
        assert!(
            output.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
        let names = metadata["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|package| {
                let id = package["id"].as_str().expect("id").to_owned();
                (id, package["name"].as_str().expect("name").to_owned())
            })
            .collect::<BTreeMap<_, _>>();
        let workspace = metadata["workspace_members"]
            .as_array()
            .expect("workspace_members")
            .iter()
            .map(|id| names[id.as_str().expect("member id")].clone())
            .collect();
        let normal_deps = metadata["resolve"]["nodes"]
            .as_array()
            .expect("resolve")
            .iter()
            .map(|node| {
                let deps = node["deps"]
                    .as_array()
                    .expect("deps")
                    .iter()
                    .filter(|dep| {
                        // Build and dev dependencies are not part of the library.
                        dep["dep_kinds"]
                            .as_array()
                            .expect("dep_kinds")
                            .iter()
                            .any(|kind| kind["kind"].is_null())
                    })
                    .map(|dep| names[dep["pkg"].as_str().expect("pkg")].clone())
                    .collect();
                (names[node["id"].as_str().expect("node id")].clone(), deps)
            })
            .collect();
        Graph {
            names,
            normal_deps,
            workspace,
        }
    }

    fn direct(&self, name: &str) -> &[String] {
        self.normal_deps
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in the graph"))
    }

    fn below(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut next = vec![name.to_owned()];
        while let Some(name) = next.pop() {
            for dep in self.direct(&name) {
                if seen.insert(dep.clone()) {
                    next.push(dep.clone());
                }
            }
        }
        seen
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
    assert!(graph.names.values().any(|name| name == "sled"));
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
fn leaf_crates_do_not_drag_in_what_they_must_not() {
    let graph = Graph::load();
    for (name, forbidden) in FORBIDDEN {
        let below = graph.below(name);
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
    let naming: BTreeSet<&String> = graph
        .workspace
        .iter()
        .filter(|name| graph.direct(name).iter().any(|dep| dep == "bincode"))
        .collect();
    assert_eq!(naming, BTreeSet::from([&"stride-log".to_owned()]));
}
