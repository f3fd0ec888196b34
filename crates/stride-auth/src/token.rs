//! Bearer tokens: 256 random bits, shown once when made; the file keeps
//! their SHA-256. A fast hash is enough for a secret of that entropy (no
//! one guesses a preimage), and it keeps checking a token on every request
//! cheap, unlike a password hash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// What every token starts with, so a leaked one is recognisable (secret
/// scanners key on such prefixes).
const MARK: &str = "stride_";

/// A token's secret. Shown once, never stored.
pub struct Token(String);

impl Token {
    pub fn generate() -> Token {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Token(format!("{MARK}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn secret(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(secret: &str) -> TokenHash {
        TokenHash(Sha256::digest(secret.as_bytes()).into())
    }

    /// Reads the file's form: 64 lowercase or uppercase hex digits.
    pub fn parse_hex(text: &str) -> Option<TokenHash> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let digit = |b: u8| (b as char).to_digit(16);
            out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Some(TokenHash(out))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Equal in constant time: how long a comparison takes says nothing of
    /// how much of a guess was right.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// The digest's first 8 bytes: where a token is filed for lookup.
    /// Finding it there may take a time that depends on them, which tells
    /// a guesser only about the hash of the guess, not about any secret.
    pub fn bucket(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(first)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_marked_and_hash_round_trips_through_hex() {
        let a = Token::generate();
        let b = Token::generate();
        assert!(a.secret().starts_with(MARK));
        assert_eq!(a.secret().len(), MARK.len() + 43);
        assert_ne!(a.secret(), b.secret());
        let hex = a.hash().to_hex();
        assert!(TokenHash::parse_hex(&hex).unwrap().matches(&a.hash()));
        assert!(!a.hash().matches(&b.hash()));
        assert!(TokenHash::parse_hex(&hex[1..]).is_none());
        assert!(TokenHash::parse_hex(&format!("{}g", &hex[1..])).is_none());
        assert!(!format!("{a:?}").contains(a.secret()));
    }
}
