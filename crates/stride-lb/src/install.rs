//! Replacing `haproxy.cfg` safely: the new text goes to a temporary file in
//! the same directory, is checked with `haproxy -c`, made durable, and
//! renamed over the old one, so HAProxy never reads a half-written or
//! invalid file. A file HAProxy rejects is kept as `<config>.rejected`.

use super::config::Rendered;
use crate::event::AppId;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;

/// `haproxy -c` parses and resolves; it never takes this long on a sane file.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {binary} -c")]
    Check {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{binary} -c took longer than {CHECK_TIMEOUT:?}")]
    CheckTimeout { binary: PathBuf },
    #[error("HAProxy rejects the new configuration (kept as {kept}): {output}")]
    Rejected { kept: PathBuf, output: String },
}

pub struct ConfigFile {
    path: PathBuf,
    haproxy: PathBuf,
}

impl ConfigFile {
    pub fn new(path: &Path, haproxy: &Path) -> ConfigFile {
        ConfigFile {
            path: path.to_owned(),
            haproxy: haproxy.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The installed text; `None` when there is none yet (or unreadable,
    /// which a rewrite fixes).
    pub fn current(&self) -> Option<String> {
        std::fs::read_to_string(&self.path).ok()
    }

    pub fn rejected_path(&self) -> PathBuf {
        sibling(&self.path, ".rejected")
    }

    /// Checks `text` with `haproxy -c` and installs it. On rejection the
    /// text is kept aside and the installed file is untouched.
    pub async fn install_checked(&self, text: &str) -> Result<(), InstallError> {
        let temporary = self.write_temporary(text)?;
        let output = Command::new(&self.haproxy)
            .arg("-c")
            .arg("-f")
            .arg(&temporary)
            .kill_on_drop(true)
            .output();
        let output = match tokio::time::timeout(CHECK_TIMEOUT, output).await {
            Ok(Ok(output)) => output,
            Ok(Err(source)) => {
                let _ = std::fs::remove_file(&temporary);
                return Err(InstallError::Check {
                    binary: self.haproxy.clone(),
                    source,
                });
            }
            Err(_) => {
                let _ = std::fs::remove_file(&temporary);
                return Err(InstallError::CheckTimeout {
                    binary: self.haproxy.clone(),
                });
            }
        };
        if !output.status.success() {
            let kept = self.rejected_path();
            std::fs::rename(&temporary, &kept).map_err(|source| InstallError::Write {
                path: kept.clone(),
                source,
            })?;
            let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stdout));
            // The messages name the temporary file; the kept one is what
            // the reader has.
            let output = text.replace(&*temporary.to_string_lossy(), &kept.to_string_lossy());
            return Err(InstallError::Rejected { kept, output });
        }
        self.rename_into_place(&temporary)
    }

    /// Installs `text` unchecked: for server lines changed at runtime (the
    /// proxies are those of a checked file), and to put back a file HAProxy
    /// failed to load.
    pub fn install(&self, text: &str) -> Result<(), InstallError> {
        let temporary = self.write_temporary(text)?;
        self.rename_into_place(&temporary)
    }

    /// Keeps a text HAProxy failed to load for inspection.
    pub fn keep_rejected(&self, text: &str) -> Result<PathBuf, InstallError> {
        let kept = self.rejected_path();
        std::fs::write(&kept, text).map_err(|source| InstallError::Write {
            path: kept.clone(),
            source,
        })?;
        Ok(kept)
    }

    fn write_temporary(&self, text: &str) -> Result<PathBuf, InstallError> {
        let temporary = sibling(&self.path, ".tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()
        };
        write().map_err(|source| InstallError::Write {
            path: temporary.clone(),
            source,
        })?;
        Ok(temporary)
    }

    fn rename_into_place(&self, temporary: &Path) -> Result<(), InstallError> {
        let error = |source| InstallError::Write {
            path: self.path.clone(),
            source,
        };
        std::fs::rename(temporary, &self.path).map_err(error)?;
        // The rename itself is durable only once the directory is synced.
        let directory = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        std::fs::File::open(directory)
            .and_then(|d| d.sync_all())
            .map_err(error)
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The apps a rejection is about: those owning a line HAProxy names
/// (`[<file>:<line>]`) or a proxy it quotes (`'be_web_10000'`).
pub fn rejected_apps(output: &str, file: &Path, rendered: &Rendered) -> Vec<AppId> {
    let marker = format!("{}:", file.display());
    let mut apps = Vec::new();
    for line in output.lines() {
        let mut rest = line;
        while let Some(at) = rest.find(&marker) {
            rest = &rest[at + marker.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Some(app) = digits.parse().ok().and_then(|n| rendered.owner_of_line(n)) {
                apps.push(app.clone());
            }
        }
        for (i, quoted) in line.split('\'').enumerate() {
            if i % 2 == 1 {
                if let Some(app) = rendered.owner_of_name(quoted) {
                    apps.push(app.clone());
                }
            }
        }
    }
    apps.sort();
    apps.dedup();
    apps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backend, RenderOptions, render};
    use crate::model::{BackendSpec, Mode};

    #[test]
    fn errors_lead_to_the_apps_they_are_about() {
        let backends = [("/a", 10000), ("/b", 10001)]
            .into_iter()
            .map(|(app, port)| {
                let spec = BackendSpec {
                    app: AppId::from(app),
                    service_port: port,
                    mode: Mode::Tcp,
                    balance: Some("bogus".into()),
                    vhosts: vec![],
                };
                (
                    crate::model::backend_name(&spec),
                    Backend {
                        spec,
                        slots: vec![None],
                    },
                )
            })
            .collect();
        let options = RenderOptions {
            group: "g".into(),
            stats_socket: "/s.sock".into(),
            bind: [127, 0, 0, 1].into(),
            http_port: 80,
        };
        let rendered = render(&options, &backends);
        let line = rendered
            .text
            .lines()
            .position(|l| l.contains("fe_10001"))
            .unwrap()
            + 2;
        let file = Path::new("/etc/haproxy.cfg.rejected");
        let output = format!(
            "[ALERT]    (1) : config : parsing [/etc/haproxy.cfg.rejected:{line}] : unknown keyword\n\
             [ALERT]    (1) : config : Proxy 'be_a_10000': unable to find the backend.\n\
             [ALERT]    (1) : config : Fatal errors found in configuration."
        );
        let apps = rejected_apps(&output, file, &rendered);
        assert_eq!(apps, [AppId::from("/a"), AppId::from("/b")]);
        assert!(rejected_apps("[ALERT] global: bad", file, &rendered).is_empty());
    }
}
