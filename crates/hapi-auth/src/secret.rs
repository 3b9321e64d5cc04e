//! Random identifiers and secrets, and their hashes: argon2id (default parameters) for
//! passwords people choose, PBKDF2-HMAC-SHA256 for the 256-bit client secrets we generate
//! (docs/decisions.md). Both are PHC strings, so a stored hash says how to check it.
//! Randomness comes from aws-lc-rs, the crypto stack jsonwebtoken already uses.

use std::num::NonZeroU32;

use argon2::Argon2;
use aws_lc_rs::pbkdf2;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

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

/// The argon2id PHC string of a password (default parameters), with a fresh 16-byte
/// salt. Hashed in [`with_memory`]'s working memory, like every check.
pub(crate) fn hash(secret: &str) -> Result<String, String> {
    hash_with_salt(secret, &random_bytes::<16>()?)
}

fn hash_with_salt(secret: &str, salt: &[u8]) -> Result<String, String> {
    let params = argon2::Params::default();
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    with_memory(params.block_count(), |memory| {
        Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params.clone())
            .hash_password_into_with_memory(secret.as_bytes(), salt, &mut out, memory)
    })
    .map_err(|e| format!("hashing failed: {e}"))?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// PHC prefix of client-secret hashes (the RustCrypto `pbkdf2` crate's notation).
const PBKDF2_PREFIX: &str = "$pbkdf2-sha256$i=1000,l=32$";
/// A generated secret has 256 bits: no iteration count makes guessing it harder than
/// that, so 1,000 (SP 800-132's floor) costs ~0.3 ms and no memory, where Argon2 costs
/// tens of ms and 19 MiB per check.
const PBKDF2_ROUNDS: NonZeroU32 = NonZeroU32::new(1000).unwrap();

/// The PBKDF2-HMAC-SHA256 PHC string of a generated client secret, fresh 16-byte salt.
pub(crate) fn hash_client_secret(secret: &str) -> Result<String, String> {
    let salt = random_bytes::<16>()?;
    let mut out = [0u8; 32];
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, PBKDF2_ROUNDS, &salt, secret.as_bytes(), &mut out);
    Ok(format!("{PBKDF2_PREFIX}{}${}", STANDARD_NO_PAD.encode(salt), STANDARD_NO_PAD.encode(out)))
}

/// Whether checking against `phc` runs Argon2 (slow, ~19 MiB): the hashes of passwords,
/// and of client secrets created before PBKDF2 (docs/decisions.md).
pub(crate) fn is_slow(phc: &str) -> bool {
    !phc.starts_with(PBKDF2_PREFIX)
}

/// Whether `secret` matches the PHC string `phc` (constant time in the hash comparison).
pub(crate) fn verify(secret: &str, phc: &str) -> bool {
    match phc.strip_prefix(PBKDF2_PREFIX) {
        Some(rest) => {
            let Some((salt, hash)) = rest.split_once('$') else { return false };
            let (Ok(salt), Ok(hash)) = (STANDARD_NO_PAD.decode(salt), STANDARD_NO_PAD.decode(hash)) else {
                return false;
            };
            hash.len() == 32
                && pbkdf2::verify(pbkdf2::PBKDF2_HMAC_SHA256, PBKDF2_ROUNDS, &salt, secret.as_bytes(), &hash)
                    .is_ok()
        }
        None => verify_argon2(secret.as_bytes(), phc),
    }
}

/// Argon2 needs `m_cost` KiB of working memory per check (19 MiB by default). Freed the
/// usual way, glibc kept it: a freed mapping of that size raises its mmap threshold, so
/// the next ones came from per-thread heaps it never gives back (a login flood left
/// 1.3 GB, then 76 MB with four buffers pooled). glibc always maps a request above
/// 32 MiB (its largest dynamic threshold) and unmaps it on free, so each check reserves
/// that much address space and touches only the blocks it uses: the process is back at
/// its baseline as soon as the checks end. Other allocators only see a large request.
const RESERVE_BYTES: usize = 33 << 20;

/// Runs `f` on `blocks` zeroed blocks of fresh working memory, returned to the system after.
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    let reserve = (RESERVE_BYTES / argon2::Block::SIZE).max(blocks);
    let mut memory: Vec<argon2::Block> = Vec::with_capacity(reserve);
    memory.resize(blocks, argon2::Block::default());
    f(&mut memory)
}

/// Stored hashes are ours, but a corrupt one must not make us allocate without end.
const MAX_M_COST_KIB: usize = 256 * 1024;

fn verify_argon2(secret: &[u8], phc: &str) -> bool {
    use argon2::password_hash::phc::PasswordHash;
    let Ok(h) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (&h.salt, &h.hash) else { return false };
    let (Ok(params), Ok(algorithm)) =
        (argon2::Params::try_from(&h), argon2::Algorithm::try_from(h.algorithm.as_str()))
    else {
        return false;
    };
    let Ok(version) = h.version.map_or(Ok(argon2::Version::default()), argon2::Version::try_from) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_M_COST_KIB {
        return false;
    }
    let mut out = vec![0u8; expected.len()];
    with_memory(blocks, |memory| {
        Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            secret,
            salt.as_ref(),
            &mut out,
            memory,
        )
    })
    .is_ok()
        && aws_lc_rs::constant_time::verify_slices_are_equal(&out, expected.as_ref()).is_ok()
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
        assert!(is_slow(&h));
        Ok(())
    }

    #[test]
    fn our_argon2id_strings_are_the_crates_own() {
        use argon2::PasswordHasher;
        let salt = b"0123456789abcdef";
        let ours = hash_with_salt("correct horse", salt).unwrap();
        let theirs = Argon2::default().hash_password_with_salt(b"correct horse", salt).unwrap().to_string();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn argon2_hashes_of_any_parameters_verify() {
        use argon2::PasswordHasher;
        let argon = |m: u32, t: u32, alg| {
            let params = argon2::Params::new(m, t, 1, Some(32)).unwrap();
            Argon2::new(alg, argon2::Version::V0x13, params)
                .hash_password_with_salt(b"hunter2", b"0123456789abcdef")
                .unwrap()
                .to_string()
        };
        for h in [
            argon(64, 1, argon2::Algorithm::Argon2id),
            argon(512, 2, argon2::Algorithm::Argon2i),
            argon(8, 3, argon2::Algorithm::Argon2d),
        ] {
            assert!(verify("hunter2", &h), "{h}");
            assert!(!verify("hunter3", &h), "{h}");
        }
        // A stored hash asking for 4 GiB is refused, not allocated.
        let huge = argon(64, 1, argon2::Algorithm::Argon2id).replace("m=64", "m=4194304");
        assert!(!verify("hunter2", &huge), "{huge}");
    }

    #[test]
    fn client_secret_hash_round_trip() -> Result<(), String> {
        let s = new_secret()?;
        let h = hash_client_secret(&s)?;
        assert!(h.starts_with("$pbkdf2-sha256$i=1000,l=32$"), "{h}");
        assert!(!h.contains(&s));
        assert_ne!(hash_client_secret(&s)?, h, "salted");
        assert!(!is_slow(&h));
        assert!(verify(&s, &h));
        assert!(!verify(&format!("{s}x"), &h));
        assert!(!verify("", &h));
        // Truncated or tampered strings are a mismatch, not a panic.
        assert!(!verify(&s, &h[..h.len() - 4]));
        assert!(!verify(&s, &format!("{h}AAAA")));
        assert!(!verify(&s, "$pbkdf2-sha256$i=1000,l=32$"));
        Ok(())
    }
}
