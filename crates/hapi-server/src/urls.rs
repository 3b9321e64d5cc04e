//! Which redirect targets stay on this server. A leaf module: every `Location` the
//! server builds from request data (the trailing-slash redirect, the login's return
//! address) passes [`is_local_path`] first, so an open redirect cannot come back in
//! one of them alone.
//!
//! Browsers are generous with `Location` values (WHATWG URL parsing): they drop
//! leading and trailing spaces and control characters, delete every tab, CR and LF
//! anywhere, read `\` as `/`, and take `//host` (or `/\host`) as another host. A
//! path is accepted only when none of that can apply, before or after one round of
//! percent-decoding (a proxy or a later hop may decode once).

/// Whether `target` is an absolute path on this origin (`/hapi`, `/hapi/info?dataset=x`)
/// that no browser, proxy or decoding step can turn into another host or scheme.
pub fn is_local_path(target: &str) -> bool {
    plain_local(target.as_bytes()) && plain_local(&percent_decode(target.as_bytes()))
}

/// Starts with exactly one `/` (never `//` or `/\`), and holds only visible ASCII
/// without `\`: no spaces, tabs, CR, LF or other controls that browsers strip.
fn plain_local(b: &[u8]) -> bool {
    b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && b.iter().all(|&c| c.is_ascii_graphic() && c != b'\\')
}

/// One round of `%XX` decoding; a `%` without two hex digits stays as it is.
fn percent_decode(b: &[u8]) -> Vec<u8> {
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) =
                (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c)))
        {
            // Both digits are below 16, so the byte fits.
            out.push(u8::try_from(h * 16 + l).unwrap_or(0));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::is_local_path;

    #[test]
    fn local_paths_pass() {
        for ok in [
            "/",
            "/hapi",
            "/hapi/info?dataset=ds1",
            "/hapi/info?dataset=spase%3A%2F%2FSSA%2Fx&parameters=a,b",
            "/public/data/hapi",
            "/a//b",
            "/hapi/data?x=%25",
        ] {
            assert!(is_local_path(ok), "{ok}");
        }
    }

    /// The tricks browsers apply to a `Location` (WHATWG URL parsing), raw and encoded.
    #[test]
    fn everything_that_leaves_the_origin_fails() {
        for bad in [
            "",
            "hapi",
            "//evil.example",
            "//evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "\t//evil.example",
            " //evil.example",
            " /hapi",
            "/hapi\r\nSet-Cookie: x=1",
            "/hapi\u{0}",
            "/hapi\u{7f}",
            "/%2Fevil.example",
            "/%2fevil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "%2F%2Fevil.example",
            "/%09/evil.example",
            "/%0A/evil.example",
            "/%0d/evil.example",
            "/hapi?x=%0d%0aSet-Cookie:%20x",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "https://evil.example/",
            "https:evil.example",
            "https:/\\evil.example",
            "http:/evil.example",
            "/hapi é",
            "/hapi x",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }
}
