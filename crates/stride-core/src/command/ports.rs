//! Service ports: unique across apps, assigned from a configured range when
//! a definition asks for port 0. Assignment happens in `decide`, so the port
//! an app got is part of the definition its event carries.

use super::validate::{MAX_PORT, Problems};
use crate::event::AppId;
use crate::event::app::AppDefinition;
use crate::projection::State;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

/// An inclusive range of service ports, written `10000-20000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u32,
    pub last: u32,
}

impl Default for PortRange {
    /// Marathon's default local port range.
    fn default() -> Self {
        PortRange {
            first: 10_000,
            last: 20_000,
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a port range FIRST-LAST with 1 <= FIRST <= LAST <= 65535")]
pub struct PortRangeError(String);

impl FromStr for PortRange {
    type Err = PortRangeError;

    fn from_str(text: &str) -> Result<PortRange, PortRangeError> {
        let error = || PortRangeError(text.to_owned());
        let (first, last) = text.split_once('-').ok_or_else(error)?;
        let first: u32 = first.trim().parse().map_err(|_| error())?;
        let last: u32 = last.trim().parse().map_err(|_| error())?;
        if first == 0 || first > last || last > MAX_PORT {
            return Err(error());
        }
        Ok(PortRange { first, last })
    }
}

/// Checks `definition`'s explicit service ports against every other app's
/// and `claimed` (ports other apps of the same command took), and fills
/// each 0: first with the app's own earlier ports it no longer names, so a
/// definition posted again with zeros keeps its ports (Marathon's
/// `AssignDynamicServiceLogic`), then with the lowest free port in `range`.
/// The ports it ends up with join `claimed`.
pub(super) fn assign_service_ports(
    state: &State,
    range: PortRange,
    definition: &mut AppDefinition,
    claimed: &mut HashSet<u32>,
    problems: &mut Problems,
) {
    let id = definition.id.clone();
    let owner = |port: &u32| other_owner(state, *port, &id);
    let declared = definition.service_ports();
    let mut taken: HashSet<u32> = declared.iter().map(|(_, p)| *p).collect();
    for (slot, port) in &declared {
        if let Some(owner) = owner(port) {
            problems.add(
                slot.path(),
                format!("service port {port} is already used by app {owner}"),
            );
        } else if *port != 0 && claimed.contains(port) {
            problems.add(
                slot.path(),
                format!("service port {port} is declared by another app of this change"),
            );
        }
    }
    taken.extend(claimed.iter().copied());
    let earlier: Vec<u32> = state
        .apps
        .get(&id)
        .map(|app| app.definition.service_ports())
        .unwrap_or_default()
        .into_iter()
        .map(|(_, port)| port)
        .filter(|port| (range.first..=range.last).contains(port) && !taken.contains(port))
        .collect();
    let mut candidates = earlier.into_iter().chain(free_ports(state, range, &id));
    for (slot, _) in declared.iter().filter(|(_, port)| *port == 0) {
        match candidates.find(|p| !taken.contains(p)) {
            Some(port) => {
                taken.insert(port);
                definition.set_service_port(*slot, port);
            }
            None => problems.add(
                slot.path(),
                format!("no service port is free in the range {range}"),
            ),
        }
    }
    claimed.extend(
        definition
            .service_ports()
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| *p != 0),
    );
}

/// Another app's claim on `port`; a port only `app` holds stays its own.
fn other_owner<'a>(state: &'a State, port: u32, app: &AppId) -> Option<&'a AppId> {
    state.service_ports.get(&port)?.iter().find(|a| *a != app)
}

/// The ports in `range` no other app claims, in order, walking the claimed
/// ones alongside instead of looking each port up.
fn free_ports<'a>(
    state: &'a State,
    range: PortRange,
    app: &'a AppId,
) -> impl Iterator<Item = u32> + 'a {
    let mut claimed = state
        .service_ports
        .range(range.first..=range.last)
        .filter(move |(_, owners)| owners.iter().any(|a| a != app))
        .map(|(port, _)| *port)
        .peekable();
    (range.first..=range.last).filter(move |port| {
        while claimed.next_if(|c| c < port).is_some() {}
        claimed.next_if_eq(port).is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::PortRange;

    #[test]
    fn parses_port_ranges() {
        assert_eq!(
            "10000-20000".parse(),
            Ok(PortRange {
                first: 10_000,
                last: 20_000
            })
        );
        for bad in ["", "10000", "2-1", "0-10", "1-70000", "a-b"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }
}
