//! Backups: a consistent copy of the log up to an acknowledged head, its
//! idempotency records and the callback cursors, in a file of its own
//! format (restoring one: `restore.rs`). Records are copied as stored
//! (checksums and all), so the restored log replays to the same state and
//! answers audits alike. Snapshot files are a cache and are not backed
//! up: a restored store replays its log once, then snapshots anew.
//!
//! Events up to an acknowledged head never change, so a running server can
//! write a backup while it appends (`GET /v1/backup`); a running server
//! names its address in `serving` in the data directory for
//! `stride store backup` to find.
//!
//! File: `"STRIDEBK"`, version u16 BE, then frames of
//! `[tag u8][length u32 BE][payload][CRC-32 u32 BE of tag, length and payload]`:
//!
//! | tag | payload |
//! |---|---|
//! | `H` | store format u32, head u64, taken at (µs) u64 |
//! | `E` | seq u64, the record as stored (parts joined) |
//! | `I` | key length u16, Idempotency-Key, the command record as stored |
//! | `C` | URL length u32, callback URL, cursor seq u64 |
//! | `T` | events u64, idempotency records u64, cursors u64, head u64 |
//!
//! The trailer `T` comes last: a backup without it is incomplete.

use super::{CommandRecord, EventLog, StoreError};
use crate::codec::{self, CodecError};
use crate::event::Seq;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"STRIDEBK";
const VERSION: u16 = 1;
/// A frame longer than this is damage, not data (records are bounded by
/// the API's body limit).
const MAX_FRAME: usize = 256 << 20;
/// Where a running server writes its URL, in the data directory.
pub const SERVING_FILE: &str = "serving";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a Stride backup (it does not start with {MAGIC:?})")]
    NotABackup,
    #[error("backup format {0} is newer than this build's {VERSION}")]
    NewerVersion(u16),
    #[error("the backup is damaged at byte {offset}: {what}")]
    Damaged { offset: u64, what: String },
    #[error("record {seq} cannot be backed up faithfully: {error}")]
    Record { seq: Seq, error: String },
    #[error("the log has no seq {0}: a backup up to it cannot be taken")]
    Short(Seq),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub head: Seq,
    pub events: u64,
    pub idempotency: u64,
    pub cursors: u64,
}

struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    fn frame(&mut self, tag: u8, parts: &[&[u8]]) -> Result<(), BackupError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut hasher = crc32fast::Hasher::new();
        let head = {
            let mut head = [tag, 0, 0, 0, 0];
            head[1..].copy_from_slice(&(len as u32).to_be_bytes());
            head
        };
        hasher.update(&head);
        self.out
            .write_all(&head)
            .map_err(io("cannot write the backup"))?;
        for part in parts {
            hasher.update(part);
            self.out
                .write_all(part)
                .map_err(io("cannot write the backup"))?;
        }
        self.out
            .write_all(&hasher.finalize().to_be_bytes())
            .map_err(io("cannot write the backup"))
    }
}

