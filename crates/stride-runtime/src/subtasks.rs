//! Tasks a part starts for itself (a probe loop per check, a task per
//! status update): the part owns them. Each gets a child of the part's
//! token, so stopping the part stops them; the part waits for them as it
//! ends (`close`), and drops abort them; one that panics is the part's
//! failure (`panicked`), so the `Supervisor` reports it instead of it
//! vanishing with its task.

use crate::supervisor::panic_message;
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// A subtask that panicked, and its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} panicked: {message}")]
pub struct SubtaskPanicked {
    pub kind: &'static str,
    pub message: String,
}

pub struct Subtasks {
    /// What each is, for the report: "probe loop".
    kind: &'static str,
    token: CancellationToken,
    set: JoinSet<()>,
}

impl Subtasks {
    /// Subtasks stopped with `parent`.
    pub fn new(kind: &'static str, parent: &CancellationToken) -> Subtasks {
        Subtasks {
            kind,
            token: parent.child_token(),
            set: JoinSet::new(),
        }
    }

    /// Starts one with a token of its own, returned so the part can stop
    /// it alone (a drop guard of it, say); stopping the part stops it too.
    pub fn spawn<F, Fut>(&mut self, task: F) -> CancellationToken
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let token = self.token.child_token();
        self.set.spawn(task(token.clone()));
        token
    }

    /// How many have not been reaped yet (ended ones are reaped while
    /// `panicked` is polled).
    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Resolves at the first that panicked, reaping those that ended;
    /// pending while none has. Meant for the part's `select!`.
    pub async fn panicked(&mut self) -> SubtaskPanicked {
        loop {
            match self.set.join_next().await {
                Some(Err(error)) if error.is_panic() => return self.report(error),
                Some(_) => continue,
                None => std::future::pending().await,
            }
        }
    }

    /// Stops them all and waits until they have ended; the first panic
    /// among them (before or meanwhile) is the error.
    pub async fn close(mut self) -> Result<(), SubtaskPanicked> {
        self.token.cancel();
        self.finish().await
    }

    /// Waits until every one has ended by itself, without stopping them
    /// (work in flight, such as recording an update, completes).
    pub async fn finish(&mut self) -> Result<(), SubtaskPanicked> {
        let mut first = None;
        while let Some(joined) = self.set.join_next().await {
            if let Err(error) = joined {
                if error.is_panic() {
                    first.get_or_insert(self.report(error));
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn report(&self, error: JoinError) -> SubtaskPanicked {
        SubtaskPanicked {
            kind: self.kind,
            message: panic_message(&*error.into_panic()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_panic_in_one_is_reported_not_lost() {
        let part = CancellationToken::new();
        let mut subtasks = Subtasks::new("probe loop", &part);
        subtasks.spawn(|stop| async move { stop.cancelled().await });
        subtasks.spawn(|_| async {});
        subtasks.spawn(|_| async { panic!("index out of range") });
        let panicked =
            tokio::time::timeout(std::time::Duration::from_secs(10), subtasks.panicked())
                .await
                .expect("reported");
        assert_eq!(
            panicked.to_string(),
            "a probe loop panicked: index out of range"
        );
        // The one still running is the part's until it ends.
        assert_eq!(subtasks.len(), 1);
        part.cancel();
        subtasks.close().await.expect("no other panic");
    }

    #[tokio::test]
    async fn stopping_the_part_ends_them_all_and_close_waits_for_them() {
        let part = CancellationToken::new();
        let mut subtasks = Subtasks::new("probe loop", &part);
        let ended = Arc::new(AtomicUsize::new(0));
        let mut alone = None;
        for i in 0..3 {
            let ended = ended.clone();
            let token = subtasks.spawn(|stop| async move {
                stop.cancelled().await;
                // Still finishing after being told: close waits for this.
                tokio::task::yield_now().await;
                ended.fetch_add(1, Ordering::SeqCst);
            });
            if i == 0 {
                alone = Some(token);
            }
        }
        // One stopped alone leaves the others running.
        alone.expect("a token").cancel();
        while ended.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(ended.load(Ordering::SeqCst), 1);
        assert!(!part.is_cancelled());
        part.cancel();
        subtasks.close().await.expect("no panic");
        assert_eq!(ended.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn finish_lets_work_in_flight_complete_and_reports_a_panic_then() {
        let part = CancellationToken::new();
        let mut subtasks = Subtasks::new("status update", &part);
        let done = Arc::new(AtomicUsize::new(0));
        let counted = done.clone();
        subtasks.spawn(|_| async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            counted.fetch_add(1, Ordering::SeqCst);
        });
        subtasks.spawn(|_| async { panic!("bad update") });
        let finished = subtasks.finish().await;
        assert_eq!(done.load(Ordering::SeqCst), 1, "not cut short");
        assert_eq!(
            finished.expect_err("the panic").to_string(),
            "a status update panicked: bad update"
        );
    }

    #[tokio::test]
    async fn dropping_them_aborts_what_is_left() {
        let part = CancellationToken::new();
        let mut subtasks = Subtasks::new("probe loop", &part);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        subtasks.spawn(|_| async move {
            let _held = tx;
            std::future::pending::<()>().await;
        });
        drop(subtasks);
        assert!(
            rx.await.is_err(),
            "the task was aborted, dropping its sender"
        );
    }
}
