//! One Marathon-style probe of a task: an HTTP(S) GET or a TCP connect
//! (`runtime::probe`), judged by Marathon's rules.

use super::rules::{Outcome, http_outcome};
use std::time::Duration;
use stride_log::event::app::HealthCheckProtocol;
use stride_runtime::probe::{http_status, tcp_connect};

/// What a Stride-run check probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub protocol: HealthCheckProtocol,
    pub host: String,
    pub port: u32,
    pub path: String,
    pub timeout: Duration,
    pub ignore_1xx: bool,
}

/// Runs one Marathon-style probe of `target`.
pub async fn probe(client: &reqwest::Client, target: &Target) -> Outcome {
    let scheme = match target.protocol {
        HealthCheckProtocol::Http => "http",
        HealthCheckProtocol::Https => "https",
        _ => {
            return match tcp_connect(&target.host, target.port, target.timeout).await {
                Ok(()) => Outcome::Healthy,
                Err(cause) => Outcome::Unhealthy(cause),
            };
        }
    };
    let url = format!("{scheme}://{}:{}{}", target.host, target.port, target.path);
    match http_status(client, &url, target.timeout).await {
        Ok(status) => http_outcome(status, target.ignore_1xx),
        Err(cause) => Outcome::Unhealthy(cause),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU16, Ordering};
    use stride_runtime::probe::client;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A tiny HTTP server answering every request with the status the test
    /// sets; 0 means accept and never answer.
    async fn http_server() -> (u32, Arc<AtomicU16>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = u32::from(listener.local_addr().expect("addr").port());
        let status = Arc::new(AtomicU16::new(200));
        let answer = status.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let status = answer.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = [0; 1024];
                    let _ = socket.read(&mut request).await;
                    if status == 0 {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    let response = format!(
                        "HTTP/1.1 {status} Test\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        (port, status)
    }

    fn target(protocol: HealthCheckProtocol, port: u32, ignore_1xx: bool) -> Target {
        Target {
            protocol,
            host: "localhost".to_owned(),
            port,
            path: "/health".to_owned(),
            timeout: Duration::from_millis(500),
            ignore_1xx,
        }
    }

    #[tokio::test]
    async fn http_answers_are_judged_by_marathons_rules() {
        let client = client(false).expect("client");
        let (port, status) = http_server().await;
        let http = target(HealthCheckProtocol::Http, port, false);
        let cases = [
            (200, Outcome::Healthy),
            // Not followed: a redirect answers the check.
            (302, Outcome::Healthy),
            (503, Outcome::Unhealthy("HTTP status 503".to_owned())),
            (404, Outcome::Unhealthy("HTTP status 404".to_owned())),
        ];
        for (answer, want) in cases {
            status.store(answer, Ordering::SeqCst);
            assert_eq!(probe(&client, &http).await, want, "{answer}");
        }
        status.store(0, Ordering::SeqCst);
        let Outcome::Unhealthy(cause) = probe(&client, &http).await else {
            panic!("a silent server is unhealthy");
        };
        assert!(cause.contains("timed out"), "{cause}");
    }

    #[tokio::test]
    async fn an_informational_answer_is_ignored_only_when_asked() {
        let client = client(false).expect("client");
        let (port, status) = http_server().await;
        status.store(101, Ordering::SeqCst);
        let ignored = probe(&client, &target(HealthCheckProtocol::Http, port, true)).await;
        assert_eq!(ignored, Outcome::Ignored);
        let counted = probe(&client, &target(HealthCheckProtocol::Http, port, false)).await;
        assert_eq!(counted, Outcome::Unhealthy("HTTP status 101".to_owned()));
    }

    #[tokio::test]
    async fn tcp_checks_connect_and_notice_a_closed_port() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = u32::from(listener.local_addr().expect("addr").port());
        let tcp = target(HealthCheckProtocol::Tcp, port, false);
        let client = client(false).expect("client");
        assert_eq!(probe(&client, &tcp).await, Outcome::Healthy);
        // Bound but not listening: connections are refused, and no other
        // test can take the port meanwhile (as one could after a drop).
        let closed = tokio::net::TcpSocket::new_v4().expect("socket");
        closed.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let port = u32::from(closed.local_addr().expect("addr").port());
        let tcp = target(HealthCheckProtocol::Tcp, port, false);
        let Outcome::Unhealthy(cause) = probe(&client, &tcp).await else {
            panic!("a closed port is unhealthy");
        };
        assert!(cause.contains(&format!(":{port} failed")), "{cause}");
    }

    /// `openssl s_server -www` with a fresh self-signed certificate: the
    /// kind of endpoint tasks serve and Marathon accepts.
    #[tokio::test]
    async fn https_accepts_a_self_signed_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        let made = tokio::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .await
            .expect("openssl runs");
        assert!(made.status.success(), "{made:?}");
        let port = {
            let free = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            u32::from(free.local_addr().expect("addr").port())
        };
        let mut server = tokio::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(port.to_string())
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("openssl s_server starts");
        let client = client(false).expect("client");
        let mut https = target(HealthCheckProtocol::Https, port, false);
        https.timeout = Duration::from_secs(5);
        let mut outcome = Outcome::Ignored;
        for _ in 0..50 {
            outcome = probe(&client, &https).await;
            if outcome == Outcome::Healthy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(outcome, Outcome::Healthy);
        server.kill().await.expect("stop s_server");
        assert!(matches!(
            probe(&client, &https).await,
            Outcome::Unhealthy(_)
        ));
    }
}
