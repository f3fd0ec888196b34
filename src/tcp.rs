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
