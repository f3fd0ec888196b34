//! `stride app`, `stride deployments` and `stride tasks`: apps from a
//! terminal, through Marathon's `/v2` and Stride's `/v1`. Tables for
//! people, `--json` for scripts, exit codes in `docs/cli.md`.

mod change;
mod show;
mod wait;
mod why;

use super::remote::{Remote, block_on};
use clap::Subcommand;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand)]
pub enum AppCommand {
    /// Every app: instances running, staged and healthy, deployments.
    List(Output),
    /// One app: its definition, how many tasks run, its deployment and
    /// last task failure.
    Show {
        /// The app id, e.g. /prod/web.
        #[arg(value_parser = app_id)]
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Create or replace an app from a JSON definition (`-` reads stdin);
    /// prints the deployment it starts.
    Deploy {
        /// A JSON app definition, as POST /v2/apps takes it.
        file: PathBuf,
        #[command(flatten)]
        change: Change,
    },
    /// Run this many instances.
    Scale {
        /// The app id, e.g. /prod/web.
        #[arg(value_parser = app_id)]
        id: String,
        /// How many.
        instances: u32,
        #[command(flatten)]
        change: Change,
    },
    /// Replace every task, as a rolling deployment.
    Restart {
        /// The app id, e.g. /prod/web.
        #[arg(value_parser = app_id)]
        id: String,
        #[command(flatten)]
        change: Change,
    },
    /// Put back an earlier version of the definition (default: the one
    /// before the current; `stride app versions` lists them).
    Rollback {
        /// The app id, e.g. /prod/web.
        #[arg(value_parser = app_id)]
        id: String,
        /// A version as `stride app versions` lists it.
        version: Option<String>,
        #[command(flatten)]
        change: Change,
    },
    /// Stop every task and remove the app.
    Delete {
        /// The app id, e.g. /prod/web.
        #[arg(value_parser = app_id)]
        id: String,
        #[command(flatten)]
        change: Change,
    },
    /// The versions of an app's definition, newest first.
    Versions {
        /// The app id, e.g. /prod/web.
        #[arg(value_parser = app_id)]
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// The fields that changed between two versions, before and after.
    Diff {
        /// The app id, e.g. /prod/web.
        #[arg(value_parser = app_id)]
        id: String,
        /// The older version.
        from: String,
        /// The newer version.
        to: String,
        #[command(flatten)]
        out: Output,
    },
    /// An app's tasks: host, ports, state, health, version.
    Tasks {
        /// The app id, e.g. /prod/web.
        #[arg(value_parser = app_id)]
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Why an app runs fewer tasks than it asks for, in plain words.
    Why {
        /// The app id, e.g. /prod/web.
        #[arg(value_parser = app_id)]
        id: String,
        #[command(flatten)]
        out: Output,
    },
}

/// Where to ask, and how to print.
#[derive(clap::Args)]
pub struct Output {
    /// Print JSON for scripts instead of text for people.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

/// How a change is made.
#[derive(clap::Args)]
pub struct Change {
    /// Go ahead even if another deployment holds the app (it is
    /// cancelled where it is).
    #[arg(long)]
    force: bool,
    /// Follow the deployment on the event stream, with a progress bar,
    /// until it finishes (exit 0) or fails (exit 7).
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this long (exit 8), e.g. 90s, 10m.
    #[arg(long, default_value = "10m", value_parser = super::duration)]
    timeout: Duration,
    #[command(flatten)]
    out: Output,
}

/// `stride deployments`: what is being deployed.
#[derive(clap::Args)]
pub struct DeploymentsArgs {
    #[command(flatten)]
    out: Output,
}

/// `stride tasks`: every task of every app.
#[derive(clap::Args)]
pub struct TasksArgs {
    #[command(flatten)]
    out: Output,
}

/// What `stride app --help` says of exit codes (`docs/cli.md`).
pub const EXIT_CODES: &str = "Exit codes: 0 done; 1 other error; 2 bad usage; 3 server unreachable; \
4 not found; 5 input refused (a bad file, or the server's 400/422); 6 conflict: another \
deployment holds the app (--force); 7 the deployment waited for failed; 8 --wait timed out.";

/// An app id as given (`prod/web`, `/prod/web/`), made absolute.
fn app_id(raw: &str) -> Result<String, String> {
    let segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        return Err("expected an app id such as /prod/web".into());
    }
    Ok(format!("/{}", segments.join("/")))
}

pub fn run(command: AppCommand) -> anyhow::Result<()> {
    block_on(async move {
        match command {
            AppCommand::List(out) => show::list(&out).await,
            AppCommand::Show { id, out } => show::app(&id, &out).await,
            AppCommand::Deploy { file, change } => change::deploy(&file, &change).await,
            AppCommand::Scale {
                id,
                instances,
                change,
            } => change::scale(&id, instances, &change).await,
            AppCommand::Restart { id, change } => change::restart(&id, &change).await,
            AppCommand::Rollback {
                id,
                version,
                change,
            } => change::rollback(&id, version, &change).await,
            AppCommand::Delete { id, change } => change::delete(&id, &change).await,
            AppCommand::Versions { id, out } => show::versions(&id, &out).await,
            AppCommand::Diff { id, from, to, out } => show::diff(&id, &from, &to, &out).await,
            AppCommand::Tasks { id, out } => show::tasks(Some(&id), &out).await,
            AppCommand::Why { id, out } => why::why(&id, &out).await,
        }
    })
}

pub fn deployments(args: DeploymentsArgs) -> anyhow::Result<()> {
    block_on(async move { show::deployments(&args.out).await })
}

pub fn tasks(args: TasksArgs) -> anyhow::Result<()> {
    block_on(async move { show::tasks(None, &args.out).await })
}

#[cfg(test)]
mod tests {
    use super::app_id;

    #[test]
    fn ids_are_made_absolute() {
        assert_eq!(app_id("prod/web").unwrap(), "/prod/web");
        assert_eq!(app_id("/prod//web/").unwrap(), "/prod/web");
        assert!(app_id("/").is_err());
    }
}
