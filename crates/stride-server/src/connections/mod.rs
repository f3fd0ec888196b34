//! Accepting the API's HTTP connections without letting clients exhaust
//! the process: at most `max_connections` open at once (beyond that a new
//! connection is closed at once, so accepting never runs out of
//! descriptors and those already open keep being served); a complete
//! request head within `header_timeout` of a connection being accepted or
//! answered (hyper's header-read timer, which closes idle keep-alive
//! connections and slow-header ones alike); a client that takes no data
//! for `send_timeout` dropped (so a stalled event stream or response
//! gives its place back); and a graceful stop: stop accepting, let
//! requests in flight finish. With TLS (`tls`) each connection's handshake
//! runs in its own task, within the same `header_timeout`.
//!
//! HTTP/1.1 only, through hyper's own HTTP/1 server: Marathon's clients
//! all speak it, an HTTP/2 connection without streams has no idle timeout
//! in hyper, and hyper-util's version-sniffing server waits for the first
//! 24 bytes with no timeout at all.

mod counted;
pub mod descriptors;

use axum::Router;
use axum::extract::ConnectInfo;
use counted::Counted;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stride_runtime::Supervisor;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections at most, websockets and event streams included.
    pub max_connections: usize,
    /// A request head must be complete this long after the connection was
    /// accepted or its previous response sent.
    pub header_timeout: Duration,
    /// A client that takes none of what is sent to it for this long is
    /// disconnected (`tcp::send_timeout`).
    pub send_timeout: Duration,
}

/// What is served on the listener: the router, over TLS when given.
pub struct Service {
    pub router: Router,
    pub tls: Option<TlsAcceptor>,
}

/// How often a refusal or an accept failure is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Pause after an accept failure such as EMFILE, so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Serves `router` on `listener` until `stop` resolves, then stops
/// accepting and returns the open connections, to be drained. Each
/// connection is tracked by `supervisor` too.
pub async fn accept_until(
    listener: TcpListener,
    service: Service,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
    supervisor: &Supervisor,
) -> Open {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let open = Open {
        closing: CancellationToken::new(),
        connections: TaskTracker::new(),
        supervisor: supervisor.clone(),
    };
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut refusals = Throttled::new();
    let mut failures = Throttled::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (mut stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                if failures.due() {
                    tracing::warn!(%error, failed = failures.take(), "cannot accept connections");
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Dropped unanswered: answering would hold the descriptor longer.
            if refusals.due() {
                tracing::warn!(
                    limit = limits.max_connections,
                    refused = refusals.take(),
                    "at the connection limit: refusing new connections"
                );
            }
            continue;
        };
        stride_runtime::tcp::no_delay(&mut stream);
        stride_runtime::tcp::send_timeout(&stream, limits.send_timeout);
        let stream = Counted::new(stream, slot);
        match &service.tls {
            None => open.serve(&http, service.router.clone(), stream, peer),
            Some(tls) => open.serve_tls(&http, &service, tls, stream, peer, limits),
        }
    }
    open
}

/// The connections being served.
pub struct Open {
    closing: CancellationToken,
    connections: TaskTracker,
    supervisor: Supervisor,
}

impl Open {
    /// Serves HTTP on one accepted connection until it ends or, once
    /// draining, its request in flight is answered.
    fn serve(&self, http: &http1::Builder, router: Router, stream: Counted, peer: SocketAddr) {
        let served = http_connection(http.clone(), router, stream, peer, self.closing.clone());
        self.connections.spawn(self.supervisor.track(served));
    }

    /// `serve`, once the TLS handshake is done; a client that does not
    /// finish it within `header_timeout` (or before draining) is dropped.
    fn serve_tls(
        &self,
        http: &http1::Builder,
        service: &Service,
        tls: &TlsAcceptor,
        stream: Counted,
        peer: SocketAddr,
        limits: ConnectionLimits,
    ) {
        let (http, router, closing) = (http.clone(), service.router.clone(), self.closing.clone());
        let handshake = tls.accept(stream);
        self.connections.spawn(self.supervisor.track(async move {
            let accepted = tokio::select! {
                accepted = tokio::time::timeout(limits.header_timeout, handshake) => accepted,
                () = closing.cancelled() => return,
            };
            match accepted {
                Ok(Ok(stream)) => http_connection(http, router, stream, peer, closing).await,
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }));
    }

    /// Lets each connection finish its request in flight and closes it;
    /// resolves once all are closed. Upgraded connections (websockets) are
    /// their handlers' to close.
    pub async fn drain(self) {
        self.closing.cancel();
        self.connections.close();
        self.connections.wait().await;
    }
}

/// HTTP on one connection until it ends or, once `closing`, its request
/// in flight is answered.
async fn http_connection(
    http: http1::Builder,
    router: Router,
    stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    peer: SocketAddr,
    closing: CancellationToken,
) {
    let service =
        tower::ServiceExt::map_request(router, move |mut request: axum::http::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
    let connection = http
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = closing.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = served {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// Counts events and says when one is due to be logged.
struct Throttled {
    count: u64,
    last: Option<Instant>,
}

impl Throttled {
    fn new() -> Throttled {
        Throttled {
            count: 0,
            last: None,
        }
    }

    /// Counts one; true when it should be logged.
    fn due(&mut self) -> bool {
        self.count += 1;
        let due = self.last.is_none_or(|last| last.elapsed() >= LOG_EVERY);
        if due {
            self.last = Some(Instant::now());
        }
        due
    }

    /// How many were counted since the last log.
    fn take(&mut self) -> u64 {
        std::mem::take(&mut self.count)
    }
}
