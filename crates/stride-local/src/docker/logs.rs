//! A container's output into the sandbox's `stdout` and `stderr` files, as
//! the Mesos docker executor leaves it there.

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

/// Appends every frame of `output` to its file until the stream ends (the
/// container stopped). With `after`, frames carry a leading RFC 3339
/// timestamp (`follow_logs`); those not newer than `after` were written
/// before and are skipped, the rest are written without the stamp.
pub(crate) async fn pump(
    output: impl Stream<Item = Result<LogOutput, BollardError>>,
    stdout: std::fs::File,
    stderr: std::fs::File,
    after: Option<DateTime<Utc>>,
) {
    let mut stdout = tokio::fs::File::from_std(stdout);
    let mut stderr = tokio::fs::File::from_std(stderr);
    let mut output = std::pin::pin!(output);
    while let Some(Ok(frame)) = output.next().await {
        let (file, message) = match frame {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (&mut stdout, message)
            }
            LogOutput::StdErr { message } => (&mut stderr, message),
            LogOutput::StdIn { .. } => continue,
        };
        let text = match after {
            None => &message[..],
            Some(after) => match unstamp(&message) {
                Some((at, rest)) if at > after => rest,
                _ => continue,
            },
        };
        if file.write_all(text).await.is_err() {
            return;
        }
    }
    let _ = stdout.flush().await;
    let _ = stderr.flush().await;
}

/// `2024-01-02T03:04:05.123456789Z hello\n` -> (the time, `hello\n`).
fn unstamp(frame: &[u8]) -> Option<(DateTime<Utc>, &[u8])> {
    let space = frame.iter().position(|&b| b == b' ')?;
    let stamp = std::str::from_utf8(&frame[..space]).ok()?;
    let at = DateTime::parse_from_rfc3339(stamp).ok()?;
    Some((at.with_timezone(&Utc), &frame[space + 1..]))
}

/// The last non-empty line of a sandbox file, shortened: what a failure
/// message quotes so the cause shows without opening the sandbox.
pub(crate) fn last_line(path: &std::path::Path) -> Option<String> {
    const TAIL: u64 = 4096;
    const LONGEST: usize = 200;
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let length = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(TAIL)))
        .ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    let mut line: String = line.chars().take(LONGEST).collect();
    if line.len() < text.trim_end().lines().last()?.trim().len() {
        line.push('…');
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_frames_split_into_time_and_text() {
        let (at, rest) = unstamp(b"2024-01-02T03:04:05.123456789Z hello world\n").unwrap();
        assert_eq!(at.timestamp_subsec_nanos(), 123_456_789);
        assert_eq!(rest, b"hello world\n");
        assert!(unstamp(b"not a stamp\n").is_none());
    }

    #[test]
    fn the_last_line_is_quoted_short() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stderr");
        std::fs::write(&path, "first\nsh: boom: not found\n\n").unwrap();
        assert_eq!(last_line(&path).as_deref(), Some("sh: boom: not found"));
        std::fs::write(&path, "x".repeat(300)).unwrap();
        assert_eq!(last_line(&path).unwrap().chars().count(), 201);
        assert_eq!(last_line(&dir.path().join("none")), None);
    }
}
