//! What a Stride client sends to prove who it is: a bearer token on every
//! HTTP request and websocket handshake (docs/security.md), and the CA
//! file it trusts the server's certificate by. One place, so the CLI and
//! the LB sidecar send and trust alike.

use crate::tls::CaFile;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use std::fmt;

#[derive(Clone, Default)]
pub struct Credentials {
    token: Option<String>,
    ca: Option<CaFile>,
}

#[derive(Debug, thiserror::Error)]
#[error("the token has characters no HTTP header may hold")]
pub struct InvalidToken;

impl Credentials {
    /// A token from `stride auth token create`; `None` sends nothing.
    pub fn bearer(token: Option<String>) -> Credentials {
        Credentials {
            token: token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()),
            ca: None,
        }
    }

    /// Also trusting the server's certificate by `ca`.
    pub fn with_ca(self, ca: Option<CaFile>) -> Credentials {
        Credentials { ca, ..self }
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The same trust without the token: for passing on another client's
    /// request, which must carry that client's credentials alone.
    pub fn trust_only(&self) -> Credentials {
        Credentials {
            token: None,
            ca: self.ca.clone(),
        }
    }

    /// An HTTP client builder that sends the headers and trusts the CA.
    pub fn http_client(&self) -> Result<reqwest::ClientBuilder, InvalidToken> {
        let builder = reqwest::Client::builder().default_headers(self.headers()?);
        Ok(match &self.ca {
            Some(ca) => ca.trust(builder),
            None => builder,
        })
    }

    /// The connector for `wss://` handshakes: `None` is the public roots.
    pub fn websocket_connector(&self) -> Option<tokio_tungstenite::Connector> {
        self.ca.as_ref().map(CaFile::websocket_connector)
    }

    /// The headers every request and handshake carries.
    pub fn headers(&self) -> Result<HeaderMap, InvalidToken> {
        let mut headers = HeaderMap::new();
        if let Some(token) = &self.token {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| InvalidToken)?;
            // Kept out of debug output and header compression tables.
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(headers)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.token.as_ref().map(|_| "..");
        f.debug_struct("Credentials")
            .field("token", &token)
            .field("ca", &self.ca)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_a_sensitive_bearer_header_never_shown() {
        let credentials = Credentials::bearer(Some(" stride_abc\n".into()));
        let headers = credentials.headers().unwrap();
        let value = &headers[AUTHORIZATION];
        assert_eq!(value, "Bearer stride_abc");
        assert!(value.is_sensitive());
        assert!(!format!("{credentials:?}").contains("abc"));
        assert!(Credentials::bearer(None).headers().unwrap().is_empty());
        assert!(
            Credentials::bearer(Some("a\u{7f}b".into()))
                .headers()
                .is_err()
        );
    }
}
