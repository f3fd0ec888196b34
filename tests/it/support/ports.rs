//! The suite's one port allocator, for ports a test must name before
//! anything binds them (task ports a cluster offers, HAProxy frontends).
//! Servers themselves listen on port 0 and report theirs.
//!
//! Ranges come from 20000-30999: below Linux's ephemeral range (32768+),
//! where no client socket can take a port between allocation and use, and
//! apart from the real Mesos agent's 31000-32000. A range is held, across
//! every test process on the machine, by `flock`s on its 50-port blocks
//! under the temp dir, and only given out when each port binds right now.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};

const FIRST: u16 = 20000;
const BLOCK: u16 = 50;
const BLOCKS: u16 = 220; // 20000-30999

/// Consecutive loopback ports, this test's alone while the value lives.
pub struct Ports {
    first: u16,
    count: u16,
    _blocks: Vec<Flock<File>>,
}

impl Ports {
    pub fn first(&self) -> u16 {
        self.first
    }

    pub fn last(&self) -> u16 {
        self.first + self.count - 1
    }

    /// The `i`th port of the range.
    pub fn nth(&self, i: u16) -> u16 {
        assert!(i < self.count, "port {i} of a range of {}", self.count);
        self.first + i
    }

    /// As `--ports` and `--local-ports` take it: `FIRST-LAST`.
    pub fn arg(&self) -> String {
        self.slice(0, self.count - 1)
    }

    /// The `from`th to the `to`th port, as `--ports` takes them.
    pub fn slice(&self, from: u16, to: u16) -> String {
        format!("{}-{}", self.nth(from), self.nth(to))
    }
}

/// `count` consecutive free ports (at most 500).
pub fn ports(count: u16) -> Ports {
    assert!((1..=500).contains(&count), "{count} ports");
    let blocks = count.div_ceil(BLOCK);
    let dir = std::env::temp_dir().join("stride-test-ports");
    std::fs::create_dir_all(&dir).expect("the port lock dir");
    // Start anywhere, so concurrent tests rarely contend for one block.
    let start = rand::random::<u16>() % BLOCKS;
    for offset in 0..BLOCKS {
        let block = (start + offset) % BLOCKS;
        if block + blocks > BLOCKS {
            continue;
        }
        let first = FIRST + block * BLOCK;
        let Some(locks) = lock_blocks(&dir, block, blocks) else {
            continue;
        };
        if (first..first + count).all(binds) {
            return Ports {
                first,
                count,
                _blocks: locks,
            };
        }
    }
    panic!("no {count} free consecutive ports in 20000-30999");
}

/// One free port.
pub fn port() -> Ports {
    ports(1)
}

fn lock_blocks(dir: &std::path::Path, first: u16, count: u16) -> Option<Vec<Flock<File>>> {
    (first..first + count)
        .map(|block| {
            let path: PathBuf = dir.join(format!("{block}.lock"));
            let file = File::create(path).ok()?;
            Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()
        })
        .collect()
}

fn binds(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}
