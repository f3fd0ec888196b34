//! What each kind of Stride thread asks of the kernel's scheduler.
//!
//! When every core is busy, a thread that wakes waits for one. Linux's fair
//! scheduler (EEVDF) lets the running thread finish its time slice first,
//! which it notices at the next tick (4 ms at HZ=250), unless the thread
//! waking asked for a shorter slice than the running one (Linux 6.12+,
//! `sched_setattr`'s `sched_runtime` under SCHED_OTHER): then it runs at
//! once. Nice alone does not do that; it shares the cores out over time.
//!
//! A write crosses several threads before its acknowledgement (an API
//! worker, the committer's decide and sync threads, sled's I/O threads, the
//! watermark's), and each handoff would wait behind the stream's fan-out,
//! which wakes a thousand subscribers at once. So:
//! - `answer_promptly`: a thread on the write path asks for the shortest
//!   slice; the threads it starts inherit it (sled starts its I/O threads
//!   from the committer's);
//! - `yield_to_writers`: work nobody waits on (the fan-out, snapshots) runs
//!   10 nice levels lower at the default slice;
//! - `restore_defaults`: a process Stride starts (a task of the embedded
//!   cluster, a health command) does not keep the slice it inherited.
//!
//! Asking is all it is: a kernel without custom slices ignores the request,
//! and a failure is logged at debug level and changes nothing.

use std::time::Duration;

/// The shortest slice the kernel grants (it clamps requests to 0.1-100 ms):
/// the write path's threads run for short stretches and then wait.
pub const PROMPT_SLICE: Duration = Duration::from_micros(100);

/// Nice levels that background work steps below the thread starting it.
const LOWER_BY: i32 = 10;
const LOWEST_NICE: i32 = 19;

/// The calling thread (and the threads it starts) asks for `PROMPT_SLICE`,
/// keeping its nice and policy.
pub fn answer_promptly() {
    if let Err(error) = current_nice().and_then(|nice| set(None, nice, Some(PROMPT_SLICE))) {
        tracing::debug!(%error, "cannot ask for a short time slice");
    }
}

/// Lowers the calling thread's priority, for work nobody waits on: fanning
/// events out to subscribers (they fall behind and catch up, never losing
/// an event) and taking snapshots (a cache). When such work takes every
/// core, the API and the committer, on which writers wait for their
/// acknowledgements, go first. Relative to the process's nice (its main
/// thread's), so that a server started at a nice of its own keeps the same
/// order inside, and a thread started by a background one steps down only
/// once; the slice goes back to the kernel's default.
pub fn yield_to_writers() {
    let lowered =
        process_nice().and_then(|nice| set(None, (nice + LOWER_BY).min(LOWEST_NICE), None));
    if let Err(error) = lowered {
        tracing::debug!(%error, "cannot lower a background thread's priority");
    }
}

/// Gives process `pid`, started by a thread that answers promptly, the
/// kernel's default slice back (its nice is kept).
pub fn restore_defaults(pid: u32) {
    let restored = rustix::process::Pid::from_raw(pid as i32)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))
        .and_then(|process| Ok(rustix::process::getpriority_process(Some(process))?))
        .and_then(|nice| set(Some(pid), nice, None));
    if let Err(error) = restored {
        tracing::debug!(pid, %error, "cannot restore a child's default time slice");
    }
}

fn current_nice() -> std::io::Result<i32> {
    Ok(rustix::process::getpriority_process(None)?)
}

fn process_nice() -> std::io::Result<i32> {
    Ok(rustix::process::getpriority_process(Some(
        rustix::process::getpid(),
    ))?)
}

/// `sched_setattr` for thread `tid` (the caller's when `None`): `nice`, and
/// `slice` (`None`: the kernel's default), keeping the scheduling policy.
#[cfg(target_os = "linux")]
fn set(tid: Option<u32>, nice: i32, slice: Option<Duration>) -> std::io::Result<()> {
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: libc::SCHED_FLAG_KEEP_POLICY as u64,
        sched_nice: nice,
        sched_priority: 0,
        sched_runtime: slice.map_or(0, |slice| slice.as_nanos() as u64),
        sched_deadline: 0,
        sched_period: 0,
    };
    let tid = tid.map_or(0, |tid| tid as libc::pid_t);
    // SAFETY: the kernel reads `size` bytes from a valid, initialised
    // `sched_attr` that outlives the call, and writes nothing.
    #[allow(unsafe_code)]
    let result = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            tid,
            &attr as *const libc::sched_attr,
            0u32,
        )
    };
    match result {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(not(target_os = "linux"))]
fn set(tid: Option<u32>, nice: i32, _slice: Option<Duration>) -> std::io::Result<()> {
    match tid {
        None => Ok(rustix::process::setpriority_process(None, nice)?),
        Some(_) => Ok(()),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The slice and nice the kernel reports for a thread (`/proc`).
    fn sched(task: &str) -> (u64, i32) {
        let text = std::fs::read_to_string(format!("/proc/{task}/sched")).unwrap();
        let field = |name: &str| -> i64 {
            text.lines()
                .find(|line| line.starts_with(name))
                .and_then(|line| line.split(':').nth(1))
                .map(|value| value.trim().parse().unwrap())
                .unwrap_or_else(|| panic!("no {name} in /proc/{task}/sched"))
        };
        (field("se.slice") as u64, field("prio") as i32 - 120)
    }

    fn on_a_thread<T: Send>(body: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| scope.spawn(body).join().unwrap())
    }

    #[test]
    fn the_write_path_asks_for_the_shortest_slice_and_its_threads_inherit_it() {
        let (before, mine, started) = on_a_thread(|| {
            let before = sched("thread-self");
            answer_promptly();
            (
                before,
                sched("thread-self"),
                on_a_thread(|| sched("thread-self")),
            )
        });
        assert_ne!(before.0, 100_000, "a thread starts at the default slice");
        assert_eq!(
            mine,
            (100_000, before.1),
            "the slice is asked for, the nice kept"
        );
        assert_eq!(started, mine, "a thread it starts inherits both");
    }

    #[test]
    fn background_work_steps_ten_nice_levels_down_at_the_default_slice() {
        let (default, background) = on_a_thread(|| {
            let default = sched("thread-self");
            answer_promptly();
            yield_to_writers();
            (default, sched("thread-self"))
        });
        assert_eq!(background, (default.0, (default.1 + 10).min(19)));
    }

    #[test]
    fn a_child_process_gets_the_default_slice_back() {
        let (default, inherited, restored) = on_a_thread(|| {
            let default = sched("thread-self");
            answer_promptly();
            let mut child = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .unwrap();
            let pid = child.id().to_string();
            let inherited = sched(&pid);
            restore_defaults(child.id());
            let restored = sched(&pid);
            child.kill().unwrap();
            child.wait().unwrap();
            (default, inherited, restored)
        });
        assert_eq!(inherited.0, 100_000);
        assert_eq!(restored, default);
    }
}
