//! Which client-sent headers are routing headers, and so are always removed at the edge.
//!
//! HTTP field names are case-insensitive, and many servers and frameworks (CGI, NGINX with
//! `underscores_in_headers`, WSGI) fold `_` into `-`; a client could otherwise smuggle
//! `x_rikstv_beta` past a filter that only compares exact names. We compare on a canonical form:
//! ASCII lowercase with every `_` read as `-`.

/// The set of routing header names, compared in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderPolicy {
    canonical: Vec<String>,
}

impl HeaderPolicy {
    pub fn new<I, S>(names: I) -> HeaderPolicy
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut canonical: Vec<String> = names.into_iter().map(|n| canonical(n.as_ref())).collect();
        canonical.sort();
        canonical.dedup();
        HeaderPolicy { canonical }
    }

    /// Whether a header with this name must be stripped from client requests.
    pub fn is_routing_header(&self, name: &str) -> bool {
        // Cheap reject first: lengths differ for almost every header.
        self.canonical.iter().any(|c| {
            c.len() == name.len() && c.bytes().zip(name.bytes()).all(|(c, n)| c == fold(n))
        })
    }
}

impl HeaderPolicy {
    /// Every lowercase spelling the policy matches (each `-` written as `-` or `_`), when there
    /// are at most `limit` of them. A caller whose header store already ignores case (the Fetch
    /// API's `Headers`) can then delete these few names instead of scanning every header.
    pub fn spellings(&self, limit: usize) -> Option<Vec<String>> {
        let mut out = Vec::new();
        for c in &self.canonical {
            let dashes: Vec<usize> = c.match_indices('-').map(|(i, _)| i).collect();
            if dashes.len() >= usize::BITS as usize || out.len() + (1usize << dashes.len()) > limit
            {
                return None;
            }
            for mask in 0..1usize << dashes.len() {
                let mut bytes = c.clone().into_bytes();
                for (bit, &at) in dashes.iter().enumerate() {
                    if mask & (1 << bit) != 0 {
                        bytes[at] = b'_';
                    }
                }
                out.push(String::from_utf8(bytes).expect("ASCII in, ASCII out"));
            }
        }
        Some(out)
    }
}

fn fold(b: u8) -> u8 {
    if b == b'_' {
        b'-'
    } else {
        b.to_ascii_lowercase()
    }
}

fn canonical(name: &str) -> String {
    name.bytes().map(|b| fold(b) as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_and_underscore_variant() {
        let p = HeaderPolicy::new(["X-RiksTV-Beta"]);
        for name in [
            "X-RiksTV-Beta",
            "x-rikstv-beta",
            "X-RIKSTV-BETA",
            "x_rikstv_beta",
            "X_RiksTV-Beta",
            "x-rikstv_beta",
        ] {
            assert!(p.is_routing_header(name), "{name}");
        }
        for name in [
            "x-rikstv-beta2",
            "x-rikstv",
            "authorization",
            "x-rikstv-betb",
            "",
        ] {
            assert!(!p.is_routing_header(name), "{name}");
        }
    }

    #[test]
    fn spellings_are_exactly_what_the_policy_matches() {
        let p = HeaderPolicy::new(["X-RiksTV-Beta", "X-Sig"]);
        let mut s = p.spellings(64).unwrap();
        s.sort();
        assert_eq!(
            s,
            [
                "x-rikstv-beta",
                "x-rikstv_beta",
                "x-sig",
                "x_rikstv-beta",
                "x_rikstv_beta",
                "x_sig"
            ]
        );
        assert!(s.iter().all(|n| p.is_routing_header(n)));
        // Too many to delete one by one: the caller scans instead.
        assert_eq!(HeaderPolicy::new(["a-b-c-d-e-f-g"]).spellings(32), None);
    }

    #[test]
    fn configured_name_with_underscore_is_canonical_too() {
        let p = HeaderPolicy::new(["X_Cohort", "x-cohort"]);
        assert!(p.is_routing_header("x-cohort") && p.is_routing_header("X_COHORT"));
    }
}
