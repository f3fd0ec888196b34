//! The fsyncs sled 0.34.7 does not do, and the watermark beside them.
//!
//! sled's `flush()` ends in `sync_file_range` (spacejam/sled#1452), which
//! neither flushes the device cache nor orders metadata. fdatasync applies to
//! the file, not the descriptor, so syncing our own descriptor of sled's `db`
//! file makes everything sled wrote to it durable. Meanwhile a thread of its
//! own writes and fdatasyncs the watermark (`watermark.rs`), so a group
//! commit still costs one fsync's latency.
//!
//! Every descriptor a commit uses is opened here, at start: a commit must
//! not fail, nor stop the process, when descriptors run out (EMFILE).
//! Since store format 3 sled writes no blob files (`parts.rs`); the blobs of
//! older stores, synced by the build that wrote them, are synced again here.

use super::StoreError;
use super::watermark::{Mark, Watermark};
use crate::event::Seq;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};

pub struct Durability {
    db_file: File,
    db_path: PathBuf,
    marks: Mutex<Marks>,
}

/// The watermark thread's two channels, and what it has written.
struct Marks {
    requests: mpsc::Sender<Mark>,
    written: mpsc::Receiver<Result<(), StoreError>>,
    /// The mark in the file.
    current: Mark,
    /// The head the last completed sync made durable.
    synced: Seq,
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { path, what, source }
}

impl Durability {
    /// `current` is the mark `watermark` holds.
    pub(super) fn open(
        dir: &Path,
        mut watermark: Watermark,
        current: Mark,
    ) -> Result<Durability, StoreError> {
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
        sync_blobs(&dir.join("blobs"))?;
        let (requests, marks) = mpsc::channel::<Mark>();
        let (done, written) = mpsc::channel();
        std::thread::Builder::new()
            .name("stride-watermark".into())
            .spawn(move || {
                for mark in marks {
                    if done.send(watermark.write(mark)).is_err() {
                        return;
                    }
                }
            })
            .map_err(io_error("cannot start the watermark thread", dir))?;
        Ok(Durability {
            db_file,
            db_path,
            marks: Mutex::new(Marks {
                requests,
                written,
                current,
                synced: current.durable,
            }),
        })
    }

    /// Makes everything `flush` writes durable, up to `head`: the db file's
    /// fdatasync and the watermark's run at the same time.
    pub(super) fn sync(
        &self,
        head: Seq,
        flush: impl FnOnce() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        let mark = Mark {
            durable: marks.synced,
            syncing: head,
        };
        let marking = mark != marks.current;
        if marking {
            marks.send(mark)?;
        }
        let synced = flush().and_then(|()| {
            self.db_file.sync_data().map_err(io_error(
                "fdatasync of sled's db file failed",
                &self.db_path,
            ))
        });
        if marking {
            marks.receive(mark)?;
        }
        synced?;
        marks.synced = head;
        Ok(())
    }

    /// Records that everything synced so far was acknowledged, if the
    /// watermark does not say so yet: what an idle committer does.
    pub(super) fn seal(&self) -> Result<(), StoreError> {
        let mut marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        let mark = Mark::at(marks.synced);
        if mark != marks.current {
            marks.send(mark)?;
            marks.receive(mark)?;
        }
        Ok(())
    }
}

impl Marks {
    fn send(&self, mark: Mark) -> Result<(), StoreError> {
        self.requests.send(mark).map_err(|_| stopped())
    }

    fn receive(&mut self, mark: Mark) -> Result<(), StoreError> {
        self.written.recv().map_err(|_| stopped())??;
        self.current = mark;
        Ok(())
    }
}

fn stopped() -> StoreError {
    StoreError::Io {
        path: PathBuf::from(super::watermark::FILE),
        what: "the watermark thread has stopped",
        source: std::io::Error::other("thread gone"),
    }
}

/// Syncs every blob file sled wrote for a store older than format 3.
fn sync_blobs(blobs: &Path) -> Result<(), StoreError> {
    let listing = match std::fs::read_dir(blobs) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error("cannot list sled's blobs", blobs)(e)),
    };
    let mut any = false;
    for entry in listing {
        let path = entry
            .map_err(io_error("cannot list sled's blobs", blobs))?
            .path();
        File::open(&path)
            .and_then(|file| file.sync_data())
            .map_err(io_error("fdatasync of a sled blob failed", &path))?;
        any = true;
    }
    if any {
        File::open(blobs)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("cannot fsync sled's blobs directory", blobs))?;
    }
    Ok(())
}
