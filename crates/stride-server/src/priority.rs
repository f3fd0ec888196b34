//! Thread priorities. Linux nice is per thread, so a part can step back
//! without slowing the rest of the process.

/// Lowers the calling thread's priority, for work nobody waits on: fanning
/// events out to subscribers (they fall behind and catch up, never losing
/// an event) and taking snapshots (a cache). When such work takes every
/// core, the API and the committer, on which writers wait for their
/// acknowledgements, go first.
/// Relative to the thread's nice, so that a server started at a nice of
/// its own keeps the same order inside.
pub(crate) fn yield_to_writers() {
    const LOWER_BY: i32 = 10;
    const LOWEST: i32 = 19;
    let lowered = rustix::process::getpriority_process(None)
        .and_then(|nice| rustix::process::setpriority_process(None, (nice + LOWER_BY).min(LOWEST)));
    if let Err(error) = lowered {
        tracing::debug!(%error, "cannot lower a background thread's priority");
    }
}
