//! What every stream connection shares: the timings, and the JSON text of
//! recent events, so fanning one event out to N subscribers serializes it
//! once instead of N times.

use super::StreamConfig;
use crate::event::json::envelope_json;
use crate::event::{Envelope, Seq};
use axum::extract::ws::Utf8Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Recent events kept rendered; subscribers at the live edge all hit.
const CACHED: usize = 4_096;

pub struct Hub {
    pub config: StreamConfig,
    rendered: Mutex<Rendered>,
}

#[derive(Default)]
struct Rendered {
    by_seq: HashMap<Seq, Utf8Bytes>,
    /// Insertion order, for eviction.
    order: VecDeque<Seq>,
}

impl Hub {
    pub fn new(config: StreamConfig) -> Hub {
        Hub {
            config,
            rendered: Mutex::new(Rendered::default()),
        }
    }

    /// The envelope's JSON text (`envelope_json`), from the cache if any
    /// subscriber rendered it recently.
    pub fn render(&self, envelope: &Envelope) -> Utf8Bytes {
        if let Some(text) = self.lock().by_seq.get(&envelope.seq) {
            return text.clone();
        }
        // Rendered outside the lock: two subscribers may both render a
        // miss, which costs less than serializing under a shared lock.
        let text = Utf8Bytes::from(envelope_json(envelope).to_string());
        let mut rendered = self.lock();
        if rendered.by_seq.insert(envelope.seq, text.clone()).is_none() {
            rendered.order.push_back(envelope.seq);
            while rendered.order.len() > CACHED {
                if let Some(old) = rendered.order.pop_front() {
                    rendered.by_seq.remove(&old);
                }
            }
        }
        text
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rendered> {
        self.rendered.lock().unwrap_or_else(|p| p.into_inner())
    }
}
