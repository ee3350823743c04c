//! `errors` (Traefik's `pkg/middlewares/customerrors`): a response whose status is in `status`
//! is replaced by a page of another service, with the original status (or its
//! `statusRewrites` target).
//!
//! Pure here: which statuses are caught and what they become ([`Errors::catch`]), the page's
//! request target ([`Errors::page_target`]) and headers ([`Errors::page_headers`]). The proxy
//! sends that GET to the service and streams its answer.

use http::header::{HeaderMap, HeaderName};

use super::codes::CodeRanges;

#[derive(Debug, Clone)]
pub struct Errors {
    pub status: CodeRanges,
    /// In the order written (Traefik's map has none: overlapping keys are its undefined case).
    pub rewrites: Vec<(CodeRanges, u16)>,
    /// The page's service, qualified by the middleware's provider.
    pub service: String,
    pub query: String,
    /// `errorRequestHeaders`: `None` sends all the request's headers.
    pub request_headers: Option<Vec<HeaderName>>,
}

/// What the page request needs from the original request.
#[derive(Debug, Clone)]
pub struct Original {
    /// `scheme://host/path?query` as the client asked (the `{url}` placeholder).
    pub url: String,
    pub host: String,
    pub headers: HeaderMap,
}

impl Errors {
    /// For a caught status: the status the client gets, and the backend's.
    pub fn catch(&self, code: u16) -> Option<(u16, u16)> {
        if (100..200).contains(&code) || !self.status.contains(code) {
            return None;
        }
        let to = self
            .rewrites
            .iter()
            .find(|(r, _)| r.contains(code))
            .map_or(code, |(_, to)| *to);
        Some((to, code))
    }

    /// The page's path and query: `query` with one leading `/`, its placeholders filled.
    pub fn page_target(&self, code: u16, original: u16, url: &str) -> String {
        if self.query.is_empty() {
            return "/".to_owned();
        }
        let q = format!("/{}", self.query.strip_prefix('/').unwrap_or(&self.query));
        q.replace("{status}", &code.to_string())
            .replace("{originalStatus}", &original.to_string())
            .replace("{url}", &query_escape(url))
    }

    /// The page request's target, or none when Go's `url.Parse` refuses it (a control
    /// character, or a `%` not followed by two hex digits before the query): Traefik then
    /// answers the status with its text and asks no page.
    pub fn page_request_target(
        &self,
        code: u16,
        original: u16,
        url: &str,
    ) -> Option<http::uri::PathAndQuery> {
        let t = self.page_target(code, original, url);
        if t.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return None;
        }
        let path = t.split('?').next().unwrap_or("").as_bytes();
        for (i, _) in path.iter().enumerate().filter(|(_, b)| **b == b'%') {
            let hex = |j: usize| path.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !hex(i + 1) || !hex(i + 2) {
                return None;
            }
        }
        http::uri::PathAndQuery::try_from(t).ok()
    }

    /// The request's headers the page request carries.
    pub fn page_headers(&self, headers: &HeaderMap) -> HeaderMap {
        match &self.request_headers {
            None => headers.clone(),
            Some(names) => {
                let mut out = HeaderMap::new();
                for n in names {
                    for v in headers.get_all(n) {
                        out.append(n.clone(), v.clone());
                    }
                }
                out
            }
        }
    }
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(query: &str) -> Errors {
        Errors {
            status: CodeRanges::parse(&["500-503", "404"]).unwrap(),
            rewrites: vec![(CodeRanges::parse(&["502-503"]).unwrap(), 500)],
            service: "pages@file".into(),
            query: query.into(),
            request_headers: None,
        }
    }

    #[test]
    fn caught_statuses_their_rewrites_and_the_page_target() {
        let e = errors("/{status}.html?from={originalStatus}&url={url}");
        assert_eq!(e.catch(404), Some((404, 404)));
        assert_eq!(e.catch(503), Some((500, 503)));
        assert_eq!(e.catch(200), None);
        assert_eq!(e.catch(504), None);
        assert_eq!(
            e.page_target(500, 503, "http://localhost/test?foo=bar&baz=buz"),
            "/500.html?from=503&url=http%3A%2F%2Flocalhost%2Ftest%3Ffoo%3Dbar%26baz%3Dbuz"
        );
        assert_eq!(errors("err/{status}").page_target(503, 503, ""), "/err/503");
        assert_eq!(errors("").page_target(503, 503, ""), "/");
    }

    #[test]
    fn page_headers_all_or_the_listed_ones() {
        let mut h = HeaderMap::new();
        h.insert("accept", "text/html".parse().unwrap());
        h.insert("cookie", "a=1".parse().unwrap());
        let mut e = errors("");
        assert_eq!(e.page_headers(&h).len(), 2);
        e.request_headers = Some(vec![HeaderName::from_static("accept")]);
        let only = e.page_headers(&h);
        assert_eq!(
            (only.len(), only["accept"].to_str().unwrap()),
            (1, "text/html")
        );
        e.request_headers = Some(vec![]);
        assert!(e.page_headers(&h).is_empty());
    }
}