impl EventLog {
    /// Writes a backup of seqs 1..=`head`, the idempotency records of
    /// commands within them, and the callback cursors. Every record must be
    /// present and intact. `salvage` stops at the first unreadable
    /// idempotency record or cursor instead of failing (`store repair`).
    /// `taken_at` (µs since the epoch) is the caller's clock.
    pub fn backup(
        &self,
        head: Seq,
        taken_at: u64,
        salvage: bool,
        out: impl Write,
    ) -> Result<Summary, BackupError> {
        let mut writer = Writer { out };
        writer
            .out
            .write_all(MAGIC)
            .and_then(|()| writer.out.write_all(&VERSION.to_be_bytes()))
            .map_err(io("cannot write the backup"))?;
        writer.frame(
            b'H',
            &[
                &super::STORE_FORMAT.to_be_bytes(),
                &head.0.to_be_bytes(),
                &taken_at.to_be_bytes(),
            ],
        )?;
        let mut summary = Summary {
            head,
            ..Summary::default()
        };
        let mut expected = Seq(1);
        for item in self.raw_from(Seq(1)) {
            if expected > head {
                break;
            }
            let (seq, record) = item.map_err(|e| BackupError::Record {
                seq: expected,
                error: e.to_string(),
            })?;
            if seq != expected {
                return Err(BackupError::Short(expected));
            }
            codec::check(seq, &record).map_err(|e: CodecError| BackupError::Record {
                seq,
                error: e.to_string(),
            })?;
            writer.frame(b'E', &[&seq.0.to_be_bytes(), &record])?;
            summary.events += 1;
            expected = seq.next();
        }
        if expected <= head {
            return Err(BackupError::Short(expected));
        }
        for item in self.idempotency.iter() {
            let (key, value) = match item {
                Ok(entry) => entry,
                Err(_) if salvage => break,
                Err(e) => return Err(StoreError::from(e).into()),
            };
            let record = match CommandRecord::decode(&value) {
                Ok(record) => record,
                Err(_) if salvage => continue,
                Err(e) => return Err(e.into()),
            };
            if record.last <= head {
                writer.frame(b'I', &[&(key.len() as u16).to_be_bytes(), &key, &value])?;
                summary.idempotency += 1;
            }
        }
        for item in self.cursors.iter() {
            let (url, seq) = match item {
                Ok(entry) => entry,
                Err(_) if salvage => break,
                Err(e) => return Err(StoreError::from(e).into()),
            };
            writer.frame(b'C', &[&(url.len() as u32).to_be_bytes(), &url, &seq])?;
            summary.cursors += 1;
        }
        writer.frame(
            b'T',
            &[
                &summary.events.to_be_bytes(),
                &summary.idempotency.to_be_bytes(),
                &summary.cursors.to_be_bytes(),
                &head.0.to_be_bytes(),
            ],
        )?;
        writer.out.flush().map_err(io("cannot write the backup"))?;
        Ok(summary)
    }
}

/// One frame of a backup, as read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame {
    Header { head: Seq },
    Event { seq: Seq, record: Vec<u8> },
    Idempotency { key: Vec<u8>, value: Vec<u8> },
    Cursor { url: Vec<u8>, seq: Vec<u8> },
    Trailer(Summary),
}

/// Reads a backup's frames, checking each.
pub(super) struct Reader<R: Read> {
    input: R,
    pub offset: u64,
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(buf)
}

impl<R: Read> Reader<R> {
    pub fn open(mut input: R) -> Result<Reader<R>, BackupError> {
        let mut start = [0u8; 10];
        input
            .read_exact(&mut start)
            .map_err(|_| BackupError::NotABackup)?;
        if &start[..8] != MAGIC {
            return Err(BackupError::NotABackup);
        }
        let version = u16::from_be_bytes([start[8], start[9]]);
        if version > VERSION {
            return Err(BackupError::NewerVersion(version));
        }
        Ok(Reader { input, offset: 10 })
    }

    pub fn damaged(&self, what: impl Into<String>) -> BackupError {
        BackupError::Damaged {
            offset: self.offset,
            what: what.into(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), BackupError> {
        self.input.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.damaged("it ends early (an incomplete backup)")
            } else {
                BackupError::Io {
                    what: "cannot read the backup".into(),
                    source: e,
                }
            }
        })
    }

    pub fn next(&mut self) -> Result<Frame, BackupError> {
        let mut head = [0u8; 5];
        self.read(&mut head)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_FRAME {
            return Err(self.damaged(format!("a frame claims {len} bytes")));
        }
        let mut payload = Vec::new();
        (&mut self.input)
            .take(len as u64)
            .read_to_end(&mut payload)
            .map_err(io("cannot read the backup"))?;
        if payload.len() < len {
            return Err(self.damaged("it ends early (an incomplete backup)"));
        }
        let mut sum = [0u8; 4];
        self.read(&mut sum)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head);
        hasher.update(&payload);
        if hasher.finalize().to_be_bytes() != sum {
            return Err(self.damaged("a frame fails its checksum"));
        }
        let frame = parse_frame(head[0], payload).ok_or_else(|| {
            self.damaged(format!("a malformed frame (tag {:?})", head[0] as char))
        })?;
        self.offset += 9 + len as u64;
        Ok(frame)
    }
}

