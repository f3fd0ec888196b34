//! Settings of the embedded cluster, shaped for `clap` so a subcommand can
//! flatten them (`stride local-mesos --listen ... --cpus ...`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::LocalClusterError;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";
pub const DEFAULT_HOSTNAME: &str = "localhost";
pub const DEFAULT_CPUS: f64 = 4.0;
pub const DEFAULT_MEM_MB: f64 = 8192.0;
pub const DEFAULT_DISK_MB: f64 = 20480.0;
pub const DEFAULT_PORTS: &str = "31000-32000";
/// What a real master announces in SUBSCRIBED.
pub const DEFAULT_HEARTBEAT_SECS: f64 = 15.0;
/// The Mesos agent's first status update retry interval.
pub const DEFAULT_UPDATE_RETRY_SECS: f64 = 10.0;
/// Where the Docker engine listens, as Mesos' `--docker_socket` default.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// The Mesos command executor's default kill grace period.
pub const DEFAULT_KILL_GRACE_SECS: f64 = 3.0;

#[derive(Debug, Clone, clap::Args)]
pub struct LocalClusterConfig {
    /// Address for the Mesos scheduler API; port 0 picks a free port.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Number of agents. They share this host, so each gets its own slice
    /// of the port range.
    #[arg(long, default_value_t = 1)]
    pub agents: usize,
    /// Agent hostnames; agent N uses entry N (cycling when fewer).
    #[arg(long = "agent-hostname", value_delimiter = ',', default_value = DEFAULT_HOSTNAME)]
    pub hostnames: Vec<String>,
    /// Agent attributes in Mesos syntax (`rack:r1;zone:a`); agent N uses
    /// entry N (cycling). Repeat the flag for several agents.
    #[arg(long = "agent-attributes")]
    pub attributes: Vec<String>,
    /// CPUs each agent offers.
    #[arg(long, default_value_t = DEFAULT_CPUS)]
    pub cpus: f64,
    /// Memory (MB) each agent offers.
    #[arg(long, default_value_t = DEFAULT_MEM_MB)]
    pub mem: f64,
    /// Disk (MB) each agent offers.
    #[arg(long, default_value_t = DEFAULT_DISK_MB)]
    pub disk: f64,
    /// Host port range shared out among the agents, `BEGIN-END`.
    #[arg(long, default_value = DEFAULT_PORTS)]
    pub ports: PortRange,
    /// Where task sandboxes go; a fresh directory under the system temp
    /// dir when unset.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Seconds between HEARTBEAT events.
    #[arg(long, default_value_t = DEFAULT_HEARTBEAT_SECS)]
    pub heartbeat_interval_secs: f64,
    /// Rescind offers held longer than this; never when unset (as Mesos'
    /// `--offer_timeout`).
    #[arg(long)]
    pub offer_timeout_secs: Option<f64>,
    /// First resend interval for unacknowledged status updates; doubles up
    /// to 10 minutes, as on a Mesos agent.
    #[arg(long, default_value_t = DEFAULT_UPDATE_RETRY_SECS)]
    pub status_update_retry_secs: f64,
    /// Kill grace period for tasks without a kill policy.
    #[arg(long, default_value_t = DEFAULT_KILL_GRACE_SECS)]
    pub default_kill_grace_secs: f64,
    /// The Docker engine's API socket, for `container.type: DOCKER` tasks.
    #[arg(long, env = "STRIDE_DOCKER_SOCKET", default_value = DEFAULT_DOCKER_SOCKET)]
    pub docker_socket: PathBuf,
    /// Require framework authentication, as a Mesos master with
    /// `--authenticate_http_frameworks` and `--credentials`: a JSON file
    /// `{"credentials": [{"principal": ..., "secret": ...}]}`.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
}

impl Default for LocalClusterConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            agents: 1,
            hostnames: vec![DEFAULT_HOSTNAME.to_string()],
            attributes: Vec::new(),
            cpus: DEFAULT_CPUS,
            mem: DEFAULT_MEM_MB,
            disk: DEFAULT_DISK_MB,
            ports: PortRange {
                begin: 31000,
                end: 32000,
            },
            work_dir: None,
            heartbeat_interval_secs: DEFAULT_HEARTBEAT_SECS,
            offer_timeout_secs: None,
            status_update_retry_secs: DEFAULT_UPDATE_RETRY_SECS,
            default_kill_grace_secs: DEFAULT_KILL_GRACE_SECS,
            docker_socket: PathBuf::from(DEFAULT_DOCKER_SOCKET),
            credentials: None,
        }
    }
}

