//! The secrets behind accounts, sessions and keys: Argon2id password hashes, random tokens, and
//! the SHA-256 under which a token is stored (the database never holds a usable secret).

use crate::domain::Password;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// Every key starts with this, so that a leaked one is recognisable (secret scanners, logs).
pub const KEY_PREFIX: &str = "rc_";

/// 32 random bytes: 43 base64url characters.
const TOKEN_BYTES: usize = 32;
const TOKEN_CHARS: usize = 43;

/// An Argon2id PHC string (`$argon2id$v=19$m=…`) of `password`, with a fresh random salt.
pub fn hash_password(password: &Password) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_str().as_bytes(), &salt)
        // Only a salt or parameters out of range fail, and both are the crate's defaults.
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// Whether `password` is the one `phc` was made from. A stored hash that cannot be read
/// matches nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of no one's password: a login for an unknown name is checked against it, so that it
/// takes as long as a wrong password for a real name and the two cannot be told apart by time.
pub fn dummy_hash() -> &'static str {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(random_token().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    });
    &DUMMY
}

/// 32 random bytes as 43 base64url characters (a session cookie's value).
pub fn random_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new machine key, `rc_` + 43 base64url characters.
pub fn new_key() -> String {
    format!("{KEY_PREFIX}{}", random_token())
}

/// Whether `s` has a key's shape (a header that does not is refused before any lookup).
pub fn looks_like_key(s: &str) -> bool {
    s.strip_prefix(KEY_PREFIX).is_some_and(|rest| {
        rest.len() == TOKEN_CHARS
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Whether `s` has a session token's shape.
pub fn looks_like_token(s: &str) -> bool {
    s.len() == TOKEN_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// How a token or key is stored and looked up: the lower-case hex SHA-256 of its text.
pub fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_a_fresh_salt() {
        let p = Password::parse("correct horse battery").unwrap();
        let a = hash_password(&p);
        let b = hash_password(&p);
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterY", &a));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert!(!verify_password("correct horse battery", dummy_hash()));
    }

    #[test]
    fn keys_are_prefixed_random_and_recognisable() {
        let k = new_key();
        assert_eq!(k.len(), 3 + 43);
        assert!(looks_like_key(&k), "{k}");
        assert_ne!(k, new_key());
        assert!(!looks_like_key(&k[..45]));
        assert!(!looks_like_key(&format!("xx_{}", &k[3..])));
        assert!(!looks_like_key(&format!("{}!", &k[..45])));
        assert!(looks_like_token(&random_token()));
        assert!(!looks_like_token(&k));
    }

    #[test]
    fn tokens_are_stored_as_sha256_hex() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
