//! Secrets handed to a browser or a mailbox (session cookies, confirmation and reset links):
//! 32 random bytes, shown once, stored only as their SHA-256, never printed by `Debug`.

use sha2::{Digest, Sha256};

/// A fresh random secret, as it travels (64 lower-case hex characters).
pub struct SecretToken(String);

impl SecretToken {
    /// 256 random bits from the operating system.
    pub fn generate() -> SecretToken {
        let mut bytes = [0u8; 32];
        // getrandom fails only when the OS has no entropy source at all; then nothing here can be
        // safe, and a panic (500 for this one request) is the right answer.
        getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
        SecretToken(hex::encode(bytes))
    }

    /// The secret itself, to put in a cookie or a link. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps.
    pub fn hash(&self) -> [u8; 32] {
        hash(&self.0)
    }
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(***)")
    }
}

/// The SHA-256 of a secret as received (cookie value, `jeton` parameter).
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `token` has the shape of our secrets (64 hex characters): anything else is refused
/// without a store lookup.
pub fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The hash of `token` if it has the shape of our secrets (a link's `jeton`, a cookie).
pub fn hash_if_well_formed(token: &str) -> Option<[u8; 32]> {
    well_formed(token).then(|| hash(token))
}

/// Compares two short strings in constant time (CSRF tokens).
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_hidden_from_debug() {
        let (a, b) = (SecretToken::generate(), SecretToken::generate());
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.hash(), hash(a.expose()));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn same_compares_whole_strings() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "a"));
    }
}
