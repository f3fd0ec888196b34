//! Probing over the network: an HTTP(S) GET or a TCP connect, each bounded
//! by a timeout. Shared by the health monitor (Marathon's rules) and the
//! local cluster's executor (Mesos's rules); the callers judge the answer.

use super::error::chain;
use std::time::Duration;

/// A client for health checks: certificates are not verified, because
/// tasks commonly serve self-signed ones (Marathon and Mesos skip the check
/// too), and every probe opens a fresh connection so a dead listener cannot
/// hide behind a pooled one.
pub fn client(follow_redirects: bool) -> Result<reqwest::Client, reqwest::Error> {
    let redirects = match follow_redirects {
        true => reqwest::redirect::Policy::default(),
        false => reqwest::redirect::Policy::none(),
    };
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(redirects)
        .pool_max_idle_per_host(0)
        .build()
}

/// The status of `GET url`, or why there is none.
pub async fn http_status(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<u16, String> {
    match client.get(url).timeout(timeout).send().await {
        Ok(response) => Ok(response.status().as_u16()),
        Err(error) if error.is_timeout() => Err(format!("GET {url} timed out after {timeout:?}")),
        Err(error) => Err(format!("GET {url} failed: {}", chain(&error))),
    }
}

/// Whether a TCP connection to `host:port` opens within `timeout`.
pub async fn tcp_connect(host: &str, port: u32, timeout: Duration) -> Result<(), String> {
    let port = u16::try_from(port).map_err(|_| format!("port {port} is out of range"))?;
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(format!("connecting to {host}:{port} failed: {error}")),
        Err(_) => Err(format!(
            "connecting to {host}:{port} timed out after {timeout:?}"
        )),
    }
}
