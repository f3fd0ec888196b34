//! Talking to a running Stride: its base URL, JSON calls whose failures
//! say what went wrong (and exit with a code a script can test: `exit.rs`),
//! and a runtime for the call. Every client subcommand goes through here.

use super::exit::Failure;
use anyhow::{Context, anyhow};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use std::time::Duration;
use stride_runtime::Credentials;
use stride_runtime::tls::{CaFile, is_certificate_error};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(clap::Args, Clone)]
pub struct Remote {
    /// Base URL of the Stride server.
    #[arg(
        long = "stride",
        env = "STRIDE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: Url,
    #[command(flatten)]
    pub auth: ClientAuth,
}

/// What every client of a running Stride presents, whatever names the
/// server (--stride, or the store's serving file for a live backup).
#[derive(clap::Args, Clone, Default)]
pub struct ClientAuth {
    /// A bearer token (`stride auth token create`), sent on every request
    /// and stream; needed when the server has an auth file.
    #[arg(long, env = "STRIDE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM certificates to trust the server's by (an https:// server whose
    /// certificate a private CA signed), besides the public roots.
    #[arg(long, env = "STRIDE_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

impl ClientAuth {
    /// The token and the CA file, each checked (the error names the flag).
    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        let ca = load_ca(self.ca_file.as_deref(), "--ca-file (or STRIDE_CA_FILE)")?;
        let credentials = Credentials::bearer(self.token.clone()).with_ca(ca);
        credentials.headers().context("--token (or STRIDE_TOKEN)")?;
        Ok(credentials)
    }
}

/// The CA file a flag names, if any; an error names the flag.
pub fn load_ca(path: Option<&std::path::Path>, flag: &str) -> anyhow::Result<Option<CaFile>> {
    path.map(CaFile::load)
        .transpose()
        .with_context(|| flag.to_owned())
}

impl Remote {
    /// `path` on the server, e.g. `/v1/audit`.
    pub fn endpoint(&self, path: &str) -> anyhow::Result<Url> {
        self.url
            .join(path)
            .with_context(|| format!("--stride {}: cannot build a URL for {path}", self.url))
    }

    /// `prefix`, then the segments of `id`, then `suffix`, each escaped:
    /// `/v2/apps` + `/prod/web` + `tasks` is `/v2/apps/prod/web/tasks`.
    pub fn resource(&self, prefix: &str, id: &str, suffix: &[&str]) -> anyhow::Result<Url> {
        let mut url = self.endpoint(prefix)?;
        url.path_segments_mut()
            .map_err(|()| anyhow!("--stride {}: not an http(s) URL", self.url))?
            .pop_if_empty()
            .extend(id.split('/').filter(|s| !s.is_empty()))
            .extend(suffix);
        Ok(url)
    }

    /// The token and the CA file (`ClientAuth::credentials`).
    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        self.auth.credentials()
    }

    /// The headers every request carries: the credentials, if any.
    fn headers(&self) -> anyhow::Result<HeaderMap> {
        Ok(self.credentials()?.headers()?)
    }

    /// A websocket handshake for `url` with the same credentials as HTTP.
    pub fn websocket_request(&self, url: &Url) -> anyhow::Result<tungstenite::http::Request<()>> {
        let mut request = url
            .as_str()
            .into_client_request()
            .with_context(|| format!("{url}: not a websocket URL"))?;
        request.headers_mut().extend(self.headers()?);
        Ok(request)
    }

    pub fn api(&self) -> anyhow::Result<Api> {
        let http = self
            .credentials()?
            .http_client()?
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("cannot make an HTTP client")?;
        Ok(Api {
            http,
            remote: self.clone(),
        })
    }
}

/// JSON calls to one server.
pub struct Api {
    http: reqwest::Client,
    pub remote: Remote,
}

impl Api {
    pub async fn get(&self, url: Url) -> anyhow::Result<Value> {
        self.send(Method::GET, url, None).await
    }

