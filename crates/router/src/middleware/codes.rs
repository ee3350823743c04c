//! Traefik's HTTP status code ranges (`types.HTTPCodeRanges`): `"500-599"`, `"404"`, as the
//! `retry` and `errors` middlewares take them.

/// Inclusive ranges of status codes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeRanges(pub Vec<(u16, u16)>);

impl CodeRanges {
    /// Each entry `low-high` or one code; the error names the entry as Go's `strconv.Atoi`
    /// would fail on it.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<CodeRanges, String> {
        let mut out = Vec::new();
        for e in entries {
            let e = e.as_ref();
            let mut parts = e.split('-');
            let low = parts.next().unwrap_or_default();
            let high = parts.next().unwrap_or(low);
            let code = |s: &str| {
                s.parse::<u16>()
                    .map_err(|_| format!("status code range {e:?}: {s:?} is not a number"))
            };
            out.push((code(low)?, code(high)?));
        }
        Ok(CodeRanges(out))
    }

    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|(l, h)| (*l..=*h).contains(&code))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_traefik_reads_them() {
        let r = CodeRanges::parse(&["500-599", "404", "418-418"]).unwrap();
        assert!(r.contains(500) && r.contains(599) && r.contains(404) && r.contains(418));
        assert!(!r.contains(499) && !r.contains(600) && !r.contains(403));
        assert!(CodeRanges::parse(&["5xx"]).unwrap_err().contains("\"5xx\""));
        assert!(CodeRanges::parse(&["500-"]).is_err());
        // Go reads only the first two parts of "500-550-599".
        assert!(CodeRanges::parse(&["500-550-599"]).unwrap().contains(550));
    }
}
