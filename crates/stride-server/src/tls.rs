//! HTTPS and WSS: `--tls-cert` and `--tls-key` (PEM) made into the rustls
//! acceptor every accepted connection is wrapped in (`connections`), read
//! once at start so a bad file stops `stride serve` naming it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// The certificate chain and its private key, both PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{flag} {path}: cannot read it")]
    Read {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{flag} {path}: {problem}")]
    Pem {
        flag: &'static str,
        path: PathBuf,
        problem: String,
    },
    #[error("--tls-key {key} does not serve --tls-cert {cert}: {problem}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        problem: rustls::Error,
    },
}

/// The acceptor for `files`, speaking HTTP/1.1 only, as the server does.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let pem_error = |flag, path: &Path, problem: String| TlsError::Pem {
        flag,
        path: path.to_owned(),
        problem,
    };
    let cert_pem = read("--tls-cert", &files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("--tls-cert", &files.cert, format!("not PEM ({e})")))?;
    if chain.is_empty() {
        return Err(pem_error(
            "--tls-cert",
            &files.cert,
            "holds no PEM certificate".into(),
        ));
    }
    let key_pem = read("--tls-key", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        let problem = match e {
            rustls::pki_types::pem::Error::NoItemsFound => "holds no PEM private key".to_owned(),
            e => format!("not a PEM private key ({e})"),
        };
        pem_error("--tls-key", &files.key, problem)
    })?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|problem| TlsError::Mismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
                problem,
            })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        flag,
        path: path.to_owned(),
        source,
    })
}
