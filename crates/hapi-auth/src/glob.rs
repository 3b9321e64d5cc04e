//! Dataset-id patterns: `*` matches any run of characters (including `/`, `:`, `+`,
//! which dataset ids such as `spase://SSA/NumericalData/...` contain); everything else
//! matches itself. No regex: a pattern is data, and this matcher is linear-ish with no
//! catastrophic cases.

/// Whether `text` matches `pattern` in full.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it is currently made to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            // Let the last star swallow one more byte and retry after it.
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn table() {
        let id = "spase://SSA/NumericalData/D3S/d3s_mtgs1_ngrm_science_ep_l1_bt_v1";
        for (pattern, text, want) in [
            ("*", "", true),
            ("*", id, true),
            ("", "", true),
            ("", "a", false),
            ("a", "a", true),
            ("a", "ab", false),
            ("ab", "a", false),
            (id, id, true),
            ("spase://SSA/*", id, true),
            ("spase://SSA/NumericalData/D3S/*_v1", id, true),
            ("spase://SSA/*/d3s_*", id, true),
            ("spase://SSA/*/d3s_*_v2", id, false),
            ("*mtgs1*", id, true),
            ("*mtgs2*", id, false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("a**b", "ab", true),
            ("*a", "bbba", true),
            ("*a", "bbab", false),
            ("a+b:c", "a+b:c", true),
            ("ä*", "äöü", true),
        ] {
            assert_eq!(matches(pattern, text), want, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn no_catastrophic_backtracking() {
        let text = "a".repeat(10_000);
        let pattern = format!("{}b", "*a".repeat(50));
        let t = std::time::Instant::now();
        assert!(!matches(&pattern, &text));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }
}
