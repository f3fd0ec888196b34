//! Basic users' passwords, kept as argon2id PHC strings.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// A new argon2id hash of `password` (the crate's default cost), with a
/// fresh salt, in PHC form (`$argon2id$v=19$...`).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with its default parameters hashes any password")
        .to_string()
}

/// Whether `phc` is a hash this crate can check: an argon2 PHC string.
pub fn check_phc(phc: &str) -> Result<(), String> {
    let hash = PasswordHash::new(phc).map_err(|e| format!("not a PHC string: {e}"))?;
    match hash.algorithm.as_str() {
        "argon2id" | "argon2i" | "argon2d" => Ok(()),
        other => Err(format!("{other} is not argon2")),
    }
}

pub fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let phc = hash_password("s3cret");
        assert!(phc.starts_with("$argon2id$"));
        assert!(check_phc(&phc).is_ok());
        assert!(verify(&phc, "s3cret"));
        assert!(!verify(&phc, "s3cret "));
        assert!(check_phc("$2b$12$abc").is_err());
    }
}
