//! A request path as Go's `net/url` holds it, because Traefik's path middlewares are written
//! against it: `Path` (decoded bytes) and `RawPath` (the encoded form, kept only when it differs
//! from Go's own encoding of `Path`). What is forwarded is `EscapedPath()`. Implemented from the
//! Go standard library's documented behaviour (`url.setPath`, `EscapedPath`, `JoinPath`,
//! `PathUnescape`), so that stripping or replacing a path gives Traefik's bytes.

/// A path in Go's two forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoPath {
    /// Decoded (`URL.Path`): bytes, not necessarily UTF-8.
    pub path: Vec<u8>,
    /// Encoded (`URL.RawPath`), empty when Go's encoding of `path` gives it back.
    pub raw: String,
}

/// `%` not followed by two hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEscape(pub String);

impl std::fmt::Display for BadEscape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid URL escape {:?}", self.0)
    }
}

impl GoPath {
    /// `url.setPath(p)`: the path of an encoded request target.
    pub fn from_escaped(p: &str) -> Result<GoPath, BadEscape> {
        let path = unescape(p)?;
        let raw = if escape(&path) == p {
            String::new()
        } else {
            p.to_owned()
        };
        Ok(GoPath { path, raw })
    }

    /// `URL.EscapedPath()`: `raw` when it is a valid encoding of `path`, else Go's encoding.
    pub fn escaped(&self) -> String {
        if !self.raw.is_empty() && valid_encoded(&self.raw) {
            if let Ok(p) = unescape(&self.raw) {
                if p == self.path {
                    return self.raw.clone();
                }
            }
        }
        if self.path == b"*" {
            return "*".into();
        }
        escape(&self.path)
    }

    /// `URL.JoinPath()` with nothing to join: the escaped path cleaned (`path.Join`: `.`, `..`
    /// and repeated slashes resolved), keeping a trailing slash.
    pub fn joined(&self) -> Result<GoPath, BadEscape> {
        let e = self.escaped();
        let p = if e.starts_with('/') {
            clean(&e)
        } else {
            clean(&format!("/{e}"))[1..].to_owned()
        };
        let p = if e.ends_with('/') && !p.ends_with('/') {
            p + "/"
        } else {
            p
        };
        GoPath::from_escaped(&p)
    }
}

/// `unescape(s, encodePath)`: `%XX` decoded, `+` kept.
pub fn unescape(s: &str) -> Result<Vec<u8>, BadEscape> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => {
                    let end = (i + 3).min(b.len());
                    return Err(BadEscape(String::from_utf8_lossy(&b[i..end]).into_owned()));
                }
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Go's `shouldEscape(c, encodePath)`.
fn should_escape(c: u8) -> bool {
    !(c.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&c))
}

/// `escape(s, encodePath)`.
pub fn escape(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s {
        if should_escape(c) {
            out.push_str(&format!("%{c:02X}"));
        } else {
            out.push(c as char);
        }
    }
    out
}

/// `validEncoded(s, encodePath)`.
fn valid_encoded(s: &str) -> bool {
    s.bytes()
        .all(|c| b"!$&'()*+,;=:@[]%".contains(&c) || !should_escape(c))
}

/// Go's `net.SplitHostPort`: host and port of `host:port` or `[v6]:port`; `None` without a
/// port (a bare address, or an IPv6 address without brackets).
pub fn split_host_port(addr: &str) -> Option<(&str, &str)> {
    if let Some(rest) = addr.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        return Some((h, after.strip_prefix(':')?));
    }
    let (h, p) = addr.rsplit_once(':')?;
    (!h.contains(':')).then_some((h, p))
}

/// Go's `path.Clean` on a rooted path.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_url_paths() {
        let p = GoPath::from_escaped("/a%2Fb").unwrap();
        assert_eq!(
            (p.path.as_slice(), p.raw.as_str()),
            (&b"/a/b"[..], "/a%2Fb")
        );
        assert_eq!(p.escaped(), "/a%2Fb");
        let p = GoPath::from_escaped("/a%20b").unwrap();
        assert_eq!(p.raw, "", "Go's own encoding");
        assert_eq!(p.escaped(), "/a%20b");
        // A raw path that no longer encodes the path is dropped for Go's encoding.
        let mut p = GoPath::from_escaped("/x%2Fy").unwrap();
        p.path = b"/z".to_vec();
        assert_eq!(p.escaped(), "/z");
        assert_eq!(GoPath::from_escaped("/%zz").unwrap_err().0, "%zz");
        assert_eq!(escape("/ä b".as_bytes()), "/%C3%A4%20b");
        assert_eq!(escape(b"/a!*"), "/a%21%2A");
        assert_eq!(GoPath::from_escaped("/a!*").unwrap().escaped(), "/a!*");
        let j = |s: &str| GoPath::from_escaped(s).unwrap().joined().unwrap().escaped();
        assert_eq!(j("/a//b/./c/../d/"), "/a/b/d/");
        assert_eq!(j("/../x"), "/x");
        assert_eq!(j("/"), "/");
    }
}
