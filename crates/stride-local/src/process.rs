//! Runs one command task as a child process in its own process group and
//! reports what happens to it, like the Mesos command executor does.
//!
//! Each task is one tokio task (no thread): spawn, then wait for either the
//! child's exit or a kill request. Children are reaped asynchronously by
//! tokio's SIGCHLD handling.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::{Semaphore, oneshot};

use super::plain_command::plain_command;
use super::sandbox::Sandbox;

/// What to execute: `sh -c value` (Mesos' default; a plain command skips
/// the shell, see `plain_command`), or `value` exec'd directly with
/// `arguments` as its argv.
#[derive(Debug, Clone)]
pub(crate) enum Program {
    Shell(String),
    Exec { path: String, argv: Vec<String> },
}

#[derive(Debug)]
pub(crate) struct LaunchSpec {
    pub(crate) program: Program,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) sandbox: Sandbox,
}

/// A kill request: how long to wait after SIGTERM before SIGKILL.
pub(crate) type KillRequest = oneshot::Receiver<Duration>;

#[derive(Debug)]
pub(crate) enum TaskReport {
    /// The process exists; for a command task `pid` is also its process
    /// group id. `ip` is a container's own address (Docker bridge or user
    /// networks).
    Started { pid: u32, ip: Option<String> },
    /// A container started before a restart is followed again; it was
    /// reported running then.
    Adopted { pid: u32, ip: Option<String> },
    /// Could not even start (sandbox, exec, image or engine failure).
    LaunchFailed { message: String },
    /// The executor gave up before starting anything (bad run options).
    ExecutorFailed { message: String },
    /// SIGTERM went to the process group.
    Killing,
    Exited {
        killed: bool,
        message: String,
        success: bool,
    },
}

/// Starts processes on the blocking pool, a few at a time. Creating the
/// sandbox and fork/exec block in the kernel (disk journal, page tables);
/// doing that on the runtime threads would stall the API, and doing all of
/// a large launch at once would only add threads.
#[derive(Clone)]
pub(crate) struct Spawner {
    slots: Arc<Semaphore>,
}

impl Spawner {
    pub(crate) fn new(parallelism: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(parallelism.max(1))),
        }
    }

    async fn spawn(&self, spec: LaunchSpec) -> Result<tokio::process::Child, String> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| "Failed to launch command: the agent is shutting down".to_string())?;
        tokio::task::spawn_blocking(move || spawn(&spec))
            .await
            .map_err(|error| format!("Failed to launch command: {error}"))?
    }
}

/// Runs the task to completion, sending each step to `report`.
pub(crate) async fn supervise(
    spawner: Spawner,
    spec: LaunchSpec,
    kill: KillRequest,
    report: impl Fn(TaskReport),
) {
    let mut child = match spawner.spawn(spec).await {
        Ok(child) => child,
        Err(message) => return report(TaskReport::LaunchFailed { message }),
    };
    let Some(pid) = child.id() else {
        // Only possible if the child was already reaped, which we never do
        // before this point.
        return report(TaskReport::LaunchFailed {
            message: "Child process vanished right after spawn".to_string(),
        });
    };
    report(TaskReport::Started { pid, ip: None });

    let mut kill = Some(kill);
    let mut killed = false;
    let status = loop {
        let Some(request) = kill.as_mut() else {
            break child.wait().await;
        };
        tokio::select! {
            status = child.wait() => break status,
            grace = request => {
                kill = None;
                // A dropped sender means nobody will ever ask to kill:
                // keep waiting for the exit.
                let Ok(grace) = grace else { continue };
                killed = true;
                report(TaskReport::Killing);
                signal_group(pid, Signal::SIGTERM);
                tokio::select! {
                    status = child.wait() => break status,
                    () = tokio::time::sleep(grace) => {
                        signal_group(pid, Signal::SIGKILL);
                        break child.wait().await;
                    }
                }
            }
        }
    };
    // The container dies with its main process: reap stragglers such as
    // `sleep 100 &` left in the group.
    signal_group(pid, Signal::SIGKILL);
    let (message, success) = match status {
        Ok(status) => (describe_exit(status), status.success()),
        Err(error) => (format!("Failed to wait for the command: {error}"), false),
    };
    report(TaskReport::Exited {
        killed,
        message,
        success,
    });
}

