//! What matching needs to know about a request, and its canonical forms (computed once).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::net::IpAddr;

/// A request as the rule engine sees it. The router implements it over `http::Request`, the CLI
/// over a URL and flags, tests over plain values.
pub trait RequestView {
    fn method(&self) -> &str;
    /// The authority: the Host header (or the absolute-form target's authority), port included.
    fn host(&self) -> &str;
    /// The path as sent (percent-encoded), without the query.
    fn path(&self) -> &str;
    /// The raw query string after `?`, if any.
    fn query(&self) -> Option<&str>;
    /// Calls `f` on each value of header `name` (case-insensitive), one call per header line,
    /// until `f` returns true; returns whether it did.
    fn any_header(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool;
    /// The address of the connection's peer (never `X-Forwarded-For`).
    fn client_ip(&self) -> Option<IpAddr>;
}

/// The request forms the matchers compare against, derived once per request.
pub struct Prepared<'r, R: RequestView + ?Sized> {
    pub req: &'r R,
    /// Lowercased host without port or IPv6 brackets (Traefik's canonical host). Borrowed from
    /// the request when already canonical, as it almost always is.
    pub host: Cow<'r, str>,
    /// The path with percent-encoded unreserved characters decoded (Traefik's routing path);
    /// `None` when the path's percent-encoding is invalid (then no path matcher matches).
    pub path: Option<Cow<'r, str>>,
    query: OnceCell<Vec<(String, String)>>,
}

impl<'r, R: RequestView + ?Sized> Prepared<'r, R> {
    pub fn new(req: &'r R) -> Self {
        Prepared {
            host: canonical_host_cow(req.host()),
            path: routing_path_cow(req.path()),
            req,
            query: OnceCell::new(),
        }
    }

    /// Query parameters decoded like Go's `url.ParseQuery`, parsed on first use.
    pub fn query(&self) -> &[(String, String)] {
        self.query
            .get_or_init(|| parse_query(self.req.query().unwrap_or("")))
    }
}

/// Host without port, brackets or surrounding spaces, lowercased.
pub fn canonical_host(authority: &str) -> String {
    canonical_host_cow(authority).into_owned()
}

fn canonical_host_cow(authority: &str) -> Cow<'_, str> {
    let a = authority.trim();
    let host = if let Some(rest) = a.strip_prefix('[') {
        rest.split_once(']').map_or(a, |(h, _)| h)
    } else if a.matches(':').count() == 1 {
        a.split_once(':').map_or(a, |(h, _)| h)
    } else {
        a // no port, or a bare IPv6 address
    };
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// RFC 3986 reserved characters plus `%`: their encoded forms stay encoded in the routing path,
/// because decoding them would change the path's meaning (`%2F` is not a segment separator).
fn is_reserved(b: u8) -> bool {
    b":/?#[]@!$&'()*+,;=%".contains(&b)
}

/// Traefik's routing path: percent-encoded characters are decoded unless they are reserved.
/// `PathPrefix(`/foo bar`)` thus matches `/foo%20bar`, and `%2F` never becomes a `/`.
pub fn routing_path(path: &str) -> Option<String> {
    routing_path_cow(path).map(Cow::into_owned)
}

fn routing_path_cow(path: &str) -> Option<Cow<'_, str>> {
    if !path.contains('%') {
        return Some(Cow::Borrowed(path));
    }
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let hex = b.get(i + 1..i + 3)?;
        let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        if is_reserved(v) {
            // Keep the encoded form, normalised to upper case like Go's escaping.
            out.push(b'%');
            out.extend(hex.iter().map(u8::to_ascii_uppercase));
        } else {
            out.push(v);
        }
        i += 3;
    }
    Some(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

/// Go's `url.ParseQuery`: pairs split on `&`, `+` is a space, percent-decoding; pairs containing
/// `;` or invalid escapes are skipped.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty() && !p.contains(';'))
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((unescape_query(k)?, unescape_query(v)?))
        })
        .collect()
}

fn unescape_query(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(canonical_host("Example.COM:8080"), "example.com");
        assert_eq!(canonical_host("[::1]:80"), "::1");
        assert_eq!(canonical_host("[::1]"), "::1");
        assert_eq!(canonical_host("::1"), "::1");
        assert_eq!(canonical_host("example.com."), "example.com.");
    }

    #[test]
    fn routing_paths() {
        assert_eq!(routing_path("/foo%20bar").as_deref(), Some("/foo bar"));
        assert_eq!(routing_path("/a%2Fb").as_deref(), Some("/a%2Fb"));
        assert_eq!(routing_path("/a%2fb").as_deref(), Some("/a%2Fb"));
        assert_eq!(
            routing_path("/%7Bpath:css%7D").as_deref(),
            Some("/{path:css}")
        );
        assert_eq!(routing_path("/%25").as_deref(), Some("/%25"));
        assert_eq!(routing_path("/bad%2"), None);
        assert_eq!(routing_path("/%C3%A5").as_deref(), Some("/å"));
    }

    #[test]
    fn queries() {
        let q = parse_query("a=1&b=x+y&c&d=%41&bad=%zz&e=1;f=2&a=2");
        let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [("a", "1"), ("b", "x y"), ("c", ""), ("d", "A"), ("a", "2")]
        );
    }
}
