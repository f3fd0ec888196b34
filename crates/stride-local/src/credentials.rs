//! Framework authentication, as a Mesos master with
//! `--authenticate_http_frameworks` and `--credentials` does it: HTTP Basic
//! on every scheduler call, checked against a JSON file of the shape of
//! Mesos' `MESOS_CREDENTIALS` (`{"credentials": [{"principal", "secret"}]}`);
//! answers as apache/mesos does (docs/compat.md).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// The realm of a real master's scheduler endpoint
/// (`DEFAULT_HTTP_FRAMEWORK_AUTHENTICATION_REALM`).
pub(crate) const REALM: &str = "mesos-master-scheduler";

#[derive(Clone, Default)]
pub struct FrameworkCredentials {
    secrets: HashMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: cannot read it")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: not Mesos credentials JSON ({{\"credentials\": [{{\"principal\": ..., \"secret\": ...}}]}}): {source}"
    )]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: holds no credentials")]
    Empty { path: PathBuf },
}

#[derive(serde::Deserialize)]
struct File {
    credentials: Vec<Credential>,
}

#[derive(serde::Deserialize)]
struct Credential {
    principal: String,
    #[serde(default)]
    secret: String,
}

impl FrameworkCredentials {
    pub fn load(path: &Path) -> Result<FrameworkCredentials, CredentialsError> {
        let text = std::fs::read(path).map_err(|source| CredentialsError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: File =
            serde_json::from_slice(&text).map_err(|source| CredentialsError::Parse {
                path: path.to_owned(),
                source,
            })?;
        if file.credentials.is_empty() {
            return Err(CredentialsError::Empty {
                path: path.to_owned(),
            });
        }
        let secrets = file
            .credentials
            .into_iter()
            .map(|c| (c.principal, c.secret))
            .collect();
        Ok(FrameworkCredentials { secrets })
    }

    /// The principal a request proves with Basic credentials; `None` for
    /// a missing, malformed or wrong one (all a 401 on a real master).
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
        let encoded = value.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        // As the real master: exactly one ':' (a secret holding one fails).
        let mut parts = decoded.split(':');
        let (principal, secret) = (parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let expected = self.secrets.get(principal)?;
        bool::from(expected.as_bytes().ct_eq(secret.as_bytes())).then(|| principal.to_owned())
    }
}

impl std::fmt::Debug for FrameworkCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut principals: Vec<_> = self.secrets.keys().collect();
        principals.sort();
        write!(f, "FrameworkCredentials({principals:?})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_password: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
        headers.insert(AUTHORIZATION, format!("Basic {encoded}").parse().unwrap());
        headers
    }

    #[test]
    fn only_the_right_secret_proves_a_principal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        std::fs::write(
            &path,
            r#"{"credentials": [{"principal": "stride", "secret": "s3cret"}]}"#,
        )
        .unwrap();
        let credentials = FrameworkCredentials::load(&path).unwrap();
        assert_eq!(
            credentials.authenticate(&basic("stride:s3cret")).as_deref(),
            Some("stride")
        );
        for wrong in ["stride:nope", "other:s3cret", "stride:s3cret:x", "stride"] {
            assert_eq!(credentials.authenticate(&basic(wrong)), None, "{wrong}");
        }
        assert_eq!(credentials.authenticate(&HeaderMap::new()), None);
        assert!(!format!("{credentials:?}").contains("s3cret"));

        std::fs::write(&path, r#"{"credentials": []}"#).unwrap();
        let error = FrameworkCredentials::load(&path).unwrap_err().to_string();
        assert!(error.ends_with("holds no credentials"), "{error}");
        std::fs::write(&path, "principal secret").unwrap();
        let error = FrameworkCredentials::load(&path).unwrap_err().to_string();
        assert!(error.contains("not Mesos credentials JSON"), "{error}");
    }
}
