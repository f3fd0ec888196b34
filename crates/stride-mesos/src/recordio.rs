//! RecordIO, the framing of the Mesos event stream: each record is its
//! length in ASCII decimal, a `\n`, then exactly that many bytes. HTTP
//! chunk boundaries mean nothing (proxies may re-chunk), so the decoder
//! buffers across them.

use bytes::{Buf, Bytes, BytesMut};

/// Default upper bound for one record. Mesos events are a few KiB; an
/// OFFERS event for a large cluster can reach a few MiB.
pub const DEFAULT_MAX_RECORD_LEN: usize = 16 * 1024 * 1024;

/// `u64::MAX` has 20 digits; a longer length line is garbage, and we stop
/// looking for its newline instead of buffering without bound.
const MAX_LENGTH_DIGITS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    #[error("RecordIO length line {line:?} is not a decimal number")]
    InvalidLength { line: String },
    #[error("RecordIO length line {prefix:?}... has no newline within {MAX_LENGTH_DIGITS} bytes")]
    LengthLineTooLong { prefix: String },
    #[error("RecordIO record of {length} bytes is over the {max}-byte limit")]
    RecordTooLarge { length: u64, max: usize },
    #[error("RecordIO record of length 0 (Mesos never sends one)")]
    EmptyRecord,
    #[error(
        "stream ended inside a RecordIO record ({buffered} bytes buffered, {expected} expected)"
    )]
    Truncated { buffered: usize, expected: String },
}

/// Incremental decoder. Feed chunks with `push`, take records with
/// `next_record`. After an error the framing is lost for good: drop the
/// stream.
#[derive(Debug)]
pub struct RecordIoDecoder {
    buffer: BytesMut,
    max_record_len: usize,
    /// Length of the record being read, once its length line is consumed.
    pending_len: Option<usize>,
}

impl Default for RecordIoDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD_LEN)
    }
}

