//! The watermark: Stride's own durable record of how far the log was
//! acknowledged, outside sled's files. sled's recovery stops at the first
//! bad message as if it were a torn tail, so only a record kept elsewhere
//! can tell a crash from damage.
//!
//! The file `watermark` holds two 512-byte slots, written alternately (a
//! torn write can only harm the slot being written, while the other holds
//! the previous mark). A slot is:
//!
//! ```text
//!   "STRIDEWM" | version u16 | generation u64 | durable u64 | syncing u64 | CRC-32 of the 34 bytes before
//! ```
//!
//! (big-endian), and the valid slot of the higher generation is the mark.
//! Every group commit writes `{durable: the head its predecessor synced,
//! syncing: its own head}` and fdatasyncs it in parallel with sled's sync,
//! so an ack still waits for one fsync. `durable` is therefore certain, and
//! `syncing` was acknowledged only if that commit finished; the committer
//! seals an idle log with `{head, head}` (see the `stride` crate's `committer.rs`). On
//! open, a log that ends before `durable` has lost acknowledged events.

use super::StoreError;
use crate::event::Seq;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const FILE: &str = "watermark";
const SLOT: usize = 512;
const MAGIC: &[u8; 8] = b"STRIDEWM";
const VERSION: u16 = 1;
const BODY: usize = 34;

/// Seqs up to `durable` were synced (and maybe acknowledged); those up to
/// `syncing` were being synced when this mark was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub durable: Seq,
    pub syncing: Seq,
}

impl Mark {
    pub fn at(head: Seq) -> Mark {
        Mark {
            durable: head,
            syncing: head,
        }
    }
}

/// What the watermark file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Missing,
    /// Neither slot holds a valid mark.
    Damaged,
    Read {
        mark: Mark,
        generation: u64,
        /// One slot failed its checksum; the other, older or newer, is used.
        one_slot_damaged: bool,
    },
}

fn encode(generation: u64, mark: Mark) -> [u8; SLOT] {
    let mut slot = [0u8; SLOT];
    slot[..8].copy_from_slice(MAGIC);
    slot[8..10].copy_from_slice(&VERSION.to_be_bytes());
    slot[10..18].copy_from_slice(&generation.to_be_bytes());
    slot[18..26].copy_from_slice(&mark.durable.0.to_be_bytes());
    slot[26..34].copy_from_slice(&mark.syncing.0.to_be_bytes());
    let sum = crc32fast::hash(&slot[..BODY]);
    slot[BODY..BODY + 4].copy_from_slice(&sum.to_be_bytes());
    slot
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(buf)
}

/// A slot's generation and mark, if it is intact.
fn decode(slot: &[u8]) -> Option<(u64, Mark)> {
    let body = slot.get(..BODY)?;
    let sum = slot.get(BODY..BODY + 4)?;
    if &body[..8] != MAGIC
        || body[8..10] != VERSION.to_be_bytes()
        || crc32fast::hash(body).to_be_bytes() != sum
    {
        return None;
    }
    let mark = Mark {
        durable: Seq(u64_at(body, 18)),
        syncing: Seq(u64_at(body, 26)),
    };
    (mark.durable <= mark.syncing).then_some((u64_at(body, 10), mark))
}

/// The mark in a watermark file's bytes.
pub fn parse(bytes: &[u8]) -> Found {
    let slots = [bytes.get(..SLOT), bytes.get(SLOT..2 * SLOT)];
    let intact: Vec<(u64, Mark)> = slots.iter().flatten().filter_map(|s| decode(s)).collect();
    match intact.iter().max_by_key(|(generation, _)| *generation) {
        Some(&(generation, mark)) => Found::Read {
            mark,
            generation,
            one_slot_damaged: intact.len() == 1,
        },
        None => Found::Damaged,
    }
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { path, what, source }
}

/// Reads the watermark of the store in `dir`.
pub fn read(dir: &Path) -> Result<Found, StoreError> {
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(parse(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Found::Missing),
        Err(e) => Err(io_error("cannot read the watermark", &path)(e)),
    }
}

/// The open watermark file, written in place.
pub struct Watermark {
    file: File,
    path: PathBuf,
    generation: u64,
}

impl Watermark {
    /// Writes a new watermark file holding `mark` in both slots, durably
    /// (written aside, synced, renamed, directory synced).
    pub fn create(dir: &Path, mark: Mark) -> Result<Watermark, StoreError> {
        let path = dir.join(FILE);
        let partial = dir.join(format!("{FILE}.partial"));
        let file =
            File::create(&partial).map_err(io_error("cannot create the watermark", &partial))?;
        // Generation g lives in slot g % 2, as `write` continues.
        let mut bytes = encode(2, mark).to_vec();
        bytes.extend_from_slice(&encode(1, mark));
        file.write_all_at(&bytes, 0)
            .and_then(|()| file.sync_all())
            .map_err(io_error("cannot write the watermark", &partial))?;
        std::fs::rename(&partial, &path).map_err(io_error("cannot create the watermark", &path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error("cannot fsync the data directory", dir))?;
        Watermark::open(dir, 2)
    }

    /// Opens the watermark for writing; `generation` is the newest slot's.
    pub fn open(dir: &Path, generation: u64) -> Result<Watermark, StoreError> {
        let path = dir.join(FILE);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_error("cannot open the watermark", &path))?;
        Ok(Watermark {
            file,
            path,
            generation,
        })
    }

    /// Writes `mark` over the older slot and fdatasyncs it.
    pub fn write(&mut self, mark: Mark) -> Result<(), StoreError> {
        let generation = self.generation + 1;
        let offset = (generation % 2) * SLOT as u64;
        self.file
            .write_all_at(&encode(generation, mark), offset)
            .and_then(|()| self.file.sync_data())
            .map_err(io_error("cannot write the watermark", &self.path))?;
        self.generation = generation;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mark(durable: u64, syncing: u64) -> Mark {
        Mark {
            durable: Seq(durable),
            syncing: Seq(syncing),
        }
    }

    #[test]
    fn the_newer_intact_slot_wins_and_a_torn_one_falls_back_to_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut watermark = Watermark::create(dir.path(), Mark::at(Seq(0))).unwrap();
        watermark.write(mark(0, 5)).unwrap();
        watermark.write(mark(5, 9)).unwrap();
        let bytes = std::fs::read(dir.path().join(FILE)).unwrap();
        assert_eq!(
            parse(&bytes),
            Found::Read {
                mark: mark(5, 9),
                generation: 4,
                one_slot_damaged: false
            }
        );
        // Generation 4 went to slot 0; tear it.
        let mut torn = bytes.clone();
        torn[20] ^= 1;
        assert!(matches!(
            parse(&torn),
            Found::Read { mark: m, one_slot_damaged: true, .. } if m == mark(0, 5)
        ));
        torn[SLOT + 20] ^= 1;
        assert_eq!(parse(&torn), Found::Damaged);
        assert_eq!(parse(&bytes[..SLOT + 10]), parse(&bytes[..SLOT]));
        assert_eq!(read(&dir.path().join("nowhere")).unwrap(), Found::Missing);
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..1100)) {
            let _ = parse(&bytes);
        }
    }
}
