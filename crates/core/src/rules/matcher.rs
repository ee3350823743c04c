//! Compiled matchers: each Traefik v3 matcher checked for its arguments once, evaluated per request.

use std::net::IpAddr;

use regex::Regex;

use super::goregex;
use super::parse::{Call, Expr, RuleError, RuleErrorKind, MATCHERS};
use super::request::{Prepared, RequestView};

/// A rule tree whose leaves are ready to evaluate.
#[derive(Debug, Clone)]
pub enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Leaf(Matcher),
}

#[derive(Debug, Clone)]
pub enum Matcher {
    ClientIp(IpNet),
    Method(String),
    /// Lowercased host expression: exact, `*.suffix` (one label) or `**.suffix` (one or more).
    Host(String),
    HostRegexp(Regex),
    Path(String),
    PathPrefix(String),
    PathRegexp(Regex),
    Header(String, Vec<u8>),
    HeaderRegexp(String, Regex),
    Query(String, String),
    QueryRegexp(String, Regex),
}

/// An IP address or network (`10.0.0.0/8`, `::1`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Option<IpNet> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().ok().filter(|&n| n <= max)?
            }
            Some(_) => return None,
            None => max,
        };
        Some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client may reach us as an IPv4-mapped IPv6 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let bits = |ip: IpAddr| -> u128 {
            match ip {
                IpAddr::V4(a) => u32::from(a) as u128,
                IpAddr::V6(a) => u128::from(a),
            }
        };
        let width = if self.addr.is_ipv4() { 32 } else { 128 };
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        if self.prefix == 0 {
            return true;
        }
        let shift = width - self.prefix as u32;
        bits(ip) >> shift == bits(self.addr) >> shift
    }
}