fn parse_frame(tag: u8, payload: Vec<u8>) -> Option<Frame> {
    Some(match tag {
        b'H' if payload.len() == 20 => Frame::Header {
            head: Seq(u64_at(&payload, 4)),
        },
        b'E' if payload.len() > 8 => Frame::Event {
            seq: Seq(u64_at(&payload, 0)),
            record: payload[8..].to_vec(),
        },
        b'I' if payload.len() >= 2 => {
            let len = u16::from_be_bytes([payload[0], payload[1]]) as usize;
            let rest = payload.get(2..)?;
            Frame::Idempotency {
                key: rest.get(..len)?.to_vec(),
                value: rest.get(len..)?.to_vec(),
            }
        }
        b'C' if payload.len() >= 4 => {
            let len = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
            let rest = payload.get(4..)?;
            let seq = rest.get(len..)?;
            if seq.len() != 8 {
                return None;
            }
            Frame::Cursor {
                url: rest.get(..len)?.to_vec(),
                seq: seq.to_vec(),
            }
        }
        b'T' if payload.len() == 32 => Frame::Trailer(Summary {
            events: u64_at(&payload, 0),
            idempotency: u64_at(&payload, 8),
            cursors: u64_at(&payload, 16),
            head: Seq(u64_at(&payload, 24)),
        }),
        _ => return None,
    })
}

/// Reads a whole backup, checking every frame, without restoring it.
pub fn inspect(input: impl Read) -> Result<Summary, BackupError> {
    let mut reader = Reader::open(input)?;
    let Frame::Header { head } = reader.next()? else {
        return Err(reader.damaged("it does not start with its header"));
    };
    let mut seen = Summary {
        head,
        ..Summary::default()
    };
    loop {
        match reader.next()? {
            Frame::Event { seq, record } => {
                seen.events += 1;
                if seq != Seq(seen.events) {
                    return Err(reader.damaged(format!("seq {seq} out of order")));
                }
                codec::check(seq, &record).map_err(|e| BackupError::Record {
                    seq,
                    error: e.to_string(),
                })?;
            }
            Frame::Idempotency { .. } => seen.idempotency += 1,
            Frame::Cursor { .. } => seen.cursors += 1,
            Frame::Trailer(trailer) if trailer == seen && seen.head == Seq(seen.events) => {
                return Ok(seen);
            }
            Frame::Trailer(trailer) => {
                return Err(reader.damaged(format!(
                    "its trailer says {trailer:?}, but it holds {seen:?}"
                )));
            }
            Frame::Header { .. } => return Err(reader.damaged("a second header")),
        }
    }
}

/// The URL a server running on the store in `data_dir` advertised.
pub fn serving_url(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(SERVING_FILE)).ok()?;
    Some(text.trim().to_owned()).filter(|url| !url.is_empty())
}

/// Advertises `url` as the server of the store in `data_dir` (written
/// aside, then renamed, so a reader never sees half of it).
pub fn advertise(data_dir: &Path, url: &str) -> std::io::Result<PathBuf> {
    let path = data_dir.join(SERVING_FILE);
    let partial = data_dir.join(format!("{SERVING_FILE}.partial"));
    std::fs::write(&partial, format!("{url}\n"))?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The backup reader on any bytes: an error or frames, no panic.
        #[test]
        fn any_bytes_read_without_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&VERSION.to_be_bytes());
            bytes.extend_from_slice(&body);
            let _ = inspect(&bytes[..]);
        }

        #[test]
        fn any_frame_payload_parses_without_panic(tag in any::<u8>(), payload in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_frame(tag, payload);
        }
    }
}
