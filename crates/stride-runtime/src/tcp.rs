//! TCP settings every Stride server applies to the connections it accepts.

/// Turns off Nagle's algorithm. Stride's servers stream small messages (a
/// websocket frame per event, a RecordIO record per Mesos update); with
/// Nagle on, a write waiting behind an unacknowledged one meets the peer's
/// delayed ACK and arrives about 40 ms late.
pub fn no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY on an accepted connection");
    }
}

/// A peer that takes none of our data for `timeout` (it stopped reading,
/// or vanished) has its connection closed by the kernel
/// (`TCP_USER_TIMEOUT`, which also covers a zero receive window), so a
/// response or event stream stuck on it gives its connection back.
pub fn send_timeout(stream: &tokio::net::TcpStream, timeout: std::time::Duration) {
    let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    if let Err(error) =
        nix::sys::socket::setsockopt(stream, nix::sys::socket::sockopt::TcpUserTimeout, &millis)
    {
        tracing::debug!(%error, "cannot set TCP_USER_TIMEOUT on an accepted connection");
    }
}
