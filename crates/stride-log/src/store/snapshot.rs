//! Snapshot storage: opaque bytes under a seq, each in a file of its own,
//! `snapshots/snap-<seq>.bin` beside sled's files, never in sled: the
//! committer's fdatasync of sled's db must not carry megabytes of state
//! (store format 4; older stores kept them in a `snapshots` tree, moved
//! out by `migrations/m0001_snapshot_files.rs`).
//!
//! A file is `"STRIDESN"`, then file format u32, seq u64, length u64 (all
//! BE), the CRC-32 of those 20 bytes and the snapshot bytes, then the
//! bytes. It is written whole to a `.partial` file, fdatasync'd, renamed
//! into place and the directory fsync'd, on the caller's thread (the
//! snapshotter's). A snapshot is a cache: one that fails its header or
//! checksum is dropped and the log replayed instead.

use super::{EventLog, StoreError};
use crate::event::Seq;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Older snapshots are dropped beyond this many.
const KEEP: usize = 2;
const MAGIC: &[u8; 8] = b"STRIDESN";
const FILE_FORMAT: u32 = 1;
const HEADER: usize = 8 + 4 + 8 + 8 + 4;
/// The directory, in the data directory.
pub const DIR: &str = "snapshots";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot at seq {seq} fails its checksum")]
    Checksum { seq: Seq },
    #[error("snapshot file {path}: {what}")]
    BadFile { path: PathBuf, what: String },
}

fn file_name(seq: Seq) -> String {
    format!("snap-{:020}.bin", seq.0)
}

/// The seq a finished snapshot file's name holds.
fn seq_of_name(name: &str) -> Option<Seq> {
    let digits = name.strip_prefix("snap-")?.strip_suffix(".bin")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok().map(Seq))
        .flatten()
}

fn io(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { path, what, source }
}

/// The checksum of a file's header fields and bytes.
fn checksum(fields: &[u8], bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(fields);
    hasher.update(bytes);
    hasher.finalize()
}

/// Writes the snapshot taken at `seq` into `dir` durably: a partial file,
/// fdatasync'd, renamed into place, the directory fsync'd.
pub(crate) fn write(dir: &Path, seq: Seq, bytes: &[u8]) -> Result<PathBuf, StoreError> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(io(dir, "cannot create the snapshot directory"))?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
    }
    let path = dir.join(file_name(seq));
    let partial = dir.join(format!("{}.partial", file_name(seq)));
    let mut fields = Vec::with_capacity(HEADER);
    fields.extend_from_slice(&FILE_FORMAT.to_be_bytes());
    fields.extend_from_slice(&seq.0.to_be_bytes());
    fields.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    let sum = checksum(&fields, bytes);
    File::create(&partial)
        .and_then(|mut file| {
            file.write_all(MAGIC)?;
            file.write_all(&fields)?;
            file.write_all(&sum.to_be_bytes())?;
            file.write_all(bytes)?;
            file.sync_data()
        })
        .map_err(io(&partial, "cannot write a snapshot"))?;
    std::fs::rename(&partial, &path).map_err(io(&path, "cannot put a snapshot in place"))?;
    sync_dir(dir)?;
    Ok(path)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir, "cannot fsync the snapshot directory"))
}

/// The bytes of the snapshot file at `path`, taken at `seq`, checked.
fn read(path: &Path, seq: Seq) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match std::fs::read(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path, "cannot read a snapshot")(e)),
    };
    let bad = |what: String| {
        StoreError::Snapshot(SnapshotError::BadFile {
            path: path.to_owned(),
            what,
        })
    };
    if file.len() < HEADER || &file[..8] != MAGIC {
        return Err(bad("not a snapshot file (no header)".into()));
    }
    let u64_at = |at: usize| u64::from_be_bytes(file[at..at + 8].try_into().unwrap_or_default());
    let format = super::keys::u32_of(&file[8..12]);
    if format != FILE_FORMAT {
        return Err(bad(format!("file format {format}, not {FILE_FORMAT}")));
    }
    let (stored_seq, len) = (u64_at(12), u64_at(20));
    let bytes = &file[HEADER..];
    if bytes.len() as u64 != len {
        return Err(bad(format!(
            "holds {} bytes, its header {len}",
            bytes.len()
        )));
    }
    if checksum(&file[8..28], bytes).to_be_bytes() != file[28..32] {
        return Err(StoreError::Snapshot(SnapshotError::Checksum { seq }));
    }
    if stored_seq != seq.0 {
        return Err(bad(format!("its header says seq {stored_seq}")));
    }
    Ok(Some(bytes.to_vec()))
}

impl EventLog {
    fn snapshot_dir(&self) -> PathBuf {
        self.path.join(DIR)
    }

