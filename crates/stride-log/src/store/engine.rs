//! Opening sled, whose two small files beside its log are caches Stride can
//! do without: `conf` only repeats the settings Stride always opens sled
//! with, and `snap.*` is sled's page-table snapshot, which sled rebuilds by
//! reading its log. A damaged one is rewritten or set aside, and said so;
//! whether the log itself lost anything is for the watermark to tell.

use super::StoreError;
use std::path::Path;

/// What sled 0.34.7 writes to `conf` for `sled::Config::new()`: its
/// settings as text, then their CRC-32, little-endian.
fn expected_conf() -> Vec<u8> {
    let mut conf = b"segment_size: 524288\nuse_compression: false\nversion: 0.34\n".to_vec();
    let sum = crc32fast::hash(&conf);
    conf.extend_from_slice(&sum.to_le_bytes());
    conf
}

/// Whether `conf` bytes are intact: they end in the CRC of the rest. An
/// intact conf of other settings (a newer sled) is left to sled to judge.
fn intact(conf: &[u8]) -> bool {
    let Some(split) = conf.len().checked_sub(4) else {
        return false;
    };
    split > 0 && crc32fast::hash(&conf[..split]).to_le_bytes() == conf[split..]
}

/// Rewrites a damaged `conf` of a store that has a log.
fn check_conf(dir: &Path, repairs: &mut Vec<String>) -> Result<(), StoreError> {
    let path = dir.join("conf");
    let conf = match std::fs::read(&path) {
        Ok(conf) => conf,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.join("db").exists() {
                repairs.push("sled's conf was missing; sled wrote it anew".into());
            }
            return Ok(());
        }
        Err(source) => {
            return Err(StoreError::Io {
                path,
                what: "cannot read sled's conf",
                source,
            });
        }
    };
    if intact(&conf) {
        return Ok(());
    }
    std::fs::write(&path, expected_conf())
        .and_then(|()| std::fs::File::open(&path)?.sync_all())
        .map_err(|source| StoreError::Io {
            path: path.clone(),
            what: "cannot rewrite sled's conf",
            source,
        })?;
    repairs.push(
        "sled's conf was damaged and was rewritten (it only repeats sled's fixed settings)".into(),
    );
    Ok(())
}

/// sled's snapshot files, `snap.<lsn>` (and `.generating`).
fn snapshot_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    listing
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("snap."))
        .map(|e| e.path())
        .collect()
}

/// Why sled would not open a store.
enum Refused {
    Error(sled::Error),
    /// sled 0.34.7 panics on some damage (a db file cut short under its
    /// page-table snapshot indexes past its segments).
    Panicked(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Error(error) => write!(f, "{error}"),
            Refused::Panicked(message) => write!(f, "sled panicked: {message}"),
        }
    }
}

fn try_open(dir: &Path) -> Result<sled::Db, Refused> {
    // The default hook would print the panic as if Stride had crashed.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(|| {
        let mut attempts = 0;
        loop {
            match sled::Config::new().path(dir).open() {
                // A handle this process just dropped may hold the lock a
                // moment longer.
                Err(sled::Error::Io(e)) if e.to_string().contains("lock") && attempts < 250 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                opened => break opened,
            }
        }
    });
    std::panic::set_hook(hook);
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(error)) => Err(Refused::Error(error)),
        Err(panic) => Err(Refused::Panicked(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default(),
        )),
    }
}

fn refused(dir: &Path, why: Refused) -> StoreError {
    match why {
        Refused::Error(error) => error.into(),
        Refused::Panicked(message) => StoreError::Unopenable {
            path: dir.to_owned(),
            why: message,
            lost: match super::watermark::read(dir) {
                Ok(super::watermark::Found::Read { mark, .. }) if mark.durable.0 > 0 => {
                    format!(
                        "seqs 1..={} (acknowledged, by the watermark) cannot be read",
                        mark.durable
                    )
                }
                _ => "none of the log can be read".to_owned(),
            },
        },
    }
}

/// Reads what opening a store needs (the log's head, the format marker):
/// with a page-table snapshot that points past a log cut short, sled opens
/// the store and fails only on reading it.
fn probed(db: sled::Db) -> Result<sled::Db, Refused> {
    let probe = || -> sled::Result<()> {
        db.open_tree("events")?.last()?;
        db.open_tree("meta")?.get("format")?;
        Ok(())
    };
    match probe() {
        Ok(()) => Ok(db),
        Err(error) => Err(Refused::Error(error)),
    }
}

/// Opens sled on `dir`. When sled cannot open the store with its page-table
/// snapshot (finding it inconsistent with its log, or panicking over it),
/// the snapshot is set aside (renamed `damaged-snap.*`, which sled ignores)
/// and sled recovers from its log alone.
pub(super) fn open(dir: &Path, repairs: &mut Vec<String>) -> Result<sled::Db, StoreError> {
    check_conf(dir, repairs)?;
    let why = match try_open(dir).and_then(probed) {
        Ok(db) => return Ok(db),
        Err(Refused::Error(error)) if !matches!(error, sled::Error::Corruption { .. }) => {
            return Err(error.into());
        }
        Err(why) => why,
    };
    let snapshots = snapshot_files(dir);
    if snapshots.is_empty() {
        return Err(refused(dir, why));
    }
    for path in snapshots {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let aside = dir.join(format!("damaged-{name}"));
        std::fs::rename(&path, &aside).map_err(|source| StoreError::Io {
            path: path.clone(),
            what: "cannot set sled's snapshot aside",
            source,
        })?;
        repairs.push(format!(
            "sled could not open the store with its page-table snapshot {name} ({why}); \
             it was set aside as damaged-{name} and sled recovered from its log alone"
        ));
    }
    try_open(dir).map_err(|why| refused(dir, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_conf_is_what_sled_writes() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/store-v1/conf");
        let written = std::fs::read(fixture).unwrap();
        assert_eq!(written, expected_conf());
        assert!(intact(&written));
        let mut flipped = written.clone();
        flipped[3] ^= 4;
        assert!(!intact(&flipped));
        assert!(!intact(&written[..3]));
    }
}