/// Whether `domain` (canonical, lowercase) matches a host expression.
pub fn host_matches(domain: &str, expr: &str) -> bool {
    if let Some(suffix) = expr.strip_prefix("**.") {
        return domain.len() > suffix.len() + 1
            && domain.as_bytes()[domain.len() - suffix.len() - 1] == b'.'
            && domain[domain.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
    }
    if let Some(rest) = expr.strip_prefix('*') {
        // The first label of the domain is replaced by `*`, then compared.
        let tail = domain.find('.').map_or("", |i| &domain[i..]);
        return tail.eq_ignore_ascii_case(rest);
    }
    domain.eq_ignore_ascii_case(expr)
}

impl Matcher {
    fn compile(call: &Call) -> Result<Matcher, RuleError> {
        let (_, counts) = MATCHERS
            .iter()
            .find(|(n, _)| *n == call.name)
            .copied()
            .unwrap_or((call.name, &[1]));
        if !counts.contains(&call.args.len()) {
            return Err(RuleError::new(
                RuleErrorKind::ArgCount {
                    matcher: call.name,
                    got: call.args.len(),
                    expected: counts,
                },
                call.span.clone(),
            ));
        }
        if let Some(i) = call.args.iter().position(String::is_empty) {
            return Err(RuleError::new(
                RuleErrorKind::EmptyArgument { matcher: call.name },
                call.arg_spans[i].clone(),
            ));
        }
        let invalid = |i: usize, message: String| {
            RuleError::new(
                RuleErrorKind::InvalidValue {
                    matcher: call.name,
                    message,
                },
                call.arg_spans[i].clone(),
            )
        };
        let regex = |i: usize| {
            goregex::compile(&call.args[i])
                .map_err(|e| invalid(i, format!("invalid regular expression: {e}")))
        };
        let a = &call.args;
        Ok(match call.name {
            "ClientIP" => Matcher::ClientIp(IpNet::parse(&a[0]).ok_or_else(|| {
                invalid(
                    0,
                    format!("{:?} is not an IP address or CIDR network", a[0]),
                )
            })?),
            "Method" => Matcher::Method(a[0].to_ascii_uppercase()),
            "Host" => {
                if !a[0].is_ascii() {
                    return Err(invalid(
                        0,
                        "non-ASCII characters are not allowed (use the punycode form)".into(),
                    ));
                }
                let ok = a[0]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._*:[]".contains(&b));
                if !ok {
                    return Err(invalid(0, format!("{:?} is not a host name", a[0])));
                }
                let h = a[0].to_ascii_lowercase();
                Matcher::Host(
                    h.strip_prefix('[')
                        .and_then(|h| h.strip_suffix(']'))
                        .map_or(h.clone(), str::to_owned),
                )
            }
            "HostRegexp" => {
                if !a[0].is_ascii() {
                    return Err(invalid(0, "non-ASCII characters are not allowed".into()));
                }
                Matcher::HostRegexp(regex(0)?)
            }
            "Path" | "PathPrefix" => {
                if !a[0].starts_with('/') {
                    return Err(invalid(
                        0,
                        format!("path {:?} does not start with a '/'", a[0]),
                    ));
                }
                if call.name == "Path" {
                    Matcher::Path(a[0].clone())
                } else {
                    Matcher::PathPrefix(a[0].clone())
                }
            }
            "PathRegexp" => Matcher::PathRegexp(regex(0)?),
            "Header" => Matcher::Header(a[0].to_ascii_lowercase(), a[1].clone().into_bytes()),
            "HeaderRegexp" => Matcher::HeaderRegexp(a[0].to_ascii_lowercase(), regex(1)?),
            "Query" => Matcher::Query(a[0].clone(), a.get(1).cloned().unwrap_or_default()),
            "QueryRegexp" if a.len() == 1 => Matcher::Query(a[0].clone(), String::new()),
            "QueryRegexp" => Matcher::QueryRegexp(a[0].clone(), regex(1)?),
            other => unreachable!("parser only yields known matchers, got {other}"),
        })
    }

    pub fn eval<R: RequestView + ?Sized>(&self, p: &Prepared<'_, R>) -> bool {
        match self {
            Matcher::ClientIp(net) => p.req.client_ip().is_some_and(|ip| net.contains(ip)),
            Matcher::Method(m) => p.req.method() == m,
            // Traefik v3.7: `*` alone matches every request, with or without a host (as `*` does
            // for TCP routers' SNI).
            Matcher::Host(expr) if expr == "*" => true,
            Matcher::Host(expr) => {
                let h: &str = &p.host;
                if h.is_empty() {
                    return false;
                }
                host_matches(h, expr)
                    || expr.strip_suffix('.').is_some_and(|e| host_matches(h, e))
                    || h.strip_suffix('.').is_some_and(|h| host_matches(h, expr))
            }
            Matcher::HostRegexp(re) => re.is_match(&p.host),
            Matcher::Path(path) => p.path.as_deref() == Some(path.as_str()),
            Matcher::PathPrefix(prefix) => p
                .path
                .as_deref()
                .is_some_and(|path| path.starts_with(prefix.as_str())),
            Matcher::PathRegexp(re) => p.path.as_deref().is_some_and(|path| re.is_match(path)),
            Matcher::Header(name, value) => p.req.any_header(name, &mut |v| v == value.as_slice()),
            Matcher::HeaderRegexp(name, re) => p
                .req
                .any_header(name, &mut |v| re.is_match(&String::from_utf8_lossy(v))),
            Matcher::Query(k, v) => p.query().iter().any(|(qk, qv)| qk == k && qv == v),
            Matcher::QueryRegexp(k, re) => {
                p.query().iter().any(|(qk, qv)| qk == k && re.is_match(qv))
            }
        }
    }
}

impl Node {
    pub fn compile(expr: &Expr) -> Result<Node, RuleError> {
        Ok(match expr {
            Expr::And(a, b) => Node::And(Box::new(Node::compile(a)?), Box::new(Node::compile(b)?)),
            Expr::Or(a, b) => Node::Or(Box::new(Node::compile(a)?), Box::new(Node::compile(b)?)),
            Expr::Not(a) => Node::Not(Box::new(Node::compile(a)?)),
            Expr::Call(c) => Node::Leaf(Matcher::compile(c)?),
        })
    }

    pub fn eval<R: RequestView + ?Sized>(&self, p: &Prepared<'_, R>) -> bool {
        match self {
            Node::And(a, b) => a.eval(p) && b.eval(p),
            Node::Or(a, b) => a.eval(p) || b.eval(p),
            Node::Not(a) => !a.eval(p),
            Node::Leaf(m) => m.eval(p),
        }
    }

    /// Host expressions of `Host` matchers under an even number of negations (Traefik's
    /// "positive" hosts, which also drive the double-wildcard priority penalty).
    pub fn positive_hosts<'a>(&'a self, negated: bool, out: &mut Vec<&'a str>) {
        match self {
            Node::And(a, b) | Node::Or(a, b) => {
                a.positive_hosts(negated, out);
                b.positive_hosts(negated, out);
            }
            Node::Not(a) => a.positive_hosts(!negated, out),
            Node::Leaf(Matcher::Host(h)) if !negated => out.push(h),
            Node::Leaf(_) => {}
        }
    }

    /// Every `Host` matcher's expression, negated or not, lower case: Traefik's
    /// `ParseMatchers(["Host"])`, which maps a TLS router's hosts to its TLS options.
    pub fn host_domains(&self, out: &mut Vec<String>) {
        match self {
            Node::And(a, b) | Node::Or(a, b) => {
                a.host_domains(out);
                b.host_domains(out);
            }
            Node::Not(a) => a.host_domains(out),
            Node::Leaf(Matcher::Host(h)) => out.push(h.to_ascii_lowercase()),
            Node::Leaf(_) => {}
        }
    }

    /// Host keys such that the rule can only match a request whose canonical host (one trailing
    /// dot removed) is one of them; `None` when the rule is not constrained that way.
    pub fn host_keys(&self) -> Option<Vec<HostKey>> {
        match self {
            Node::Leaf(Matcher::Host(h)) => HostKey::of(h).map(|k| vec![k]),
            Node::And(a, b) => match (a.host_keys(), b.host_keys()) {
                (Some(x), Some(y)) => Some(if x.len() <= y.len() { x } else { y }),
                (x, y) => x.or(y),
            },
            Node::Or(a, b) => {
                let mut x = a.host_keys()?;
                x.extend(b.host_keys()?);
                Some(x)
            }
            _ => None,
        }
    }
}

/// Where a router is filed in the route table's host index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostKey {
    Exact(String),
    /// `*.suffix`: exactly one label before `suffix`.
    OneLabel(String),
    /// `**.suffix`: one or more labels before `suffix`.
    AnyLabels(String),
}

impl HostKey {
    /// The key of a host expression, or `None` for expressions the index cannot file safely
    /// (those routers are checked for every request).
    fn of(expr: &str) -> Option<HostKey> {
        let e = expr.strip_suffix('.').unwrap_or(expr);
        if e.is_empty() || e.ends_with('.') {
            return None;
        }
        let plain = |s: &str| !s.is_empty() && !s.contains('*');
        if let Some(s) = e.strip_prefix("**.") {
            return plain(s).then(|| HostKey::AnyLabels(s.to_owned()));
        }
        if let Some(s) = e.strip_prefix("*.") {
            return plain(s).then(|| HostKey::OneLabel(s.to_owned()));
        }
        plain(e).then(|| HostKey::Exact(e.to_owned()))
    }
}