    /// Stores a snapshot taken at `seq` durably, on this thread, outside
    /// sled, and drops old ones (and any partial file a crash left).
    pub fn put_snapshot(&self, seq: Seq, bytes: &[u8]) -> Result<(), StoreError> {
        self.writable()?;
        let dir = self.snapshot_dir();
        write(&dir, seq, bytes)?;
        let mut older = self.snapshot_seqs()?;
        older.retain(|s| *s < seq);
        let drop_count = (older.len() + 1).saturating_sub(KEEP);
        for old in older.into_iter().take(drop_count) {
            self.drop_snapshot(old)?;
        }
        for entry in std::fs::read_dir(&dir)
            .map_err(io(&dir, "cannot list the snapshots"))?
            .flatten()
        {
            if entry.file_name().to_string_lossy().ends_with(".partial") {
                // Left by a crash mid-write: never read, so never needed.
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Seqs of the snapshot files, oldest first.
    pub fn snapshot_seqs(&self) -> Result<Vec<Seq>, StoreError> {
        let dir = self.snapshot_dir();
        let listing = match std::fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir, "cannot list the snapshots")(e)),
        };
        let mut seqs = Vec::new();
        for entry in listing {
            let entry = entry.map_err(io(&dir, "cannot list the snapshots"))?;
            seqs.extend(seq_of_name(&entry.file_name().to_string_lossy()));
        }
        seqs.sort();
        Ok(seqs)
    }

    /// The bytes of the snapshot taken at `seq`, if there is one.
    pub fn snapshot(&self, seq: Seq) -> Result<Option<Vec<u8>>, StoreError> {
        read(&self.snapshot_dir().join(file_name(seq)), seq)
    }

    /// Drops the snapshot taken at `seq` (an old one, or a cache found
    /// damaged). Not synced: one that comes back is still a valid cache,
    /// or is found damaged again.
    pub fn drop_snapshot(&self, seq: Seq) -> Result<(), StoreError> {
        self.writable()?;
        let path = self.snapshot_dir().join(file_name(seq));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io(&path, "cannot drop a snapshot")(e))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LogWriter;

    #[test]
    fn a_snapshot_goes_to_its_own_file_not_into_the_committers_db() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogWriter::open(dir.path()).unwrap();
        log.sync().unwrap();
        let db_len = || std::fs::metadata(dir.path().join("db")).unwrap().len();
        let before = db_len();
        // Incompressible, so no engine could hide it.
        let bytes: Vec<u8> = (0..4u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        log.put_snapshot(Seq(7), &bytes).unwrap();
        log.sync().unwrap();
        assert!(
            db_len() < before + (1 << 20),
            "sled's db grew from {before} to {} bytes",
            db_len()
        );
        let file = dir.path().join(DIR).join("snap-00000000000000000007.bin");
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            (HEADER + bytes.len()) as u64
        );
        assert_eq!(log.snapshot(Seq(7)).unwrap().unwrap(), bytes);
    }

    #[test]
    fn the_last_two_are_kept_and_a_partial_file_is_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogWriter::open(dir.path()).unwrap();
        let snapshots = dir.path().join(DIR);
        std::fs::create_dir_all(&snapshots).unwrap();
        std::fs::write(
            snapshots.join("snap-00000000000000000009.bin.partial"),
            b"torn",
        )
        .unwrap();
        for seq in [3, 5, 8] {
            log.put_snapshot(Seq(seq), &[seq as u8; 100]).unwrap();
        }
        assert_eq!(log.snapshot_seqs().unwrap(), vec![Seq(5), Seq(8)]);
        assert_eq!(std::fs::read_dir(&snapshots).unwrap().count(), 2);
        assert_eq!(log.snapshot(Seq(3)).unwrap(), None);
    }

    #[test]
    fn any_damage_to_a_snapshot_file_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogWriter::open(dir.path()).unwrap();
        log.put_snapshot(Seq(4), b"the state at four").unwrap();
        let path = dir.path().join(DIR).join(file_name(Seq(4)));
        let written = std::fs::read(&path).unwrap();
        for at in 0..written.len() {
            let mut damaged = written.clone();
            damaged[at] ^= 0x21;
            std::fs::write(&path, &damaged).unwrap();
            assert!(log.snapshot(Seq(4)).is_err(), "a flip at {at} went unseen");
        }
        for len in 0..written.len() {
            std::fs::write(&path, &written[..len]).unwrap();
            assert!(log.snapshot(Seq(4)).is_err(), "a cut at {len} went unseen");
        }
        std::fs::write(&path, &written).unwrap();
        assert_eq!(log.snapshot(Seq(4)).unwrap().unwrap(), b"the state at four");
        log.drop_snapshot(Seq(4)).unwrap();
        assert_eq!(log.snapshot_seqs().unwrap(), vec![]);
    }
}
