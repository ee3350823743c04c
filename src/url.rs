//! The parts of a request's absolute URL the edge routes and forwards on, and the URL it forwards
//! to. Text in, text out: percent-encoding is never touched.

/// Scheme, authority and the rest (path and query, fragment dropped) of an absolute URL.
pub fn split_url(url: &str) -> (&str, &str, &str) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let tail = &rest[end..];
    let tail = tail.split_once('#').map_or(tail, |(t, _)| t);
    (scheme, &rest[..end], tail)
}

/// The path of an absolute URL, without query or fragment.
pub fn path_of(url: &str) -> &str {
    let (_, _, path_and_query) = split_url(url);
    path_and_query
        .split_once('?')
        .map_or(path_and_query, |(p, _)| p)
}

/// The URL a request is forwarded to: the origin base followed by the request's path and query,
/// byte for byte (percent-encoding untouched). Without an origin, the request's own URL.
pub fn upstream_url(origin: Option<&str>, request_url: &str) -> String {
    let Some(base) = origin else {
        return request_url.to_owned();
    };
    let after_scheme = request_url.find("://").map_or(0, |i| i + 3);
    let path_start = request_url[after_scheme..]
        .find(['/', '?'])
        .map_or(request_url.len(), |i| after_scheme + i);
    let tail = &request_url[path_start..];
    let tail = tail.split_once('#').map_or(tail, |(t, _)| t);
    match tail.strip_prefix('?') {
        Some(q) => format!("{base}/?{q}"),
        None if tail.is_empty() => format!("{base}/"),
        None => format!("{base}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts() {
        assert_eq!(
            split_url("https://api.example.com/a%2Fb?q=1#frag"),
            ("https", "api.example.com", "/a%2Fb?q=1")
        );
        assert_eq!(split_url("http://h:8080?x"), ("http", "h:8080", "?x"));
        assert_eq!(split_url("https://h#f"), ("https", "h", ""));
        assert_eq!(
            path_of("https://h/_betaroute/api/decision?x#y"),
            "/_betaroute/api/decision"
        );
        assert_eq!(path_of("https://h?x=1"), "");
        assert_eq!(path_of("https://h"), "");
    }

    #[test]
    fn upstream_urls_keep_path_and_query_bytes() {
        let o = Some("http://127.0.0.1:8080");
        assert_eq!(
            upstream_url(o, "https://api.example.com/a%2Fb/%E2%9C%93?q=%20x&y"),
            "http://127.0.0.1:8080/a%2Fb/%E2%9C%93?q=%20x&y"
        );
        assert_eq!(
            upstream_url(o, "https://api.example.com"),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            upstream_url(o, "https://api.example.com?x=1"),
            "http://127.0.0.1:8080/?x=1"
        );
        assert_eq!(
            upstream_url(Some("http://o/base"), "https://h/p#frag"),
            "http://o/base/p"
        );
        assert_eq!(upstream_url(None, "https://h/p?q"), "https://h/p?q");
    }
}
