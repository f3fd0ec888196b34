//! A stream's grant, checked again on every reload of the auth file
//! (SIGHUP): a stream whose credentials were revoked, or whose stream
//! grant changed, ends with the reason, rather than keep delivering what
//! the principal may no longer see.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use stride_auth::{Keeper, Principal, Scope, Verb};
use tokio::sync::watch;

/// Why a stream was ended by a reload.
pub const REVOKED: &str = "the credentials were revoked (auth file reloaded)";
pub const CHANGED: &str = "the stream grant changed (auth file reloaded); reconnect";

/// Resolves with the reason once a reload takes the stream away.
pub type Revoked = Pin<Box<dyn Future<Output = &'static str> + Send>>;

/// Watches reloads for a stream opened by `principal` with `scope`.
pub fn watch(
    keeper: Arc<Keeper>,
    principal: Arc<Principal>,
    scope: Scope,
    mut reloads: watch::Receiver<u64>,
) -> Revoked {
    reloads.mark_unchanged();
    Box::pin(async move {
        // The hub outlives every stream; if it goes, so does the stream.
        while reloads.changed().await.is_ok() {
            match keeper.current().reverify(&principal) {
                None => return REVOKED,
                Some(now) if now.access.scope(Verb::Stream) != scope => return CHANGED,
                Some(_) => {}
            }
        }
        std::future::pending().await
    })
}
