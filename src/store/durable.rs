//! The fsyncs sled 0.34.7 does not do.
//!
//! sled's `flush()` ends in `sync_file_range` (spacejam/sled#1452), which
//! neither flushes the device cache nor orders metadata. fdatasync applies to
//! the file, not the descriptor, so syncing our own descriptor of sled's `db`
//! file makes everything sled wrote to it durable. sled also writes any page
//! too big for its log (over a quarter segment, e.g. a leaf of very large
//! app definitions) to its own file under `blobs/`, without syncing it: new
//! blob files, and the directory naming them, are synced first, since the
//! log entry pointing at a blob must never outlive the blob.

use super::StoreError;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct Durability {
    db_file: File,
    db_path: PathBuf,
    blobs: PathBuf,
    /// Blob files already synced; sled never rewrites one in place.
    synced_blobs: Mutex<HashSet<OsString>>,
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { path, what, source }
}

impl Durability {
    pub(super) fn open(dir: &Path) -> Result<Durability, StoreError> {
        let db_path = dir.join("db");
        let db_file =
            File::open(&db_path).map_err(io_error("cannot open sled's db file", &db_path))?;
        // sled created these entries; make them survive a power cut too.
        for entry in [dir.join("conf"), dir.to_owned()] {
            if let Ok(file) = File::open(&entry) {
                file.sync_all()
                    .map_err(io_error("cannot fsync a store entry", &entry))?;
            }
        }
        let durability = Durability {
            db_file,
            db_path,
            blobs: dir.join("blobs"),
            synced_blobs: Mutex::default(),
        };
        durability.sync_new_blobs()?;
        Ok(durability)
    }

    /// Call after sled's flush: everything sled wrote is then durable.
    pub(super) fn sync_data(&self) -> Result<(), StoreError> {
        self.sync_new_blobs()?;
        self.db_file.sync_data().map_err(io_error(
            "fdatasync of sled's db file failed",
            &self.db_path,
        ))
    }

    fn sync_new_blobs(&self) -> Result<(), StoreError> {
        let listing = match std::fs::read_dir(&self.blobs) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error("cannot list sled's blobs", &self.blobs)(e)),
        };
        let mut synced = self.synced_blobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut present = HashSet::new();
        let mut new = false;
        for entry in listing {
            let entry = entry.map_err(io_error("cannot list sled's blobs", &self.blobs))?;
            let name = entry.file_name();
            if !synced.contains(&name) {
                let path = entry.path();
                match File::open(&path) {
                    Ok(file) => file
                        .sync_data()
                        .map_err(io_error("fdatasync of a sled blob failed", &path))?,
                    // sled deleted an obsolete blob meanwhile.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_error("cannot open a sled blob", &path)(e)),
                }
                new = true;
            }
            present.insert(name);
        }
        if new {
            File::open(&self.blobs)
                .and_then(|dir| dir.sync_all())
                .map_err(io_error("cannot fsync sled's blobs directory", &self.blobs))?;
        }
        *synced = present;
        Ok(())
    }
}
