//! Passwords: argon2id with the crate's defaults (19 MiB, 2 passes, OWASP's minimum), on
//! blocking threads, a few at a time so that a burst of log-ins cannot take every core or much
//! memory. Unknown addresses are checked against a dummy hash, so that a log-in costs the same
//! time whether or not the address has an account.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

/// Shortest password accepted (DESIGN §10), in characters.
pub const MIN_CHARS: usize = 12;
/// Longest password accepted, in characters: enough for any passphrase, bounded work.
pub const MAX_CHARS: usize = 256;

/// Hashes and checks passwords.
pub struct Passwords {
    dummy: String,
    permits: Arc<Semaphore>,
}

/// What is wrong with a new password, in French.
pub fn check_new(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n < MIN_CHARS {
        Err("Le mot de passe doit compter au moins 12 caractères.")
    } else if n > MAX_CHARS {
        Err("Le mot de passe ne doit pas dépasser 256 caractères.")
    } else {
        Ok(())
    }
}

fn hash_now(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

fn verify_now(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

impl Passwords {
    /// Prepares the dummy hash (one argon2 run).
    pub async fn new() -> anyhow::Result<Passwords> {
        let dummy = tokio::task::spawn_blocking(|| hash_now("monavis dummy password, never matches")).await??;
        let permits = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
        Ok(Passwords { dummy, permits: Arc::new(Semaphore::new(permits)) })
    }

    /// The PHC string of `password` (argon2id, random salt).
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        Ok(tokio::task::spawn_blocking(move || hash_now(&password)).await??)
    }

    /// Whether `password` matches `phc`; with no hash (unknown address), the same work against
    /// the dummy hash, and false.
    pub async fn verify(&self, password: String, phc: Option<String>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else { return false };
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy.clone());
        let ok = tokio::task::spawn_blocking(move || verify_now(&password, &phc)).await.unwrap_or(false);
        ok && known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let p = Passwords::new().await.unwrap();
        let a = p.hash("correct horse battery".into()).await.unwrap();
        let b = p.hash("correct horse battery".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(p.verify("correct horse battery".into(), Some(a.clone())).await);
        assert!(!p.verify("correct horse batterY".into(), Some(a)).await);
        assert!(!p.verify("monavis dummy password, never matches".into(), None).await, "the dummy never lets in");
        assert!(!p.verify("x".into(), Some("not a hash".into())).await);
    }

    #[test]
    fn new_password_rules_count_characters() {
        assert!(check_new("onze-caract").is_err());
        assert!(check_new("douze-caract").is_ok());
        assert!(check_new("éééééééééééé").is_ok(), "12 accented characters are 24 bytes but 12 characters");
        assert!(check_new(&"x".repeat(257)).is_err());
    }
}
