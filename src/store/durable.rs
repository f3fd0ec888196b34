//! The fdatasync sled 0.34.7 does not do.
//!
//! sled's `flush()` ends in `sync_file_range` (spacejam/sled#1452), which
//! neither flushes the device cache nor orders metadata. fdatasync applies to
//! the file, not the descriptor, so syncing our own descriptor of sled's `db`
//! file makes everything sled wrote to it durable.

use super::StoreError;
use std::fs::File;
use std::path::Path;

pub struct Durability {
    db_file: File,
}

impl Durability {
    pub(super) fn open(dir: &Path) -> Result<Durability, StoreError> {
        let io = |what, path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, what, source }
        };
        let db_path = dir.join("db");
        let db_file = File::open(&db_path).map_err(io("cannot open sled's db file", &db_path))?;
        // sled created these entries; make them survive a power cut too.
        for entry in [dir.join("conf"), dir.join("blobs"), dir.to_owned()] {
            if let Ok(file) = File::open(&entry) {
                file.sync_all()
                    .map_err(io("cannot fsync a store entry", &entry))?;
            }
        }
        Ok(Durability { db_file })
    }

    pub(super) fn sync_data(&self) -> Result<(), StoreError> {
        self.db_file.sync_data().map_err(|source| StoreError::Io {
            path: "db".into(),
            what: "fdatasync of sled's db file failed",
            source,
        })
    }
}
