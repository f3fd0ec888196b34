//! The open-file budget: the soft RLIMIT_NOFILE is raised to the hard one
//! at start (the common soft 1,024 is a historical default, not a choice),
//! and client connections get what is left after a reserve for the store,
//! the Mesos connections, health probes, callbacks and local tasks.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Linux's default `fs.nr_open`: what an unlimited hard limit really allows.
const NR_OPEN: u64 = 1 << 20;

/// Raises the soft open-file limit to the hard one and returns the soft
/// limit in force afterwards (`None` if it cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(error) => {
            tracing::warn!(%error, "cannot read the open-file limit");
            return None;
        }
    };
    let target = hard.min(NR_OPEN).max(soft);
    if target == soft {
        return Some(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => {
            tracing::info!(from = soft, to = target, "raised the open-file limit");
            Some(target)
        }
        Err(error) => {
            tracing::warn!(%error, soft, hard, "cannot raise the open-file limit");
            Some(soft)
        }
    }
}

/// Descriptors kept for everything but client connections.
pub fn reserve(open_files: u64) -> u64 {
    (open_files / 4).max(64)
}

/// Client connections allowed under `open_files`: safely below it, so
/// accepting them can never starve the store or Mesos of descriptors.
pub fn default_max_connections(open_files: u64) -> usize {
    let connections = open_files.saturating_sub(reserve(open_files)).max(1);
    usize::try_from(connections).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_stay_below_the_open_file_limit_with_a_reserve() {
        assert_eq!(default_max_connections(1_024), 768);
        assert_eq!(default_max_connections(256), 192);
        assert_eq!(default_max_connections(100), 36);
        assert_eq!(default_max_connections(10), 1);
        assert_eq!(default_max_connections(1 << 20), 786_432);
    }
}
