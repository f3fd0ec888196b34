//! Delivery cursors of event subscriptions: the last seq each callback URL
//! acknowledged. Not synced: after a crash a callback may get events again,
//! which at-least-once delivery allows.

use super::keys::seq_key;
use super::{EventLog, StoreError, keys};
use crate::event::Seq;

impl EventLog {
    pub fn callback_cursor(&self, url: &str) -> Result<Option<Seq>, StoreError> {
        Ok(self.cursors.get(url.as_bytes())?.map(|v| keys::seq_of(&v)))
    }

    pub fn set_callback_cursor(&self, url: &str, seq: Seq) -> Result<(), StoreError> {
        self.cursors.insert(url.as_bytes(), &seq_key(seq)[..])?;
        Ok(())
    }

    pub fn remove_callback_cursor(&self, url: &str) -> Result<(), StoreError> {
        self.cursors.remove(url.as_bytes())?;
        Ok(())
    }
}