impl LocalClusterConfig {
    pub(crate) fn validate(&self) -> Result<(), LocalClusterError> {
        if self.agents == 0 {
            return Err(LocalClusterError::NoAgents);
        }
        if self.ports.port_count() < self.agents as u64 {
            return Err(LocalClusterError::TooFewPorts {
                range: self.ports,
                agents: self.agents,
            });
        }
        for (name, value) in [
            ("heartbeat-interval-secs", self.heartbeat_interval_secs),
            ("status-update-retry-secs", self.status_update_retry_secs),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(LocalClusterError::InvalidSetting { name, value });
            }
        }
        for (name, value) in [
            ("cpus", self.cpus),
            ("mem", self.mem),
            ("disk", self.disk),
            ("default-kill-grace-secs", self.default_kill_grace_secs),
            ("offer-timeout-secs", self.offer_timeout_secs.unwrap_or(0.0)),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(LocalClusterError::InvalidSetting { name, value });
            }
        }
        Ok(())
    }

    pub(crate) fn hostname_of(&self, agent: usize) -> &str {
        self.hostnames
            .get(agent % self.hostnames.len().max(1))
            .map_or(DEFAULT_HOSTNAME, String::as_str)
    }

    pub(crate) fn attributes_of(&self, agent: usize) -> Option<&str> {
        self.attributes
            .get(agent % self.attributes.len().max(1))
            .map(String::as_str)
    }

    /// Agent N's slice of the port range: agents share one host, so equal
    /// ranges would hand the same port to two tasks.
    pub(crate) fn ports_of(&self, agent: usize) -> PortRange {
        let agents = self.agents.max(1) as u64;
        let share = self.ports.port_count() / agents;
        let begin = self.ports.begin + share * agent as u64;
        let end = if agent as u64 + 1 == agents {
            self.ports.end
        } else {
            begin + share - 1
        };
        PortRange { begin, end }
    }

    pub(crate) fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_interval_secs)
    }

    pub(crate) fn status_update_retry(&self) -> Duration {
        Duration::from_secs_f64(self.status_update_retry_secs)
    }

    pub(crate) fn default_kill_grace(&self) -> Duration {
        Duration::from_secs_f64(self.default_kill_grace_secs)
    }

    pub(crate) fn offer_timeout(&self) -> Option<Duration> {
        self.offer_timeout_secs.map(Duration::from_secs_f64)
    }
}

/// An inclusive port range, `BEGIN-END` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub begin: u64,
    pub end: u64,
}

impl PortRange {
    pub fn port_count(&self) -> u64 {
        self.end - self.begin + 1
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.begin, self.end)
    }
}

impl FromStr for PortRange {
    type Err = LocalClusterError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || LocalClusterError::InvalidPortRange(text.to_string());
        let (begin, end) = text.trim().split_once('-').ok_or_else(invalid)?;
        let begin: u64 = begin.trim().parse().map_err(|_| invalid())?;
        let end: u64 = end.trim().parse().map_err(|_| invalid())?;
        if begin == 0 || begin > end || end > u64::from(u16::MAX) {
            return Err(invalid());
        }
        Ok(Self { begin, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse_and_reject_nonsense() {
        assert_eq!(
            "31000-32000".parse::<PortRange>().ok(),
            Some(PortRange {
                begin: 31000,
                end: 32000
            })
        );
        for bad in ["", "31000", "2-1", "0-5", "a-b", "1-70000"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn agents_get_disjoint_port_slices_covering_the_range() {
        let config = LocalClusterConfig {
            agents: 3,
            ports: PortRange {
                begin: 100,
                end: 110,
            },
            ..LocalClusterConfig::default()
        };
        let slices: Vec<_> = (0..3).map(|agent| config.ports_of(agent)).collect();
        assert_eq!(
            slices[0],
            PortRange {
                begin: 100,
                end: 102
            }
        );
        assert_eq!(
            slices[1],
            PortRange {
                begin: 103,
                end: 105
            }
        );
        assert_eq!(
            slices[2],
            PortRange {
                begin: 106,
                end: 110
            }
        );
    }

    #[test]
    fn validation_rejects_zero_agents_and_negative_resources() {
        let zero_agents = LocalClusterConfig {
            agents: 0,
            ..LocalClusterConfig::default()
        };
        assert!(zero_agents.validate().is_err());
        let negative = LocalClusterConfig {
            cpus: -1.0,
            ..LocalClusterConfig::default()
        };
        assert!(negative.validate().is_err());
        assert!(LocalClusterConfig::default().validate().is_ok());
    }
}
