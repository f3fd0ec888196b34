//! Does a callback URL lead back to this server? A subscription that POSTs
//! to Stride's own API (a restart on every event, say) would feed the log
//! forever, so such URLs are refused.
//!
//! "Back to this server" means an address that connects to the listening
//! socket on the same port: the listen address itself; for a wildcard
//! listener, every address of this host (the whole loopback range and each
//! interface's); `0.0.0.0` and `::` connect to loopback; an IPv4-mapped
//! IPv6 address is its IPv4 address. Host names are resolved.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The address of `url` that reaches the server listening on `listen`, if
/// any. Names that do not resolve reach nothing (delivery will fail and
/// retry; the subscription is not this check's to refuse).
pub async fn reaching_listener(url: &reqwest::Url, listen: SocketAddr) -> Option<SocketAddr> {
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    if port != listen.port() {
        return None;
    }
    // The URL parser has normalized literals (`127.1` is `127.0.0.1`).
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<IpAddr> = match literal.parse() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map(|found| found.map(|a| a.ip()).collect())
            .unwrap_or_default(),
    };
    let local = local_addresses(listen.ip());
    addresses
        .into_iter()
        .find(|ip| reaches(*ip, listen.ip(), &local))
        .map(|ip| SocketAddr::new(ip, port))
}

/// Whether connecting to `target` (on the listener's port) reaches a
/// listener bound to `bound`, on a host with addresses `local`.
fn reaches(target: IpAddr, bound: IpAddr, local: &[IpAddr]) -> bool {
    let target = connects_to(target);
    match bound {
        // IPv4 wildcard: any IPv4 address of this host.
        IpAddr::V4(ip) if ip.is_unspecified() => {
            target.is_ipv4() && (target.is_loopback() || local.contains(&target))
        }
        // IPv6 wildcard (dual-stack): any address of this host.
        IpAddr::V6(ip) if ip.is_unspecified() => target.is_loopback() || local.contains(&target),
        bound => target == connects_to(bound),
    }
}

/// The address a connection to `ip` really goes to.
fn connects_to(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// This host's interface addresses, when a wildcard listener makes them
/// matter.
fn local_addresses(bound: IpAddr) -> Vec<IpAddr> {
    if !bound.is_unspecified() {
        return Vec::new();
    }
    match nix::ifaddrs::getifaddrs() {
        Ok(interfaces) => interfaces
            .filter_map(|interface| interface.address)
            .filter_map(|address| {
                address
                    .as_sockaddr_in()
                    .map(|a| IpAddr::V4(a.ip()))
                    .or_else(|| address.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())))
            })
            .map(|ip| ip.to_canonical())
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "cannot list this host's addresses");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn which_targets_reach_which_listener() {
        let local = [ip("127.0.0.1"), ip("10.1.2.3"), ip("::1"), ip("fe80::1")];
        let cases = [
            // (target, bound, reaches)
            ("127.0.0.1", "127.0.0.1", true),
            ("0.0.0.0", "127.0.0.1", true),
            ("::ffff:127.0.0.1", "127.0.0.1", true),
            ("127.0.0.2", "127.0.0.1", false),
            ("::1", "127.0.0.1", false),
            ("10.1.2.3", "127.0.0.1", false),
            ("10.1.2.3", "0.0.0.0", true),
            ("127.8.9.10", "0.0.0.0", true),
            ("0.0.0.0", "0.0.0.0", true),
            ("::1", "0.0.0.0", false),
            ("10.9.9.9", "0.0.0.0", false),
            ("::1", "::", true),
            ("::", "::", true),
            ("fe80::1", "::", true),
            ("10.1.2.3", "::", true),
            ("127.0.0.1", "::1", false),
            ("::1", "::1", true),
            ("10.1.2.3", "10.1.2.3", true),
            ("127.0.0.1", "10.1.2.3", false),
        ];
        for (target, bound, expected) in cases {
            assert_eq!(
                reaches(ip(target), ip(bound), &local),
                expected,
                "{target} -> {bound}"
            );
        }
    }
}