fn spawn(spec: &LaunchSpec) -> Result<tokio::process::Child, String> {
    let (stdout, stderr) = spec.sandbox.create().map_err(|error| {
        format!(
            "Failed to create sandbox {}: {error}",
            spec.sandbox.dir.display()
        )
    })?;
    let mut command = match &spec.program {
        Program::Shell(script) => match plain_command(script, search_path(&spec.env).as_deref()) {
            Some((program, words)) => {
                let mut command = Command::new(program);
                command
                    .arg0(&words[0])
                    .args(&words[1..])
                    // What the shell would have exported on its way.
                    .env("PWD", &spec.sandbox.dir);
                command
            }
            None => {
                let mut command = Command::new("/bin/sh");
                command.arg("-c").arg(script);
                command
            }
        },
        Program::Exec { path, argv } => {
            let mut command = Command::new(path);
            // argv[0] is the program name by convention; Mesos passes the
            // whole list as argv, so skip the first entry when present.
            command.args(argv.iter().skip(1));
            command
        }
    };
    command
        .envs(spec.env.iter().map(|(name, value)| (name, value)))
        .current_dir(&spec.sandbox.dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    let child = command
        .spawn()
        .map_err(|error| format!("Failed to launch command: {error}"))?;
    // A task runs as its app defines it, not with the server's short slice.
    if let Some(pid) = child.id() {
        stride_sched::restore_defaults(pid);
    }
    Ok(child)
}

/// The `PATH` the task's shell would search: its own, else the agent's.
fn search_path(env: &[(String, String)]) -> Option<String> {
    env.iter()
        .rev()
        .find(|(name, _)| name == "PATH")
        .map(|(_, value)| value.clone())
        .or_else(|| std::env::var("PATH").ok())
}

/// Signals the whole process group; a group that is already gone is fine.
pub(crate) fn signal_group(pgid: u32, signal: Signal) {
    if let Ok(pgid) = i32::try_from(pgid) {
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

/// The command executor's wording: `Command exited with status 3`,
/// `Command terminated with signal Terminated`.
fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("Command exited with status {code}"),
        (None, Some(signal)) => format!("Command terminated with signal {}", signal_name(signal)),
        (None, None) => "Command terminated".to_string(),
    }
}

/// `strsignal(3)` texts for the signals a task commonly dies of.
fn signal_name(signal: i32) -> String {
    let name = match Signal::try_from(signal) {
        Ok(Signal::SIGTERM) => "Terminated",
        Ok(Signal::SIGKILL) => "Killed",
        Ok(Signal::SIGINT) => "Interrupt",
        Ok(Signal::SIGHUP) => "Hangup",
        Ok(Signal::SIGQUIT) => "Quit",
        Ok(Signal::SIGABRT) => "Aborted",
        Ok(Signal::SIGSEGV) => "Segmentation fault",
        Ok(Signal::SIGPIPE) => "Broken pipe",
        Ok(Signal::SIGBUS) => "Bus error",
        Ok(Signal::SIGUSR1) => "User defined signal 1",
        Ok(Signal::SIGUSR2) => "User defined signal 2",
        _ => return format!("Unknown signal {signal}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn spec(dir: &std::path::Path, program: Program) -> LaunchSpec {
        LaunchSpec {
            program,
            env: vec![("GREETING".to_string(), "hi".to_string())],
            sandbox: Sandbox {
                dir: dir.join("sandbox"),
            },
        }
    }

    async fn run(spec: LaunchSpec, kill_after: Option<Duration>) -> Vec<String> {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let (kill_tx, kill_rx) = oneshot::channel();
        let sink = reports.clone();
        let supervisor = tokio::spawn(supervise(Spawner::new(2), spec, kill_rx, move |report| {
            sink.lock().expect("lock").push(format!("{report:?}"));
        }));
        if let Some(delay) = kill_after {
            tokio::time::sleep(delay).await;
            let _ = kill_tx.send(Duration::from_millis(500));
        } else {
            drop(kill_tx);
        }
        supervisor.await.expect("supervisor");
        reports.lock().expect("lock").clone()
    }

    #[tokio::test]
    async fn shell_command_runs_in_its_sandbox_and_reports_its_exit_code() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = "echo $GREETING; pwd; exit 3".to_string();
        let reports = run(spec(dir.path(), Program::Shell(script)), None).await;
        assert!(reports[0].starts_with("Started"), "{reports:?}");
        assert!(
            reports[1].contains("Command exited with status 3")
                && reports[1].contains("killed: false"),
            "{reports:?}"
        );
        let stdout = std::fs::read_to_string(dir.path().join("sandbox/stdout")).expect("stdout");
        assert_eq!(
            stdout,
            format!("hi\n{}\n", dir.path().join("sandbox").display())
        );
    }

    /// The name the kernel has for the task's own process, once started.
    async fn started_comm(spec: LaunchSpec) -> String {
        let (kill_tx, kill_rx) = oneshot::channel();
        let (pid_tx, pid_rx) = std::sync::mpsc::channel();
        let supervisor = tokio::spawn(supervise(Spawner::new(1), spec, kill_rx, move |report| {
            if let TaskReport::Started { pid, .. } = report {
                let _ = pid_tx.send(pid);
            }
        }));
        let pid = tokio::task::spawn_blocking(move || pid_rx.recv().expect("started"))
            .await
            .expect("pid");
        // exec releases a vfork parent before it renames the process, so
        // under load the spawning thread's name can still show for a moment.
        let read = || std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm");
        let mut comm = read();
        for _ in 0..100 {
            if !comm.starts_with("tokio") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            comm = read();
        }
        let _ = kill_tx.send(Duration::ZERO);
        supervisor.await.expect("supervisor");
        comm.trim().to_string()
    }

    #[tokio::test]
    async fn a_plain_command_is_the_task_process_itself_and_a_script_runs_under_sh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = Program::Shell("sleep 30".to_string());
        assert_eq!(started_comm(spec(dir.path(), plain)).await, "sleep");
        let script = Program::Shell("sleep 30; true".to_string());
        assert_eq!(started_comm(spec(dir.path(), script)).await, "sh");
    }

    #[tokio::test]
    async fn a_plain_command_sees_the_environment_the_shell_would_give_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reports = run(spec(dir.path(), Program::Shell("env".to_string())), None).await;
        assert!(reports[1].contains("success: true"), "{reports:?}");
        let stdout = std::fs::read_to_string(dir.path().join("sandbox/stdout")).expect("stdout");
        let sandbox = dir.path().join("sandbox");
        assert!(stdout.lines().any(|l| l == "GREETING=hi"), "{stdout}");
        assert!(
            stdout
                .lines()
                .any(|l| l == format!("PWD={}", sandbox.display())),
            "{stdout}"
        );
    }

    #[tokio::test]
    async fn kill_sends_sigterm_to_the_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reports = run(
            spec(dir.path(), Program::Shell("sleep 30".to_string())),
            Some(Duration::from_millis(100)),
        )
        .await;
        assert_eq!(reports.len(), 3, "{reports:?}");
        assert_eq!(reports[1], "Killing");
        assert!(
            reports[2].contains("killed: true")
                && reports[2].contains("Command terminated with signal Terminated"),
            "{reports:?}"
        );
    }

    #[tokio::test]
    async fn a_task_ignoring_sigterm_gets_sigkill_after_the_grace_period() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Ignored signals stay ignored across exec, so `sleep` ignores
        // SIGTERM too.
        let script = "trap '' TERM; sleep 30".to_string();
        let started = std::time::Instant::now();
        let reports = run(
            spec(dir.path(), Program::Shell(script)),
            Some(Duration::from_millis(100)),
        )
        .await;
        assert!(
            reports[2].contains("Command terminated with signal Killed"),
            "{reports:?}"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(600),
            "waited the 500 ms grace"
        );
    }

    #[tokio::test]
    async fn exec_of_a_missing_binary_fails_to_launch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = Program::Exec {
            path: "/nonexistent/binary".to_string(),
            argv: Vec::new(),
        };
        let reports = run(spec(dir.path(), program), None).await;
        assert_eq!(reports.len(), 1);
        assert!(reports[0].starts_with("LaunchFailed"), "{reports:?}");
    }
}
