//! Random identifiers and secrets, and their slow hashes (argon2id, default parameters).
//! Randomness comes from aws-lc-rs, the crypto stack jsonwebtoken already uses.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).map_err(|_| "the system random generator failed".to_owned())?;
    Ok(out)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// A client id like the SWE SSO's: 32 lowercase hex digits (128 random bits).
pub(crate) fn new_client_id() -> Result<String, String> {
    Ok(hex(&random_bytes::<16>()?))
}

/// Length of a generated secret: 43 alphanumerics carry 256 bits.
const SECRET_LEN: usize = 43;

/// A client secret like the SWE SSO's example: alphanumerics only, so it needs no
/// escaping in a shell, a form body or a Basic header.
pub(crate) fn new_secret() -> Result<String, String> {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::with_capacity(SECRET_LEN);
    while s.len() < SECRET_LEN {
        for b in random_bytes::<64>()? {
            // Rejection sampling: 248 = 4 × 62, so every character is equally likely.
            if b < 248 && s.len() < SECRET_LEN {
                s.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(s)
}

/// The argon2id PHC string of `secret`, with a fresh 16-byte salt.
pub(crate) fn hash(secret: &str) -> Result<String, String> {
    let salt = random_bytes::<16>()?;
    Argon2::default()
        .hash_password_with_salt(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// Whether `secret` matches the PHC string `phc` (constant time in the hash comparison).
pub(crate) fn verify(secret: &str, phc: &str) -> bool {
    Argon2::default().verify_password(secret.as_bytes(), phc).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() -> Result<(), String> {
        let id = new_client_id()?;
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        let s = new_secret()?;
        assert_eq!(s.len(), SECRET_LEN);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(new_secret()?, s);
        Ok(())
    }

    #[test]
    fn hash_round_trip() -> Result<(), String> {
        let h = hash("PRPATrPBjgo2y3akZ4f28a1cb9cDDsPRP9Bjgo2fe")?;
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("PRPATrPBjgo2y3akZ4f28a1cb9cDDsPRP9Bjgo2fe"));
        assert!(verify("PRPATrPBjgo2y3akZ4f28a1cb9cDDsPRP9Bjgo2fe", &h));
        assert!(!verify("PRPATrPBjgo2y3akZ4f28a1cb9cDDsPRP9Bjgo2fE", &h));
        assert!(!verify("x", "not a hash"));
        Ok(())
    }
}
