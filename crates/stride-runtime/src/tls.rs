//! Whom a client trusts when it reaches a server over TLS: the public
//! roots (webpki-roots), plus the certificates of a CA file, for a server
//! whose certificate a private CA signed (docs/security.md). One place, so
//! HTTP (reqwest) and websockets (tokio-tungstenite) trust alike.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_tungstenite::Connector;

/// The certificates of one PEM CA file, read once.
#[derive(Clone)]
pub struct CaFile {
    path: PathBuf,
    certificates: Vec<CertificateDer<'static>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("{path}: cannot read it")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a PEM certificate file ({reason})")]
    Pem { path: PathBuf, reason: String },
    #[error("{path}: holds no PEM certificate")]
    Empty { path: PathBuf },
    #[error("{path}: a certificate in it is not one a client can trust ({reason})")]
    Unusable { path: PathBuf, reason: String },
}

impl CaFile {
    pub fn load(path: &Path) -> Result<CaFile, CaFileError> {
        let pem = std::fs::read(path).map_err(|source| CaFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| CaFileError::Pem {
                path: path.to_owned(),
                reason: error.to_string(),
            })?;
        if certificates.is_empty() {
            return Err(CaFileError::Empty {
                path: path.to_owned(),
            });
        }
        let ca = CaFile {
            path: path.to_owned(),
            certificates,
        };
        // Whatever a client will need from it, proven now rather than at
        // the first connection.
        ca.roots()?;
        ca.reqwest_certificates()?;
        Ok(ca)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `builder`, trusting this file's certificates besides the public roots.
    pub fn trust(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        for certificate in self.reqwest_certificates().expect("checked at load") {
            builder = builder.add_root_certificate(certificate);
        }
        builder
    }

    /// A websocket connector trusting what `trust` does.
    pub fn websocket_connector(&self) -> Connector {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(self.roots().expect("checked at load"))
        .with_no_client_auth();
        Connector::Rustls(Arc::new(config))
    }

    fn roots(&self) -> Result<rustls::RootCertStore, CaFileError> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for certificate in &self.certificates {
            roots
                .add(certificate.clone())
                .map_err(|error| CaFileError::Unusable {
                    path: self.path.clone(),
                    reason: error.to_string(),
                })?;
        }
        Ok(roots)
    }

    fn reqwest_certificates(&self) -> Result<Vec<reqwest::Certificate>, CaFileError> {
        self.certificates
            .iter()
            .map(|der| {
                reqwest::Certificate::from_der(der).map_err(|error| CaFileError::Unusable {
                    path: self.path.clone(),
                    reason: error.to_string(),
                })
            })
            .collect()
    }
}

impl std::fmt::Debug for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaFile({})", self.path.display())
    }
}

/// Whether an error (any layer of it) is a server's certificate not being
/// trusted, so a client can say which flag fixes it.
pub fn is_certificate_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.to_string().contains("certificate") {
            return true;
        }
        cause = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_file_is_named_with_what_is_wrong() {
        let dir = std::env::temp_dir().join(format!("stride-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let error = CaFile::load(&missing).unwrap_err().to_string();
        assert!(error.contains("missing.pem: cannot read it"), "{error}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let error = CaFile::load(&empty).unwrap_err().to_string();
        assert!(
            error.contains("empty.pem: holds no PEM certificate"),
            "{error}"
        );
        let broken = dir.join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let error = CaFile::load(&broken).unwrap_err().to_string();
        assert!(
            error.contains("broken.pem: not a PEM certificate file"),
            "{error}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
