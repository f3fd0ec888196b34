//! A real ZooKeeper ensemble for tests and benchmarks: N nodes of
//! Debian's `zookeeper` 3.8 on free loopback ports, each with its own data
//! directory under one temp dir, killed on drop. `scripts/test.sh` installs
//! the package and a headless JRE.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const JARS: [&str; 2] = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-simple.jar",
];
/// Small heaps and the client compiler start faster on 2 cores.
const JVM: &[&str] = &["-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];
/// How long a start may take before the ensemble is declared broken.
const READY_WITHIN: Duration = Duration::from_secs(60);

pub struct Ensemble {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

struct Node {
    client_port: u16,
    child: Option<Child>,
}

impl Ensemble {
    /// Why no ensemble can start on this machine (Debian's `zookeeper` or a
    /// JRE missing), or `None` when both are there.
    pub fn missing() -> Option<String> {
        if let Some(jar) = JARS.iter().find(|jar| !Path::new(jar).is_file()) {
            return Some(format!("{jar} is absent; Debian's `zookeeper` has it"));
        }
        let java = std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join("java").is_file())
        });
        (!java).then(|| "java is not on PATH; Debian's `default-jre-headless` has it".to_owned())
    }

    /// Starts `size` nodes (tickTime 500 ms) and waits until a quorum serves.
    pub fn start(size: usize) -> std::io::Result<Ensemble> {
        let dir = tempfile::Builder::new().prefix("stride-zk-").tempdir()?;
        let ports = free_ports(size * 3)?;
        let servers: String = (0..size)
            .map(|i| {
                format!(
                    "server.{}=127.0.0.1:{}:{}\n",
                    i + 1,
                    ports[i * 3 + 1],
                    ports[i * 3 + 2]
                )
            })
            .collect();
        let mut ensemble = Ensemble {
            dir,
            nodes: Vec::new(),
        };
        for i in 0..size {
            let node_dir = ensemble.node_dir(i);
            std::fs::create_dir_all(node_dir.join("data"))?;
            std::fs::write(node_dir.join("data/myid"), format!("{}\n", i + 1))?;
            let mut config = format!(
                "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
                 admin.enableServer=false\n4lw.commands.whitelist=srvr,ruok,mntr,stat\n",
                node_dir.join("data").display(),
                ports[i * 3]
            );
            if size > 1 {
                config.push_str(&servers);
            }
            std::fs::write(node_dir.join("zoo.cfg"), config)?;
            ensemble.nodes.push(Node {
                client_port: ports[i * 3],
                child: None,
            });
        }
        for i in 0..size {
            ensemble.spawn(i)?;
        }
        ensemble.wait_serving()?;
        Ok(ensemble)
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{}", i + 1))
    }

    fn spawn(&mut self, i: usize) -> std::io::Result<()> {
        let node_dir = self.node_dir(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node_dir.join("zookeeper.log"))?;
        let child = Command::new("java")
            .args(JVM)
            .arg("-cp")
            .arg(format!("{}:{}", node_dir.display(), JARS.join(":")))
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(node_dir.join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|error| {
                let why = Ensemble::missing().unwrap_or_default();
                std::io::Error::new(
                    error.kind(),
                    format!("cannot run java for ZooKeeper: {error} {why}"),
                )
            })?;
        self.nodes[i].child = Some(child);
        Ok(())
    }

    /// `127.0.0.1:p1,127.0.0.1:p2,...`
    pub fn servers(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `zk://servers/path`
    pub fn url(&self, path: &str) -> String {
        format!("zk://{}/{}", self.servers(), path.trim_start_matches('/'))
    }

    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again with its data.
    pub fn restart(&mut self, i: usize) -> std::io::Result<()> {
        self.kill(i);
        self.spawn(i)
    }

    /// Which node leads the quorum now (`srvr`'s mode), if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| {
            self.four_letters(i, "srvr")
                .is_some_and(|out| out.contains("Mode: leader") || out.contains("Mode: standalone"))
        })
    }

    /// Waits until every running node serves clients (a quorum formed).
    pub fn wait_serving(&self) -> std::io::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        for i in 0..self.nodes.len() {
            if self.nodes[i].child.is_none() {
                continue;
            }
            while !self.serves(i) {
                if Instant::now() > deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "ZooKeeper node {} does not serve within {READY_WITHIN:?}; see {}",
                            i + 1,
                            self.node_dir(i).join("zookeeper.log").display()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// A node serves once it is in a quorum (or standalone): `srvr` then
    /// names its mode; before, it answers that it is not serving.
    fn serves(&self, i: usize) -> bool {
        self.four_letters(i, "srvr")
            .is_some_and(|out| out.contains("Mode: "))
    }

    fn four_letters(&self, i: usize, word: &str) -> Option<String> {
        let address = ("127.0.0.1", self.nodes[i].client_port);
        let mut stream = TcpStream::connect(address).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(word.as_bytes()).ok()?;
        let mut out = String::new();
        stream.read_to_string(&mut out).ok()?;
        Some(out)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Distinct free loopback ports, all held until chosen so none repeats.
fn free_ports(count: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}