    /// The JSON answer (null when empty) of a 2xx, else a `Failure` (or a
    /// plain error for a 5xx) carrying the server's message and, for
    /// invalid input, each field it names.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        Ok(self.send_for_status(method, url, body).await?.1)
    }

    /// `send`, with the 2xx status (201 tells a creation from an update).
    pub async fn send_for_status(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .timeout(Duration::from_secs(60));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self.open(request).await?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{method} {url}: the answer broke off"))?;
        let answer = match serde_json::from_slice(&bytes) {
            Ok(json) => json,
            Err(_) if bytes.is_empty() => Value::Null,
            Err(_) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        };
        if status.is_success() {
            return Ok((status, answer));
        }
        Err(refusal(status, &answer, &format!("{method} {url}")))
    }

    /// A GET whose 2xx answer the caller reads as it comes, with no time
    /// limit on the whole (a backup may be large); other answers fail as
    /// `send`'s do.
    pub async fn get_streamed(&self, url: Url) -> anyhow::Result<reqwest::Response> {
        let response = self.open(self.http.get(url.clone())).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let answer = response.json().await.unwrap_or(Value::Null);
        Err(refusal(status, &answer, &format!("GET {url}")))
    }

    /// Sends `request`; failing to reach the server says why.
    async fn open(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response = request.send().await.map_err(|error| {
            // The innermost cause says it ("Connection refused"); the
            // layers above it repeat the URL.
            let mut cause: &dyn std::error::Error = &error;
            while let Some(source) = cause.source() {
                cause = source;
            }
            Failure::Unreachable(format!(
                "cannot reach Stride at {} (--stride or STRIDE_URL): {cause}{}",
                self.remote.url,
                untrusted_hint(&error)
            ))
        })?;
        Ok(response)
    }
}

/// What to do when `error` is the server's certificate not being trusted.
pub fn untrusted_hint(error: &(dyn std::error::Error + 'static)) -> &'static str {
    match is_certificate_error(error) {
        true => {
            " (the server's TLS certificate is not trusted: give its CA with --ca-file or STRIDE_CA_FILE)"
        }
        false => "",
    }
}

/// The error for a non-2xx answer: its message, then one line per field
/// the server found wrong (`portDefinitions[0].port: must be ...`).
fn refusal(status: StatusCode, answer: &Value, request: &str) -> anyhow::Error {
    let message = match answer {
        Value::String(text) if !text.trim().is_empty() => text.trim().to_owned(),
        _ => answer["message"]
            .as_str()
            .map_or_else(|| format!("{request}: {status}"), str::to_owned),
    };
    let mut text = message;
    for detail in answer["details"].as_array().into_iter().flatten() {
        let path = readable_path(detail["path"].as_str().unwrap_or(""));
        for error in detail["errors"].as_array().into_iter().flatten() {
            text.push_str(&format!("\n  {path}: {}", error.as_str().unwrap_or("?")));
        }
    }
    match status {
        StatusCode::NOT_FOUND => Failure::NotFound(text).into(),
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => Failure::Refused(text).into(),
        StatusCode::CONFLICT => Failure::Conflict(format!("{text} (--force overrides)")).into(),
        StatusCode::UNAUTHORIZED => {
            anyhow!("{status}: {text} (give a token: --token or STRIDE_TOKEN)")
        }
        _ => anyhow!("{status}: {text}"),
    }
}

/// A JSON pointer as a person reads it: `/portDefinitions/0/port` is
/// `portDefinitions[0].port`; the whole document is `(the definition)`.
pub fn readable_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment.replace("~1", "/").replace("~0", "~"));
        }
    }
    if out.is_empty() {
        "(the definition)".to_owned()
    } else {
        out
    }
}

/// Client subcommands are async; `serve` builds its own runtime.
pub fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(
    future: F,
) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?
        .block_on(future)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_read_as_paths() {
        assert_eq!(
            readable_path("/portDefinitions/0/port"),
            "portDefinitions[0].port"
        );
        assert_eq!(readable_path("/0/id"), "[0].id");
        assert_eq!(readable_path("/env/A~1B"), "env.A/B");
        assert_eq!(readable_path("/"), "(the definition)");
    }

    #[test]
    fn refusals_name_each_field_and_keep_their_code() {
        let answer = json!({"message": "Object is not valid", "details": [
            {"path": "/cpus", "errors": ["got 0, expected 0.001 or more"]},
            {"path": "/", "errors": ["give cmd or args"]}]});
        let error = refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            &answer,
            "PUT /v2/apps/web",
        );
        assert_eq!(super::super::exit::exit_code(&error), 5);
        assert_eq!(
            error.to_string(),
            "Object is not valid\n  cpus: got 0, expected 0.001 or more\n  (the definition): give cmd or args"
        );
        let missing = refusal(
            StatusCode::NOT_FOUND,
            &json!({"message": "App '/x' does not exist"}),
            "",
        );
        assert_eq!(super::super::exit::exit_code(&missing), 4);
    }

    #[test]
    fn ids_become_escaped_segments() {
        let remote = Remote {
            url: "http://h:1/".parse().unwrap(),
            auth: ClientAuth::default(),
        };
        let url = remote.resource(
            "/v2/apps",
            "/prod/web",
            &["versions", "2026-01-01T00:00:00Z"],
        );
        assert_eq!(
            url.unwrap().as_str(),
            "http://h:1/v2/apps/prod/web/versions/2026-01-01T00:00:00Z"
        );
        let odd = remote.resource("/v2/apps", "a b/c?d", &[]).unwrap();
        assert_eq!(odd.as_str(), "http://h:1/v2/apps/a%20b/c%3Fd");
    }
}
