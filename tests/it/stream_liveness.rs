//! A websocket subscriber being caught up is still listened to: its Close
//! is answered with a close frame after what is already buffered, not after
//! the whole backlog (a follower that pauses to resume later from `last + 1`
//! must not wait), and its pings are answered the same way.

use crate::support;
use crate::support::stream_client;

use crate::support::Server;
use crate::support::stream_client::{subscribe, write_apps_padded};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Events of about 4 KiB: the backlog is far more than socket buffers hold.
const EVENTS: u64 = 3_000;
const PADDING: usize = 4_096;

/// What a reader saw until the frame it waited for.
struct Seen {
    events: u64,
    /// The close code, for a close frame; `None` for a bare EOF.
    close: Option<u16>,
}

/// Reads until a close frame, EOF or (with `pong`) that pong, counting events.
async fn read_until(ws: &mut stream_client::Ws, pong: Option<&[u8]>) -> Seen {
    let mut seen = Seen {
        events: 0,
        close: None,
    };
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a frame within 30 s");
        match message {
            None | Some(Err(_)) => return seen,
            Some(Ok(Message::Close(frame))) => {
                seen.close = frame.map(|f| u16::from(f.code));
                return seen;
            }
            Some(Ok(Message::Pong(payload))) if Some(payload.as_ref()) == pong => return seen,
            Some(Ok(Message::Text(text))) if !text.contains("\"progress\"") => seen.events += 1,
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_close_and_a_ping_are_answered_while_the_server_catches_the_client_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let appended = write_apps_padded(&server, "big", EVENTS, 8, PADDING).await;
    assert!(appended >= EVENTS);

    // A follower pausing: it reads a little, then closes to resume later.
    let mut ws = subscribe(&server, "from=1").await;
    let before = read_until_n(&mut ws, 50).await;
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "resuming later".into(),
    })))
    .await
    .unwrap();
    let after = read_until(&mut ws, None).await;
    assert_eq!(
        after.close,
        Some(1000),
        "a close frame answers the close, not EOF"
    );
    assert!(
        before + after.events < appended,
        "the server sent the whole backlog ({} events) before answering",
        before + after.events
    );

    // A follower at the live edge, where the server has nothing to write.
    let mut ws = subscribe(&server, "from=1").await;
    stream_client::read_until_caught_up(&mut ws).await;
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let idle = read_until(&mut ws, None).await;
    assert_eq!(idle.close, Some(1001), "the idle server answers the close");
    assert_eq!(idle.events, 0);

    // A ping sent at the start of a catch-up is answered before its end.
    let mut ws = subscribe(&server, "from=1").await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let until_pong = read_until(&mut ws, Some(b"are you there")).await;
    assert!(until_pong.close.is_none(), "closed instead of answering");
    assert!(
        until_pong.events < appended,
        "the pong came after the whole backlog"
    );
}

/// Reads `n` events (skipping other messages) and returns `n`.
async fn read_until_n(ws: &mut stream_client::Ws, n: u64) -> u64 {
    let mut events = 0;
    while events < n {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if !text.contains("\"progress\"") => events += 1,
            Some(Ok(_)) => {}
            other => panic!("the stream ended early: {other:?}"),
        }
    }
    n
}

#[tokio::test]
async fn a_client_that_closes_while_the_server_is_blocked_writing_to_it_is_let_go() {
    let dir = tempfile::tempdir().unwrap();
    // One stream place, and a stalled write alone would hold it two minutes.
    let server = Server::start(
        dir.path(),
        &["--max-streams", "1", "--stream-idle-timeout", "120s"],
    );
    write_apps_padded(&server, "big", EVENTS, 8, PADDING).await;
    let mut stalled = stream_client::subscribe_small_window(&server, "from=1").await;
    read_until_n(&mut stalled, 10).await;
    // Closes, then reads nothing more: the server's write stays blocked.
    stalled
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "pausing".into(),
        })))
        .await
        .unwrap();
    support::wait_until(
        "the closed subscriber's place",
        Duration::from_secs(20),
        || async {
            tokio_tungstenite::connect_async(stream_client::ws_url(&server, "from=now"))
                .await
                .is_ok()
        },
    )
    .await;
    drop(stalled);
}
