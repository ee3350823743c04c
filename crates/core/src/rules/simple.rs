//! A plain request value for the CLI (`betaroute route explain`) and tests.

use std::net::IpAddr;

use super::RequestView;

/// A request built from an absolute URL, a method, headers and a client address.
#[derive(Debug, Clone)]
pub struct SimpleRequest {
    pub method: String,
    pub authority: String,
    pub path: String,
    pub query: Option<String>,
    /// Header lines as sent (name, value); one entry per line.
    pub headers: Vec<(String, Vec<u8>)>,
    pub client_ip: Option<IpAddr>,
}

impl SimpleRequest {
    /// Parses `scheme://authority[/path][?query]`; the authority becomes the request host.
    pub fn parse(method: &str, url: &str) -> Result<SimpleRequest, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url:?} is not an absolute URL (scheme://host/path)"))?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(format!("{url:?} has an invalid scheme"));
        }
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        if authority.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (target, None),
        };
        Ok(SimpleRequest {
            method: method.to_owned(),
            authority: authority.to_owned(),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.to_owned()
            },
            query,
            headers: Vec::new(),
            client_ip: Some(IpAddr::from([127, 0, 0, 1])),
        })
    }

    /// A GET request; panics on a malformed URL (for tests and examples).
    pub fn get(url: &str) -> SimpleRequest {
        SimpleRequest::parse("GET", url).expect("valid URL")
    }

    pub fn header(mut self, name: &str, value: &str) -> SimpleRequest {
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }

    pub fn client(mut self, ip: IpAddr) -> SimpleRequest {
        self.client_ip = Some(ip);
        self
    }
}

impl RequestView for SimpleRequest {
    fn method(&self) -> &str {
        &self.method
    }
    fn host(&self) -> &str {
        // An explicit Host header wins over the URL's authority, as in a real request.
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .unwrap_or(&self.authority)
    }
    fn path(&self) -> &str {
        &self.path
    }
    fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }
    fn any_header(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && f(v))
    }
    fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }
}
