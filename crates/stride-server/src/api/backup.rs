//! `GET /v1/backup`: a backup of the log up to the head acknowledged when
//! the request came (format and consistency: `store/backup.rs`), streamed
//! while Stride keeps serving. `stride store backup` asks for it when the
//! store is in use. An error midway cuts the body short, which the
//! backup's missing trailer then shows.

use super::Shared;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use std::io::{BufWriter, Write};
use stride_runtime::clock::now_micros;
use tokio::sync::mpsc;

type Chunk = Result<Bytes, std::io::Error>;

#[utoipa::path(
    get,
    path = "/v1/backup",
    tag = "stride",
    summary = "A consistent backup of the log, streamed (stride store backup)",
    responses(
        (status = 200, description = "The backup, up to the head named in Stride-Backup-Head",
         body = Vec<u8>, content_type = "application/octet-stream",
         headers(("Stride-Backup-Head" = u64, description = "The last seq in the backup"))),
    )
)]
pub async fn backup(State(shared): State<Shared>) -> Response {
    let head = shared.projection.head();
    let (tx, rx) = mpsc::channel::<Chunk>(16);
    let log = shared.log.clone();
    tokio::task::spawn_blocking(move || {
        let out = BufWriter::with_capacity(64 * 1024, Sender(tx.clone()));
        if let Err(error) = log.backup(head, now_micros(), false, out) {
            tracing::warn!(%error, "backup failed");
            let _ = tx.blocking_send(Err(std::io::Error::other(error.to_string())));
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (
        [
            (CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                "Stride-Backup-Head".parse().expect("a header name"),
                head.to_string(),
            ),
        ],
        body,
    )
        .into_response()
}

/// Hands what the backup writes to the response body.
struct Sender(mpsc::Sender<Chunk>);

impl Write for Sender {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(bytes)))
            .map_err(|_| std::io::Error::other("the client went away"))?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
