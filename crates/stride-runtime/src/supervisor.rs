//! Supervision: every long-running part of a process runs under one
//! `TaskTracker` and one root `CancellationToken`. Each part gets a child
//! of the root, so it can be stopped alone (in the process's shutdown
//! order) or with everything.
//!
//! A part that fails (returns an error or panics, or returns before it was
//! told to stop) is a death (once told to stop, only a panic is: an error
//! then is most often the stopping itself, and is logged): `died()` resolves with the part's name and
//! its cause, and the process stops in its shutdown order and exits
//! non-zero saying so. Only the first death is reported; later ones (often
//! its consequences) are logged.

use super::error::chain;
use futures::FutureExt;
use std::any::Any;
use std::error::Error;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TrackedFuture;

/// A part that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {part} failed: {cause}")]
pub struct Death {
    pub part: &'static str,
    pub cause: String,
}

#[derive(Clone, Default)]
pub struct Supervisor {
    tracker: TaskTracker,
    root: CancellationToken,
    deaths: Arc<Deaths>,
}

#[derive(Default)]
struct Deaths {
    first: OnceLock<Death>,
    /// Cancelled at the first death.
    any: CancellationToken,
}

/// A running part: stop it alone, wait for it to end.
pub struct Part {
    name: &'static str,
    token: CancellationToken,
    ended: CancellationToken,
}

impl Part {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Tells the part to stop (it stops at its next occasion).
    pub fn stop(&self) {
        self.token.cancel();
    }

    /// Resolves once the part has ended, however.
    pub async fn ended(&self) {
        self.ended.cancelled().await;
    }
}

impl Supervisor {
    pub fn new() -> Supervisor {
        Supervisor::default()
    }

    /// Runs `part` as a task, with a token that says when to stop.
    pub fn spawn<F, Fut, E>(&self, name: &'static str, part: F) -> Part
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Error + Send + 'static,
    {
        let (token, ended) = (self.root.child_token(), CancellationToken::new());
        let running = part(token.clone());
        let (supervisor, told, done) = (self.clone(), token.clone(), ended.clone());
        self.tracker.spawn(async move {
            let outcome = AssertUnwindSafe(running).catch_unwind().await;
            supervisor.judge(name, outcome, &told);
            done.cancel();
        });
        Part { name, token, ended }
    }

    /// Runs `part` on a thread of its own (blocking work), with a token
    /// that says when to stop.
    pub fn spawn_thread<F, E>(&self, name: &'static str, part: F) -> std::io::Result<Part>
    where
        F: FnOnce(CancellationToken) -> Result<(), E> + Send + 'static,
        E: Error + Send + 'static,
    {
        let (token, ended) = (self.root.child_token(), CancellationToken::new());
        let (supervisor, told, done) = (self.clone(), token.clone(), ended.clone());
        let tracked = self.tracker.token();
        let thread_name = format!("stride-{}", name.replace(' ', "-"));
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let _tracked = tracked;
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| part(told.clone())));
                supervisor.judge(name, outcome, &told);
                done.cancel();
            })?;
        Ok(Part { name, token, ended })
    }

    /// Tracks a short-lived task (a connection), so that waiting for the
    /// process's tasks waits for it too.
    pub fn track<F: Future>(&self, future: F) -> TrackedFuture<F> {
        self.tracker.track_future(future)
    }

    fn judge<E: Error>(
        &self,
        part: &'static str,
        outcome: Result<Result<(), E>, Box<dyn Any + Send>>,
        told: &CancellationToken,
    ) {
        let cause = match outcome {
            Ok(Ok(())) if told.is_cancelled() => return,
            Ok(Err(error)) if told.is_cancelled() => {
                let error = chain(&error);
                tracing::warn!(part, %error, "a part ended with an error while stopping");
                return;
            }
            Ok(Ok(())) => "it stopped without being told to".to_owned(),
            Ok(Err(error)) => chain(&error),
            Err(panic) => format!("it panicked: {}", panic_message(&*panic)),
        };
        self.die(Death { part, cause });
    }

    /// Records a death that happened outside a part's task.
    pub fn die(&self, death: Death) {
        tracing::error!(part = death.part, cause = %death.cause, "a part of Stride failed; stopping");
        if self.deaths.first.set(death).is_ok() {
            self.deaths.any.cancel();
        }
    }

    /// Resolves with the first death.
    pub async fn died(&self) -> Death {
        self.deaths.any.cancelled().await;
        self.death().expect("set before it is announced")
    }

    pub fn death(&self) -> Option<Death> {
        self.deaths.first.get().cloned()
    }

    /// Tells every part to stop.
    pub fn stop(&self) {
        self.root.cancel();
    }

    /// Resolves once every part and tracked task has ended.
    pub async fn ended(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// What a panic said, as far as it said anything.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(message), _) => (*message).to_owned(),
        (_, Some(message)) => message.clone(),
        _ => "(no message)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    #[derive(Debug, thiserror::Error)]
    #[error("the disk is gone")]
    struct Gone(#[source] std::io::Error);

    #[tokio::test]
    async fn an_error_a_panic_or_an_unasked_return_is_a_death_a_stop_is_not() {
        let supervisor = Supervisor::new();
        let stopped = supervisor.spawn("waiter", |token| async move {
            token.cancelled().await;
            Ok::<(), Infallible>(())
        });
        stopped.stop();
        stopped.ended().await;
        assert_eq!(supervisor.death(), None);

        let failing = supervisor.spawn("store reader", |_| async {
            Err(Gone(std::io::Error::other("EIO")))
        });
        failing.ended().await;
        assert_eq!(
            supervisor.died().await.to_string(),
            "the store reader failed: the disk is gone: EIO"
        );

        type Body = fn() -> Result<(), Infallible>;
        let cases: [(&str, Body, &str); 2] = [
            (
                "panicker",
                || panic!("index out of range"),
                "it panicked: index out of range",
            ),
            ("quitter", || Ok(()), "it stopped without being told to"),
        ];
        for (name, body, cause) in cases {
            let alone = Supervisor::new();
            let part = alone.spawn_thread(name, move |_| body()).expect("a thread");
            part.ended().await;
            assert_eq!(
                alone.died().await,
                Death {
                    part: name,
                    cause: cause.into()
                }
            );
            alone.ended().await;
        }
        supervisor.stop();
        supervisor.ended().await;
    }
}
