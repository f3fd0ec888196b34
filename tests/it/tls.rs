//! HTTPS and WSS against the real binary, with a CA and certificates made
//! in the test (rcgen): `stride serve --tls-cert --tls-key`, the clients'
//! `--ca-file` / `STRIDE_CA_FILE` (and a clear failure without it), the LB
//! sidecar following over WSS, bad certificate files named, and callbacks
//! POSTed to an HTTPS receiver trusted by `--callback-ca-file`.

use crate::support::lb::{HaproxyGuard, Sidecar};
use crate::support::{BIN, Server, app, create_token, run_stride, wait_until};
use crate::support::{ports, real_parts};
use futures::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_rustls::rustls;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(30);

/// A CA, and a certificate it signed for 127.0.0.1 and localhost, as PEM
/// files in a temp dir.
pub(crate) struct Pki {
    dir: tempfile::TempDir,
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Stride test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        Pki {
            ca: write("ca.pem", ca.pem()),
            cert: write("cert.pem", leaf.pem()),
            key: write("key.pem", key.serialize_pem()),
            dir,
        }
    }

    fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca).unwrap()
    }

    /// An HTTP client trusting this CA only.
    pub(crate) fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca_pem()).unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    fn rustls_client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let pem = self.ca_pem();
        let (added, _) = roots.add_parsable_certificates(
            rustls::pki_types::pem::PemObject::pem_slice_iter(&pem).map(Result::unwrap),
        );
        assert_eq!(added, 1);
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }

    fn tls_flags(&self) -> Vec<&str> {
        vec![
            "--tls-cert",
            self.cert.to_str().unwrap(),
            "--tls-key",
            self.key.to_str().unwrap(),
        ]
    }
}

/// `stride ARGS --stride URL` with the environment given: (ok, stdout, stderr).
fn client_command(args: &[&str], url: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .args(["--stride", url])
        .env("STRIDE_LOG", "warn")
        .env_remove("STRIDE_CA_FILE")
        .env_remove("STRIDE_TOKEN");
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn create(http: &reqwest::Client, server: &Server, id: &str) {
    let answer = http
        .post(server.url("/v2/apps"))
        .json(&app(id))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
}

#[tokio::test]
async fn https_and_wss_serve_clients_that_trust_the_ca() {
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &pki.tls_flags());
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let http = pki.client();
    create(&http, &server, "/tls/web").await;
    let apps: Value = http
        .get(server.url("/v2/apps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(apps["apps"][0]["id"], "/tls/web");

    // Nothing in cleartext on the same port.
    let cleartext = server.url.replacen("https://", "http://", 1);
    let plain = reqwest::Client::new()
        .get(format!("{cleartext}/v2/apps"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // WSS: /v1/stream from the first event.
    let ws_url = server.url.replacen("https://", "wss://", 1);
    let connector = Connector::Rustls(pki.rustls_client());
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        format!("{ws_url}/v1/stream?from=1"),
        None,
        false,
        Some(connector),
    )
    .await
    .expect("a WSS handshake trusting the CA");
    let first = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Text(text))) = ws.next().await {
                if text.contains("AppCreated") {
                    return text.to_string();
                }
            }
        }
    })
    .await
    .expect("AppCreated over WSS");
    assert!(first.contains("/tls/web"), "{first}");

    // Marathon's /v2/events (SSE) over HTTPS.
    let answer = http
        .get(server.url("/v2/events"))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let mut body = answer.bytes_stream();
    let chunk = tokio::time::timeout(WAIT, body.next())
        .await
        .expect("an SSE frame")
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&chunk).contains("event"),
        "{chunk:?}"
    );

    // The CLI over HTTPS and WSS, given the CA by flag or environment.
    let ca = pki.ca.to_str().unwrap();
    let (ok, out, err) = client_command(&["events", "--json", "--ca-file", ca], &server.url, &[]);
    assert!(ok, "{err}");
    assert!(out.contains("\"/tls/web\""), "{out}");
    let (ok, out, err) = client_command(&["app", "list"], &server.url, &[("STRIDE_CA_FILE", ca)]);
    assert!(ok && out.contains("/tls/web"), "{err}");
    let (ok, out, err) =
        client_command(&["audit", "--json"], &server.url, &[("STRIDE_CA_FILE", ca)]);
    assert!(ok && out.contains("/tls/web"), "{err}");

    // Without the CA: a clear failure naming the certificate and the fix.
    for args in [&["events", "--json"][..], &["app", "list"][..]] {
        let (ok, _, err) = client_command(args, &server.url, &[]);
        assert!(!ok, "{args:?} trusted an unknown CA");
        assert!(
            err.contains("certificate") && err.contains("--ca-file or STRIDE_CA_FILE"),
            "{args:?}: {err}"
        );
    }
    // A CA file that is not one is named.
    let (ok, _, err) = client_command(
        &["app", "list", "--ca-file", pki.key.to_str().unwrap()],
        &server.url,
        &[],
    );
    assert!(!ok);
    assert!(
        err.contains("--ca-file") && err.contains("key.pem: holds no PEM certificate"),
        "{err}"
    );
}

