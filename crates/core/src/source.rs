//! Where the token comes from: `Authorization: Bearer` (RFC 6750 2.1) or a named cookie.

/// Result of looking for a token in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found<'a> {
    None,
    Token(&'a str),
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

#[cfg(test)]
mod tests {
    use super::*;

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
