//! Where the token comes from: `Authorization: Bearer` (RFC 6750 2.1), a named cookie, or a
//! named query parameter (RFC 6750 2.3: for browser WebSocket clients, which cannot set headers).

/// Result of looking for a token in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found<'a> {
    None,
    Token(&'a str),
    /// A token that had to be decoded (a query parameter's value).
    Owned(String),
    /// Several or unparseable credentials: treated as a malformed token, never guessed at.
    Ambiguous(&'static str),
}

/// Extracts the token of an `Authorization` header value. Several `Authorization` headers reach
/// a worker joined with `", "`; since a compact JWS never contains a comma, a comma means more
/// than one credential and the request is not trusted with either.
pub fn bearer(value: &str) -> Found<'_> {
    let value = value.trim_matches([' ', '\t']);
    let Some((scheme, rest)) = value.split_once([' ', '\t']) else {
        return Found::None;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Found::None;
    }
    let token = rest.trim_start_matches([' ', '\t']);
    if token.contains(',') {
        return Found::Ambiguous("several Authorization credentials");
    }
    if token.is_empty() {
        return Found::None;
    }
    Found::Token(token)
}

/// Finds cookie `name` in a `Cookie` header value (RFC 6265 5.4: `a=1; b=2`). A cookie named
/// twice with different values is ambiguous. Cookie values may be quoted.
pub fn cookie<'a>(header: &'a str, name: &str) -> Found<'a> {
    let mut found: Option<&str> = None;
    for pair in header.split(';') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        if k.trim() != name {
            continue;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        match found {
            Some(prev) if prev != v => {
                return Found::Ambiguous("cookie set twice with different values")
            }
            _ => found = Some(v),
        }
    }
    match found {
        Some(v) if !v.is_empty() => Found::Token(v),
        _ => Found::None,
    }
}

/// The token of a request: `Authorization: Bearer` first, then the named cookie (if any).
/// A non-Bearer `Authorization` (e.g. Basic) does not hide a cookie token.
pub fn find<'a>(
    authorization: Option<&'a str>,
    cookie_header: Option<&'a str>,
    cookie_name: Option<&str>,
) -> Found<'a> {
    match authorization.map(bearer) {
        Some(Found::None) | None => {}
        Some(found) => return found,
    }
    match (cookie_header, cookie_name) {
        (Some(header), Some(name)) => cookie(header, name),
        _ => Found::None,
    }
}

/// Finds parameter `name` in a query string (without the `?`). A parameter named twice with
/// different values is ambiguous. Percent-escapes are decoded (a JWS needs none, but a client
/// may escape its dots); a value that does not decode to UTF-8 is ambiguous too.
pub fn query_param(query: &str, name: &str) -> Found<'static> {
    let mut found: Option<String> = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != name {
            continue;
        }
        let Some(v) = percent_decode(v) else {
            return Found::Ambiguous("query parameter is not valid percent-encoded UTF-8");
        };
        match &found {
            Some(prev) if *prev != v => {
                return Found::Ambiguous("query parameter set twice with different values")
            }
            _ => found = Some(v),
        }
    }
    match found {
        Some(v) if !v.is_empty() => Found::Owned(v),
        _ => Found::None,
    }
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains(['%', '+']) {
        return Some(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            // application/x-www-form-urlencoded: `+` is a space, which no token holds.
            b'+' => {
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

/// The token of a request from any source: `Authorization: Bearer`, then the cookie, then the
/// query parameter (each only when configured).
pub fn find_any<'a>(
    authorization: Option<&'a str>,
    cookie_header: Option<&'a str>,
    cookie_name: Option<&str>,
    query: Option<&str>,
    param: Option<&str>,
) -> Found<'a> {
    match find(authorization, cookie_header, cookie_name) {
        Found::None => {}
        found => return found,
    }
    match (query, param) {
        (Some(q), Some(name)) => query_param(q, name),
        _ => Found::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameter() {
        assert_eq!(
            query_param("a=1&access_token=x.y.z", "access_token"),
            Found::Owned("x.y.z".into())
        );
        assert_eq!(
            query_param("access_token=x%2Ey.z", "access_token"),
            Found::Owned("x.y.z".into())
        );
        assert_eq!(query_param("xaccess_token=1", "access_token"), Found::None);
        assert_eq!(query_param("access_token=", "access_token"), Found::None);
        assert_eq!(query_param("t=a&t=a", "t"), Found::Owned("a".into()));
        assert!(matches!(query_param("t=a&t=b", "t"), Found::Ambiguous(_)));
        assert!(matches!(query_param("t=%zz", "t"), Found::Ambiguous(_)));
        assert_eq!(
            find_any(None, None, None, Some("t=q"), Some("t")),
            Found::Owned("q".into())
        );
        assert_eq!(
            find_any(Some("Bearer h"), None, None, Some("t=q"), Some("t")),
            Found::Token("h")
        );
        assert_eq!(find_any(None, None, None, Some("t=q"), None), Found::None);
    }

    #[test]
    fn authorization_then_cookie() {
        assert_eq!(
            find(Some("Bearer a"), Some("t=b"), Some("t")),
            Found::Token("a")
        );
        assert_eq!(
            find(Some("Basic x"), Some("t=b"), Some("t")),
            Found::Token("b")
        );
        assert_eq!(find(None, Some("t=b"), None), Found::None);
        assert_eq!(find(None, None, Some("t")), Found::None);
    }

    #[test]
    fn bearer_values() {
        assert_eq!(bearer("Bearer abc.def.ghi"), Found::Token("abc.def.ghi"));
        assert_eq!(bearer("bearer   abc"), Found::Token("abc"));
        assert_eq!(bearer("Basic dXNlcg=="), Found::None);
        assert_eq!(bearer("Bearer"), Found::None);
        assert_eq!(
            bearer("Bearer a.b.c, Bearer d.e.f"),
            Found::Ambiguous("several Authorization credentials")
        );
    }

    #[test]
    fn cookie_values() {
        assert_eq!(
            cookie("a=1; token=x.y.z; b=2", "token"),
            Found::Token("x.y.z")
        );
        assert_eq!(cookie("token=\"x.y.z\"", "token"), Found::Token("x.y.z"));
        assert_eq!(cookie("xtoken=1; tokenx=2", "token"), Found::None);
        assert_eq!(cookie("token=a; token=a", "token"), Found::Token("a"));
        assert!(matches!(
            cookie("token=a; token=b", "token"),
            Found::Ambiguous(_)
        ));
        assert_eq!(cookie("token=", "token"), Found::None);
    }
}