/// Served over HTTPS, `/v2/info` says so as Marathon with
/// `--disable_http` and a keystore does: the HTTPS port, no HTTP port, and
/// an `https://` web UI; `/v1/leader` names the same URL.
#[tokio::test]
async fn info_names_the_https_port_and_url() {
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &pki.tls_flags());
    let http = pki.client();
    let get = |path: &str| {
        let request = http.get(server.url(path));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let info = get("/v2/info").await;
    assert_eq!(
        info["http_config"],
        serde_json::json!({"http_port": null, "https_port": port}),
        "{info}"
    );
    assert_eq!(info["marathon_config"]["webui_url"], server.url.as_str());
    let leader = get("/v1/leader").await;
    assert_eq!(leader["leader"]["url"], server.url.as_str(), "{leader}");
}

/// `stride store backup` of a store an HTTPS server with an auth file
/// runs on: the backup comes through GET /v1/backup with the client
/// options every client has (`--ca-file` / `STRIDE_CA_FILE`, `--token` /
/// `STRIDE_TOKEN`); without them it fails saying which to give.
#[tokio::test]
async fn a_live_backup_over_https_carries_the_ca_file_and_the_token() {
    let pki = Pki::new();
    let auth = tempfile::tempdir().unwrap();
    let file = auth.path().join("auth.toml");
    std::fs::write(
        &file,
        "[roles.admin]\ngrants = [{ prefix = \"/\", verbs = [\"read\", \"write\", \"stream\", \"audit\", \"admin\"] }]\n",
    )
    .unwrap();
    let token = create_token(&file, "ops", "admin");
    let data = tempfile::tempdir().unwrap();
    let mut flags = pki.tls_flags();
    flags.extend(["--auth-file", file.to_str().unwrap()]);
    let server = Server::start(data.path(), &flags);
    let created = pki
        .client()
        .post(server.url("/v2/apps"))
        .bearer_auth(&token)
        .json(&app("/backed/up"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let to = auth.path().join("backup");
    let backup = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(BIN);
        command
            .args(["store", "backup", "--data-dir"])
            .arg(data.path())
            .arg("--to")
            .arg(&to)
            .args(args)
            .env("STRIDE_LOG", "warn")
            .env_remove("STRIDE_CA_FILE")
            .env_remove("STRIDE_TOKEN")
            .envs(env.iter().copied());
        let output = command.output().unwrap();
        let out = String::from_utf8_lossy(&output.stdout).into_owned();
        let err = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.success(), out + &err)
    };
    let ca = pki.ca.to_str().unwrap();
    let (ok, said) = backup(&["--token", &token], &[]);
    assert!(
        !ok && said.contains("--ca-file or STRIDE_CA_FILE"),
        "{said}"
    );
    let (ok, said) = backup(&["--ca-file", ca], &[]);
    assert!(!ok && said.contains("--token or STRIDE_TOKEN"), "{said}");
    assert!(!to.exists(), "a failed backup leaves no file");
    let (ok, said) = backup(&["--ca-file", ca, "--token", &token], &[]);
    assert!(ok && said.contains("backup of seqs 1..="), "{said}");
    std::fs::remove_file(&to).unwrap();
    let (ok, said) = backup(&[], &[("STRIDE_CA_FILE", ca), ("STRIDE_TOKEN", &token)]);
    assert!(ok && said.contains("backup of seqs 1..="), "{said}");

    // The copy holds the app: restored elsewhere, the store exports it.
    let restored = tempfile::tempdir().unwrap();
    let target = restored.path().join("store");
    let (ok, _, err) = run_stride(&[
        "store",
        "restore",
        "--data-dir",
        target.to_str().unwrap(),
        "--from",
        to.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (ok, exported, err) =
        run_stride(&["store", "export", "--data-dir", target.to_str().unwrap()]);
    assert!(ok && exported.contains("/backed/up"), "{err}{exported}");
}

/// `stride lb haproxy --ca-file` reads the state over HTTPS and follows
/// the stream over WSS until HAProxy has everything.
#[tokio::test]
async fn the_lb_sidecar_follows_over_wss_with_the_ca_file() {
    if real_parts::haproxy().is_none() {
        return;
    }
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &pki.tls_flags());
    let http = pki.client();
    create(&http, &server, "/lb/one").await;
    let lb_dir = tempfile::tempdir().unwrap();
    let port = ports::port();
    let sidecar = Sidecar::start_with(
        &server.url,
        lb_dir.path(),
        port.first(),
        &["--ca-file", pki.ca.to_str().unwrap()],
    );
    let _haproxy = HaproxyGuard(sidecar.master_socket());
    // Written after the sidecar started: only the stream brings it.
    create(&http, &server, "/lb/two").await;
    let head = head(&http, &server).await;
    wait_until(
        &format!("the sidecar to apply seq {head}"),
        WAIT,
        || async { sidecar.status().await["appliedSeq"].as_u64() >= Some(head) },
    )
    .await;
    let status = sidecar.status().await;
    assert_eq!(status["connected"], true, "{status}");
}

async fn head(http: &reqwest::Client, server: &Server) -> u64 {
    let state: Value = http
        .get(server.url("/v1/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state["seq"].as_u64().unwrap()
}

/// `stride serve` with bad TLS files exits naming the flag and the file.
#[test]
fn bad_certificate_files_are_named() {
    let pki = Pki::new();
    let other = Pki::new();
    let serve = |cert: &Path, key: &Path| {
        let data = tempfile::tempdir().unwrap();
        let output = Command::new(BIN)
            .args([
                "serve",
                "--no-mesos",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data.path())
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .env("STRIDE_LOG", "warn")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let err = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!err.contains("panicked"), "{err}");
        err
    };
    let missing = pki.dir.path().join("missing.pem");
    let err = serve(&missing, &pki.key);
    assert!(
        err.contains("--tls-cert") && err.contains("missing.pem: cannot read it"),
        "{err}"
    );
    let err = serve(&pki.key, &pki.key);
    assert!(
        err.contains("--tls-cert") && err.contains("key.pem: holds no PEM certificate"),
        "{err}"
    );
    let err = serve(&pki.cert, &pki.cert);
    assert!(
        err.contains("--tls-key") && err.contains("cert.pem: holds no PEM private key"),
        "{err}"
    );
    let err = serve(&pki.cert, &other.key);
    assert!(
        err.contains("--tls-key") && err.contains("does not serve --tls-cert"),
        "{err}"
    );

    let output = Command::new(BIN)
        .args(["serve", "--no-mesos", "--tls-cert"])
        .arg(&pki.cert)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && err.contains("--tls-key"),
        "{err}"
    );
}

/// An HTTPS receiver of Marathon event callbacks, its certificate signed
/// by the test CA; it records each event type POSTed.
async fn https_receiver(pki: &Pki) -> (Arc<Mutex<Vec<String>>>, String) {
    use rustls::pki_types::pem::PemObject;
    let chain = rustls::pki_types::CertificateDer::pem_file_iter(&pki.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&pki.key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let received = Arc::new(Mutex::new(Vec::new()));
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let received = received.clone();
            move |body: axum::Json<Value>| async move {
                let kind = body["eventType"].as_str().unwrap_or("?").to_owned();
                received.lock().unwrap().push(kind);
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                // An untrusting client aborts the handshake: nothing to serve.
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (received, url)
}

/// Callbacks reach an HTTPS receiver whose certificate the test CA signed
/// when the server trusts it (`--callback-ca-file`); without the flag the
/// subscription shows the certificate error and nothing is delivered.
#[tokio::test]
async fn callbacks_reach_an_https_receiver_trusting_the_ca() {
    let pki = Pki::new();
    let (received, hook) = https_receiver(&pki).await;
    let http = reqwest::Client::new();

    let untrusting_dir = tempfile::tempdir().unwrap();
    let untrusting = Server::start(untrusting_dir.path(), &["--callback-max-backoff", "300ms"]);
    let subscribed = http
        .post(untrusting.url("/v2/eventSubscriptions"))
        .query(&[("callbackUrl", &hook)])
        .send()
        .await
        .unwrap();
    assert_eq!(subscribed.status(), 200);
    wait_until(
        "the untrusting server to report the certificate",
        WAIT,
        || async {
            let statuses: Value = http
                .get(untrusting.url("/v1/subscriptions"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            statuses["subscriptions"][0]["lastError"]
                .as_str()
                .is_some_and(|error| error.contains("certificate"))
        },
    )
    .await;
    assert!(received.lock().unwrap().is_empty());

    let data = tempfile::tempdir().unwrap();
    let server = Server::start(
        data.path(),
        &["--callback-ca-file", pki.ca.to_str().unwrap()],
    );
    let subscribed = http
        .post(server.url("/v2/eventSubscriptions"))
        .query(&[("callbackUrl", &hook)])
        .send()
        .await
        .unwrap();
    assert_eq!(subscribed.status(), 200);
    create(&http, &server, "/hooked").await;
    wait_until("the HTTPS receiver to get api_post_event", WAIT, || async {
        received
            .lock()
            .unwrap()
            .iter()
            .any(|kind| kind == "api_post_event")
    })
    .await;
}
