//! Percent-encoding (RFC 3986 §2.1) and its form variant, once for every crate: the
//! HAPI query, the token endpoint's form body, HTTP Basic credentials, and the links
//! and redirects the server writes.
//!
//! Two decoders because the two grammars differ on `+`: in a HAPI query it is a plus
//! sign (dataset ids such as `A+B`, P-14); in `application/x-www-form-urlencoded`
//! it is a space.

use std::fmt::Write as _;

/// Decodes `%XX` escapes; `+` stays a plus sign. `None` for a `%` without two hex
/// digits or for bytes that are not UTF-8 once decoded.
pub fn decode(s: &str) -> Option<String> {
    decode_bytes(s.as_bytes(), false)
}

/// Decodes one `application/x-www-form-urlencoded` name or value: `+` is a space.
pub fn form_decode(s: &str) -> Option<String> {
    decode_bytes(s.as_bytes(), true)
}

fn decode_bytes(b: &[u8], plus_is_space: bool) -> Option<String> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                // Digit by digit: from_str_radix would also take a sign ("%+1").
                let hex = |k: usize| b.get(k).and_then(|&c| char::from(c).to_digit(16));
                let (hi, lo) = (hex(i + 1)?, hex(i + 2)?);
                // Both digits are below 16: the byte cannot overflow.
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Splits and decodes an `application/x-www-form-urlencoded` body or query into
/// `(name, value)` pairs, in order with repeats kept; `None` if any part is malformed.
pub fn form_pairs(s: &str) -> Option<Vec<(String, String)>> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            Some((form_decode(k)?, form_decode(v)?))
        })
        .collect()
}

/// Encodes everything but the unreserved characters (`A-Z a-z 0-9 - . _ ~`): safe in
/// any URL component, a form body and HTTP Basic credentials (which split at `:`).
pub fn encode(s: &str) -> String {
    encode_keeping(s, b"")
}

/// [`encode`] for a query value or a path that people read: `:` and `/` stay as they
/// are (RFC 3986 allows both in a query), so SPASE ids remain legible in links.
pub fn encode_query_value(s: &str) -> String {
    encode_keeping(s, b":/")
}

/// `application/x-www-form-urlencoded` encoding of one name or value (the WHATWG
/// algorithm: a space is `+`; `*`, `-`, `.`, `_` and alphanumerics stay), for form bodies
/// and HTTP Basic credentials (RFC 6749 §2.3.1), where some providers compare bytes.
pub fn form_encode(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b' ' => o.push('+'),
            b if b.is_ascii_alphanumeric() || b"*-._".contains(&b) => o.push(char::from(b)),
            b => {
                let _ = write!(o, "%{b:02X}");
            }
        }
    }
    o
}

fn encode_keeping(s: &str, keep: &[u8]) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            o.push(char::from(b));
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(decode("a+b%2Bc%2fd%3D%C3%A9").as_deref(), Some("a+b+c/d=é"));
        assert_eq!(form_decode("a+b%2Bc%2fd%3D%C3%A9").as_deref(), Some("a b+c/d=é"));
        for bad in ["%", "%4", "%zz", "%+1", "%FF", "%-1"] {
            assert_eq!(decode(bad), None, "{bad}");
            assert_eq!(form_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn form_pairs_keep_order_and_repeats() {
        let pairs = form_pairs("a=1&b=x+y&&a=%C3%A9&flag").unwrap();
        let want = [("a", "1"), ("b", "x y"), ("a", "é"), ("flag", "")];
        assert_eq!(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(), want);
        assert_eq!(form_pairs("a=%ZZ"), None);
    }

    #[test]
    fn encoding_round_trips() {
        assert_eq!(encode("a b+c/d:é"), "a%20b%2Bc%2Fd%3A%C3%A9");
        assert_eq!(encode_query_value("spase://SSA/x+y"), "spase://SSA/x%2By");
        assert_eq!(form_encode("a b+c/d=é~*"), "a+b%2Bc%2Fd%3D%C3%A9%7E*");
        for s in ["a b+c/d=é&%", "all/kinds+types:α☃", ""] {
            assert_eq!(decode(&encode(s)).as_deref(), Some(s));
            assert_eq!(form_decode(&encode(s)).as_deref(), Some(s));
            assert_eq!(decode(&encode_query_value(s)).as_deref(), Some(s));
            assert_eq!(form_decode(&form_encode(s)).as_deref(), Some(s));
        }
    }
}
