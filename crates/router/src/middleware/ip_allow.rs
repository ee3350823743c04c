//! `ipAllowList` (and its v2 name `ipWhiteList`), as Traefik's (`pkg/middlewares/ipallowlist`,
//! `pkg/ip`): the client's address, picked by the `ipStrategy` (the connection's peer; the
//! `depth`-th `X-Forwarded-For` entry from the right; or the rightmost one not in
//! `excludedIPs`), must be in `sourceRange`, else `rejectStatusCode` (403) with its reason.

use std::net::{IpAddr, Ipv6Addr};

use betaroute_core::rules::IpNet;
use http::StatusCode;

use super::gourl::split_host_port;
use super::{Answer, Flow, Req};

/// Addresses and networks (`ip.Checker`).
#[derive(Debug, Clone)]
pub struct Checker {
    ips: Vec<IpAddr>,
    nets: Vec<IpNet>,
}

impl Checker {
    pub fn new(entries: &[String]) -> Result<Checker, String> {
        if entries.is_empty() {
            return Err("no trusted IPs provided".into());
        }
        let mut c = Checker {
            ips: Vec::new(),
            nets: Vec::new(),
        };
        for e in entries {
            if let Ok(ip) = e.parse::<IpAddr>() {
                c.ips.push(ip.to_canonical());
            } else if e.contains('/') && IpNet::parse(e).is_some() {
                c.nets.push(IpNet::parse(e).expect("just parsed"));
            } else {
                return Err(format!("invalid CIDR address: {e}"));
            }
        }
        Ok(c)
    }

    /// Whether `addr` (an address, with or without a port or zone) is in the list.
    pub fn contains(&self, addr: &str) -> bool {
        let host = split_host(addr);
        let host = host.split('%').next().unwrap_or("");
        let Ok(ip) = host.parse::<IpAddr>() else {
            return false;
        };
        let ip = ip.to_canonical();
        self.ips.contains(&ip)
            || self
                .nets
                .iter()
                .any(|n| n.contains(ip) || n.contains(mapped(ip)))
    }
}

/// IPv4 as IPv4-mapped IPv6, so a v6 network written for mapped addresses matches too.
fn mapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
        v6 => v6,
    }
}

/// `net.SplitHostPort`'s host, or the whole text when it has no port.
fn split_host(addr: &str) -> &str {
    split_host_port(addr).map_or(addr, |(h, _)| h)
}

/// How the client's address is found (`ipStrategy`).
#[derive(Debug, Clone)]
pub enum Strategy {
    RemoteAddr {
        ipv6_subnet: Option<u8>,
    },
    Depth {
        depth: usize,
        ipv6_subnet: Option<u8>,
    },
    Excluded(Checker),
}

impl Strategy {
    pub fn client_ip(&self, remote: &str, xff: Option<&str>) -> String {
        match self {
            Strategy::RemoteAddr { ipv6_subnet } => subnet(split_host(remote), *ipv6_subnet),
            Strategy::Depth { depth, ipv6_subnet } => {
                let list: Vec<&str> = xff.unwrap_or("").split(',').collect();
                if list.len() < *depth {
                    return String::new();
                }
                subnet(list[list.len() - depth].trim(), *ipv6_subnet)
            }
            Strategy::Excluded(excluded) => xff
                .unwrap_or("")
                .split(',')
                .rev()
                .map(str::trim)
                .find(|e| !e.is_empty() && !excluded.contains(e))
                .unwrap_or("")
                .to_owned(),
        }
    }
}

/// An IPv6 address reduced to the first address of its `/bits` network (zone dropped); other
/// text unchanged.
fn subnet(ip: &str, bits: Option<u8>) -> String {
    let Some(bits) = bits else {
        return ip.to_owned();
    };
    let Ok(v6) = ip.split('%').next().unwrap_or("").parse::<Ipv6Addr>() else {
        return ip.to_owned();
    };
    if bits > 128 {
        return ip.to_owned();
    }
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(bits))
    };
    Ipv6Addr::from(u128::from(v6) & mask).to_string()
}

#[derive(Debug, Clone)]
pub struct IpAllowList {
    pub allowed: Checker,
    pub strategy: Strategy,
    pub reject: StatusCode,
}

impl IpAllowList {
    pub fn apply(&self, req: &mut Req) -> Flow {
        let xff = req
            .parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let ip = self.strategy.client_ip(&req.remote, xff);
        if !ip.is_empty() && self.allowed.contains(&ip) {
            return Flow::Next;
        }
        Flow::Answer(Box::new(Answer::text(
            self.reject,
            self.reject.canonical_reason().unwrap_or(""),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn data() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/middleware/cases/ipAllowList.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn traefik_strategy_cases() {
        for c in data()["strategy_cases"].as_array().unwrap() {
            let s = &c["strategy"];
            let subnet = s["ipv6Subnet"].as_u64().map(|b| b.min(255) as u8);
            let strategy = match s["kind"].as_str().unwrap() {
                "RemoteAddrStrategy" => Strategy::RemoteAddr {
                    ipv6_subnet: subnet,
                },
                "DepthStrategy" => Strategy::Depth {
                    depth: s["depth"].as_u64().unwrap() as usize,
                    ipv6_subnet: subnet,
                },
                _ => {
                    let ex: Vec<String> = s["excludedIPs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_owned())
                        .collect();
                    Strategy::Excluded(Checker::new(&ex).unwrap())
                }
            };
            let r = &c["request"];
            let got = strategy.client_ip(
                r["remote_addr"].as_str().unwrap(),
                r["headers"]["X-Forwarded-For"].as_str(),
            );
            assert_eq!(got, c["expect"]["ip"].as_str().unwrap(), "{}", c["name"]);
        }
    }

    #[test]
    fn traefik_checker_cases() {
        for c in data()["checker_cases"].as_array().unwrap() {
            let trusted: Vec<String> = c["trustedIPs"].as_array().map_or(Vec::new(), |a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            });
            let name = c["name"].as_str().unwrap();
            let checker = Checker::new(&trusted);
            if c.get("error").is_some() {
                assert!(checker.is_err(), "{name}: {trusted:?} is accepted");
                continue;
            }
            let checker = checker.unwrap_or_else(|e| panic!("{name}: {e}"));
            let e = &c["expect"];
            let list = |k: &str| -> Vec<String> {
                e[k].as_array().map_or(Vec::new(), |a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
            };
            if let Some(want) = e["authorized"].as_bool() {
                let input = c["input"].as_str().unwrap();
                assert_eq!(checker.contains(input), want, "{name}: {input}");
            }
            for ip in list("pass") {
                assert!(checker.contains(&ip), "{name}: {ip} passes");
            }
            for ip in list("reject").into_iter().chain(list("error_for")) {
                assert!(!checker.contains(&ip), "{name}: {ip} is rejected");
            }
        }
    }
}
