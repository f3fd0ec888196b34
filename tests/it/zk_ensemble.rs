//! The election, the fencing and the batches against a real 3-node
//! ensemble (Debian's ZooKeeper 3.8; `scripts/test.sh` installs it).

use crate::support::zookeeper;
use std::time::Duration;
use stride_zk::ensemble::Ensemble;
use stride_zk::{Zk, ZkError, ZkUrl};

const SESSION: Duration = Duration::from_secs(4);

fn firsts(batches: &[stride_zk::BatchId]) -> Vec<u64> {
    batches.iter().map(|b| b.first).collect()
}

async fn session(ensemble: &Ensemble) -> Zk {
    let url: ZkUrl = ensemble.url("/stride/test").parse().expect("a URL");
    Zk::connect(&url, SESSION).await.expect("a session")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lowest_candidate_leads_and_a_deposed_leader_cannot_write() {
    let Some(ensemble) = zookeeper(3) else {
        return;
    };
    let a = session(&ensemble).await;
    let b = session(&ensemble).await;
    let first = a.nominate(b"a").await.expect("nominated");
    let second = b.nominate(b"b").await.expect("nominated");
    let leading = a.lead(&first, b"a").await.expect("a leads");
    assert_eq!(
        a.leader()
            .await
            .expect("read")
            .map(|l| (l.epoch, l.identity)),
        Some((leading.epoch, b"a".to_vec()))
    );
    // b waits behind a.
    let waiting = tokio::time::timeout(Duration::from_millis(500), b.lead(&second, b"b")).await;
    assert!(waiting.is_err(), "b led while a's candidate lives");

    a.append(&leading, 1, b"one").await.expect("appended");

    // a's session ends (as when its process dies): b wins a higher epoch.
    drop(a);
    let taken = tokio::time::timeout(SESSION * 3, b.lead(&second, b"b"))
        .await
        .expect("b leads once a's session is gone")
        .expect("b leads");
    assert!(taken.epoch > leading.epoch, "{taken:?} after {leading:?}");
    // Whatever a believes, its epoch no longer writes, even through b's session.
    match b.append(&leading, 2, b"stale").await {
        Err(ZkError::Fenced { epoch }) => assert_eq!(epoch, leading.epoch),
        other => panic!("a stale epoch wrote: {other:?}"),
    }
    assert!(!b.still_leads(&leading).await.expect("asked"));
    assert!(b.still_leads(&taken).await.expect("asked"));
    b.append(&taken, 2, b"two").await.expect("appended");
    let batches = b.batches().await.expect("listed");
    assert_eq!(firsts(&batches), vec![1, 2]);
    assert_eq!(
        b.batch(&batches[0]).await.expect("read").as_deref(),
        Some(&b"one"[..])
    );
    b.trim(&taken, 1).await.expect("trimmed");
    assert_eq!(b.batch(&batches[0]).await.expect("read"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_trimmed_once_applied_and_oversized_ones_refused() {
    let Some(ensemble) = zookeeper(1) else {
        return;
    };
    let zk = session(&ensemble).await;
    let candidate = zk.nominate(b"x").await.expect("nominated");
    let leading = zk.lead(&candidate, b"x").await.expect("leads");
    // 6 twice: a batch of idempotency records alone, then the events after.
    for first in [1, 3, 6, 6, 7] {
        zk.append(&leading, first, b"batch")
            .await
            .expect("appended");
    }
    let (_, watch) = zk.watch_batches().await.expect("watching");
    zk.mark_applied("x", 5).await.expect("marked");
    zk.mark_applied("y", 6).await.expect("marked");
    assert_eq!(
        zk.applied().await.expect("read").iter().map(|m| m.1).min(),
        Some(5)
    );
    // Through seq 5: batches 1 (1..=2) and 3 (3..=5) are done. The
    // records at 6 are not: a store at 5 may still have them to read (the
    // mark cannot tell), and trimming them under a reader that listed them
    // stopped it with "trimmed past this store".
    assert_eq!(zk.trim(&leading, 5).await.expect("trimmed"), 2);
    tokio::time::timeout(Duration::from_secs(5), watch.changed())
        .await
        .expect("the watch fired");
    assert_eq!(firsts(&zk.batches().await.expect("listed")), vec![6, 6, 7]);
    // Past seq 6 both batches at 6 are read; the newest stays, naming the head.
    assert_eq!(zk.trim(&leading, 100).await.expect("trimmed"), 2);
    assert_eq!(firsts(&zk.batches().await.expect("listed")), vec![7]);

    let big = vec![0u8; stride_zk::NODE_LIMIT + 1];
    assert!(matches!(
        zk.append(&leading, 8, &big).await,
        Err(ZkError::TooLarge { .. })
    ));
    let fits = vec![7u8; stride_zk::NODE_LIMIT];
    zk.append(&leading, 8, &fits)
        .await
        .expect("a batch at the limit fits");
    let last = zk.batches().await.expect("listed").pop().expect("a batch");
    assert_eq!(last.first, 8);
    assert_eq!(
        zk.batch(&last).await.expect("read").map(|b| b.len()),
        Some(stride_zk::NODE_LIMIT)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_zookeeper_leader_keeps_the_session_and_the_epoch() {
    let Some(mut ensemble) = zookeeper(3) else {
        return;
    };
    let zk = session(&ensemble).await;
    let candidate = zk.nominate(b"x").await.expect("nominated");
    let leading = zk.lead(&candidate, b"x").await.expect("leads");
    zk.append(&leading, 1, b"one").await.expect("appended");
    let zk_leader = ensemble.leader().expect("a quorum leader");
    ensemble.kill(zk_leader);
    // The session moves to another server within its timeout; the epoch holds.
    let deadline = std::time::Instant::now() + SESSION * 2;
    loop {
        match zk.append(&leading, 2, b"two").await {
            Ok(()) => break,
            Err(ZkError::Unknown { .. } | ZkError::Request { .. })
                if std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
                // A lost reply may have landed: then the batch is there.
                if zk.batches().await.is_ok_and(|b| firsts(&b).contains(&2)) {
                    break;
                }
            }
            Err(error) => panic!("no append after the quorum leader died: {error}"),
        }
    }
    assert!(zk.still_leads(&leading).await.expect("asked"));
    assert_eq!(firsts(&zk.batches().await.expect("listed")), vec![1, 2]);
}