impl RecordIoDecoder {
    pub fn new(max_record_len: usize) -> Self {
        Self {
            buffer: BytesMut::new(),
            max_record_len,
            pending_len: None,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete record, `Ok(None)` if more input is needed.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        let len = match self.pending_len {
            Some(len) => len,
            None => match self.take_length_line()? {
                Some(len) => {
                    self.pending_len = Some(len);
                    len
                }
                None => return Ok(None),
            },
        };
        if self.buffer.len() < len {
            // Reserve only what has been announced and is under the limit.
            self.buffer.reserve(len - self.buffer.len());
            return Ok(None);
        }
        self.pending_len = None;
        Ok(Some(self.buffer.split_to(len).freeze()))
    }

    /// Call at end of stream: an error if it stopped inside a record.
    pub fn finish(&self) -> Result<(), RecordIoError> {
        if self.buffer.is_empty() && self.pending_len.is_none() {
            return Ok(());
        }
        Err(RecordIoError::Truncated {
            buffered: self.buffer.len(),
            expected: match self.pending_len {
                Some(len) => len.to_string(),
                None => "a length line".to_string(),
            },
        })
    }

    fn take_length_line(&mut self) -> Result<Option<usize>, RecordIoError> {
        let Some(newline) = self.buffer.iter().position(|&b| b == b'\n') else {
            if self.buffer.len() > MAX_LENGTH_DIGITS {
                return Err(RecordIoError::LengthLineTooLong {
                    prefix: printable(&self.buffer[..MAX_LENGTH_DIGITS]),
                });
            }
            return Ok(None);
        };
        let line = &self.buffer[..newline];
        if line.len() > MAX_LENGTH_DIGITS {
            return Err(RecordIoError::LengthLineTooLong {
                prefix: printable(&line[..MAX_LENGTH_DIGITS]),
            });
        }
        let length = parse_decimal(line).ok_or_else(|| RecordIoError::InvalidLength {
            line: printable(line),
        })?;
        if length == 0 {
            return Err(RecordIoError::EmptyRecord);
        }
        let max = self.max_record_len;
        let length = usize::try_from(length)
            .ok()
            .filter(|&len| len <= max)
            .ok_or(RecordIoError::RecordTooLarge { length, max })?;
        self.buffer.advance(newline + 1);
        Ok(Some(length))
    }
}

/// Strict: ASCII digits only, no sign, no spaces, no overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = (b as char).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Frames one record: `<len>\n<record>`.
pub fn encode_record(record: &[u8]) -> Vec<u8> {
    let mut framed = format!("{}\n", record.len()).into_bytes();
    framed.extend_from_slice(record);
    framed
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(decoder: &mut RecordIoDecoder) -> Result<Vec<Bytes>, RecordIoError> {
        let mut records = Vec::new();
        while let Some(record) = decoder.next_record()? {
            records.push(record);
        }
        Ok(records)
    }

    #[test]
    fn decodes_the_captured_mesos_stream() {
        let stream =
            include_bytes!("../../../fixtures/mesos/subscribe-stream-first-records.recordio");
        let mut decoder = RecordIoDecoder::default();
        decoder.push(stream);
        let records = decode_all(&mut decoder).expect("valid stream");
        assert_eq!(records.len(), 3);
        assert!(records[0].starts_with(br#"{"type":"SUBSCRIBED""#));
        assert_eq!(&records[1][..], br#"{"type":"HEARTBEAT"}"#);
        assert!(records[2].starts_with(br#"{"type":"OFFERS""#));
        assert_eq!(decoder.finish(), Ok(()));
    }

    #[test]
    fn rejects_an_oversized_length_without_waiting_for_the_body() {
        let mut decoder = RecordIoDecoder::new(1024);
        decoder.push(b"1025\n{");
        assert_eq!(
            decoder.next_record(),
            Err(RecordIoError::RecordTooLarge {
                length: 1025,
                max: 1024
            })
        );
        let mut decoder = RecordIoDecoder::default();
        decoder.push(b"18446744073709551615\n");
        assert!(matches!(
            decoder.next_record(),
            Err(RecordIoError::RecordTooLarge { .. })
        ));
    }

    #[test]
    fn rejects_garbage_length_lines() {
        for garbage in [
            &b"12a\n"[..],
            b"-5\n",
            b" 5\n",
            b"\n",
            b"+5\n",
            b"99999999999999999999\n",
        ] {
            let mut decoder = RecordIoDecoder::default();
            decoder.push(garbage);
            let err = decoder.next_record().expect_err("garbage");
            assert!(
                matches!(err, RecordIoError::InvalidLength { .. }),
                "{garbage:?}: {err}"
            );
        }
        let mut decoder = RecordIoDecoder::default();
        decoder.push(b"<html><body>502 Bad Gateway</body></html>");
        assert!(matches!(
            decoder.next_record(),
            Err(RecordIoError::LengthLineTooLong { .. })
        ));
        let mut decoder = RecordIoDecoder::default();
        decoder.push(b"0\n");
        assert_eq!(decoder.next_record(), Err(RecordIoError::EmptyRecord));
    }

    #[test]
    fn reports_a_stream_torn_inside_a_record() {
        let mut decoder = RecordIoDecoder::default();
        decoder.push(b"20\n{\"type\":\"HEART");
        assert_eq!(decoder.next_record(), Ok(None));
        let err = decoder.finish().expect_err("torn");
        assert_eq!(
            err,
            RecordIoError::Truncated {
                buffered: 14,
                expected: "20".into()
            }
        );
        let mut decoder = RecordIoDecoder::default();
        decoder.push(b"2");
        assert_eq!(decoder.next_record(), Ok(None));
        assert!(decoder.finish().is_err());
    }

    proptest! {
        #[test]
        fn any_chunking_yields_the_same_records(
            records in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..20),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let stream: Vec<u8> = records.iter().flat_map(|r| encode_record(r)).collect();
            let mut cut_points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            cut_points.push(stream.len());
            cut_points.sort_unstable();
            let mut decoder = RecordIoDecoder::default();
            let mut decoded = Vec::new();
            let mut start = 0;
            for end in cut_points {
                decoder.push(&stream[start..end]);
                start = end;
                decoded.extend(decode_all(&mut decoder).expect("valid stream").into_iter().map(|b| b.to_vec()));
            }
            prop_assert_eq!(decoded, records);
            prop_assert_eq!(decoder.finish(), Ok(()));
        }

        /// Fuzzing: any bytes, or a valid stream with bytes flipped,
        /// inserted or removed, in any chunking. Decoding never panics,
        /// never yields a record over the limit, and stops at the first
        /// error.
        #[test]
        fn any_bytes_decode_to_records_or_an_error(
            records in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..64), 0..6),
            garbage in prop::collection::vec(any::<u8>(), 0..96),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 0..6),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut stream: Vec<u8> = records.iter().flat_map(|r| encode_record(r)).collect();
            stream.extend_from_slice(&garbage);
            for (at, byte, how) in edits {
                let at = at.index(stream.len() + 1);
                match how {
                    0 if at < stream.len() => stream[at] ^= byte | 1,
                    1 => stream.insert(at, byte),
                    _ if at < stream.len() => { stream.remove(at); }
                    _ => {}
                }
            }
            let mut cut_points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            cut_points.push(stream.len());
            cut_points.sort_unstable();
            let max = 256;
            let mut decoder = RecordIoDecoder::new(max);
            let mut start = 0;
            'feed: for end in cut_points {
                decoder.push(&stream[start..end]);
                start = end;
                loop {
                    match decoder.next_record() {
                        Ok(Some(record)) => prop_assert!(!record.is_empty() && record.len() <= max),
                        Ok(None) => break,
                        Err(error) => {
                            prop_assert!(!error.to_string().is_empty());
                            break 'feed;
                        }
                    }
                }
            }
        }

        #[test]
        fn a_stream_cut_short_is_reported_as_truncated(
            records in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..100), 1..5),
            cut in any::<prop::sample::Index>(),
        ) {
            let stream: Vec<u8> = records.iter().flat_map(|r| encode_record(r)).collect();
            let end = cut.index(stream.len());
            let mut decoder = RecordIoDecoder::default();
            decoder.push(&stream[..end]);
            let decoded = decode_all(&mut decoder).expect("a valid prefix");
            let whole_records = records.iter().scan(0, |at, r| { *at += encode_record(r).len(); Some(*at) })
                .take_while(|&at| at <= end).count();
            prop_assert_eq!(decoded.len(), whole_records);
            let at_boundary = end == 0 || records.iter().scan(0, |at, r| { *at += encode_record(r).len(); Some(*at) }).any(|at| at == end);
            prop_assert_eq!(decoder.finish().is_ok(), at_boundary);
        }
    }
}
