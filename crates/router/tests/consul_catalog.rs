//! Traefik's Consul Catalog table tests (`pkg/provider/consulcatalog/config_test.go`,
//! transcribed as data in `tests/data/consulcatalog/`) run against betaroute's build of the
//! provider's configuration. The provider options go through the real static configuration
//! reader (a `[providers.consulCatalog]` section), the items through `build`, and the result
//! through the same combination `serve` uses.
//!
//! What betaroute does not implement is compared as refused, by name: Consul Connect
//! (`connectAware`), TCP and UDP routers, TLS stores and servers' `preservePath`. Every other
//! case must produce Traefik's HTTP routers, services and middlewares exactly.

use betaroute_router::config::dynamic::combine;
use betaroute_router::config::static_config::parse_static_str;
use betaroute_router::config::{Format, RoutingConfig, ServiceSpec, Severity};
use betaroute_router::provider::consul::build::build;
use betaroute_router::provider::consul::catalog::{Catalog, Item};
use serde_json::{json, Value};

const DATA: &str = include_str!("data/consulcatalog/build_configuration.json");

/// Cases whose configuration uses what betaroute refuses, with the refusal expected.
const REFUSED: &[(&str, &str)] = &[
    ("one connect container", "connectAware"),
    ("two connect containers on same service", "connectAware"),
    (
        "one container with label url and preserve path",
        "preservePath",
    ),
    ("tcp with label", "connectAware"),
    ("two HTTP service instances with one canary", "connectAware"),
];

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The case's provider options as a static configuration file.
fn static_toml(provider: &Value) -> String {
    let mut s = String::from("[entryPoints.web]\naddress = \":80\"\n[providers.consulCatalog]\n");
    for (k, v) in provider.as_object().unwrap() {
        let value = match v {
            Value::String(t) => toml_string(t),
            Value::Bool(b) => b.to_string(),
            Value::Array(a) => format!(
                "[{}]",
                a.iter()
                    .map(|x| toml_string(x.as_str().unwrap()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => panic!("option {k}: {other}"),
        };
        s.push_str(&format!("{k} = {value}\n"));
    }
    s
}

fn item(v: &Value) -> Item {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Item {
        id: s("ID"),
        node: s("Node"),
        datacenter: s("Datacenter"),
        name: s("Name"),
        namespace: s("Namespace"),
        address: s("Address"),
        port: s("Port"),
        status: s("Status"),
        labels: v["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        tags: v["Tags"]
            .as_array()
            .map(|a| a.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default(),
    }
}

fn bare(name: &str) -> String {
    name.strip_suffix("@consulcatalog")
        .unwrap_or(name)
        .to_owned()
}

/// The HTTP part of a routing configuration in Traefik's JSON shape (the fields betaroute
/// models), names without the provider as Traefik's provider produces them.
fn traefik_http(c: &RoutingConfig) -> Value {
    let mut routers = serde_json::Map::new();
    for r in &c.routers {
        let mut v = json!({"rule": r.rule.text(), "service": bare(&r.service)});
        if let Some(p) = r.priority.filter(|p| *p != 0) {
            v["priority"] = json!(p);
        }
        if let Some(eps) = &r.entry_points {
            v["entryPoints"] = json!(eps);
        }
        routers.insert(bare(&r.name), v);
    }
    let mut services = serde_json::Map::new();
    for (name, s) in &c.services {
        let ServiceSpec::LoadBalancer(lb) = s else {
            panic!("labels make only load balancers");
        };
        let servers: Vec<Value> = lb
            .servers
            .iter()
            .map(|s| {
                let mut v = json!({"url": s.url.to_string().trim_end_matches('/')});
                if s.weight != 1 {
                    v["weight"] = json!(s.weight);
                }
                v
            })
            .collect();
        services.insert(
            bare(name),
            json!({"loadBalancer": {"servers": servers, "passHostHeader": lb.pass_host_header}}),
        );
    }
    let middlewares: Vec<String> = c.middlewares.keys().map(|m| bare(m)).collect();
    json!({"routers": routers, "services": services, "middlewares": middlewares})
}

/// Traefik's expected HTTP part, reduced to the same fields.
fn expected_http(e: &Value) -> Value {
    let http = &e["http"];
    let mut routers = serde_json::Map::new();
    for (name, r) in http["routers"].as_object().into_iter().flatten() {
        let mut v = json!({"rule": r["rule"], "service": r["service"]});
        if let Some(p) = r.get("priority") {
            v["priority"] = p.clone();
        }
        if let Some(eps) = r.get("entryPoints") {
            v["entryPoints"] = eps.clone();
        }
        routers.insert(name.clone(), v);
    }
    let mut services = serde_json::Map::new();
    for (name, s) in http["services"].as_object().into_iter().flatten() {
        let lb = &s["loadBalancer"];
        let servers: Vec<Value> = lb["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let mut v = json!({"url": s["url"]});
                if let Some(w) = s.get("weight").filter(|w| **w != json!(1)) {
                    v["weight"] = w.clone();
                }
                v
            })
            .collect();
        services.insert(
            name.clone(),
            json!({"loadBalancer": {"servers": servers, "passHostHeader": lb.get("passHostHeader").cloned().unwrap_or(json!(true))}}),
        );
    }
    let middlewares: Vec<String> = http["middlewares"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect();
    json!({"routers": routers, "services": services, "middlewares": middlewares})
}

fn non_empty(v: &Value, section: &str) -> bool {
    v[section].as_object().is_some_and(|o| {
        o.values()
            .any(|x| x.as_object().is_some_and(|m| !m.is_empty()))
    })
}

#[test]
fn traefiks_build_configuration_cases() {
    let cases: Vec<Value> = serde_json::from_str(DATA).unwrap();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in &cases {
        let desc = case["desc"].as_str().unwrap();
        let refused = REFUSED.iter().find(|(d, _)| *d == desc).map(|(_, w)| *w);
        // Cases that turn connectAware on without any Connect instance test something else
        // (canaries, TCP): run them as Traefik would with it off, which gives the same result.
        let mut provider = case["provider"].clone();
        let connect_items = case["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["Labels"]["traefik.consulcatalog.connect"] == json!("true"));
        if !connect_items {
            provider.as_object_mut().unwrap().remove("connectAware");
        }
        let stat = static_toml(&provider);
        let opts = match parse_static_str("case.toml", &stat, Format::Toml) {
            Ok(st) => st.consul.expect("consulCatalog is set"),
            Err(e) => {
                if refused.is_some_and(|w| e.to_string().contains(w)) {
                    continue;
                }
                failures.push(format!("{desc}: static configuration refused: {e}"));
                continue;
            }
        };
        let catalog = Catalog {
            beta_enabled: None,
            items: case["items"].as_array().unwrap().iter().map(item).collect(),
            skipped: Vec::new(),
        };
        let layer = build(&catalog, &opts);
        let (config, _) = combine(&[&layer], &Default::default());
        let refusals: Vec<String> = config
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Refused)
            .map(|d| d.to_string())
            .collect();
        if let Some(want) = refused {
            if !refusals.iter().any(|r| r.contains(want)) {
                failures.push(format!(
                    "{desc}: expected a refusal naming {want}, got {refusals:?}"
                ));
            }
            continue;
        }
        let expected = &case["expected"];
        for section in ["tcp", "udp"] {
            if non_empty(expected, section)
                && !refusals
                    .iter()
                    .any(|r| r.contains(&format!("{section} is not supported")))
            {
                failures.push(format!("{desc}: Traefik makes {section} routing; betaroute must refuse it by name, refusals: {refusals:?}"));
            }
        }
        let got = traefik_http(&config);
        let want = expected_http(expected);
        compared += 1;
        if got != want {
            failures.push(format!(
                "{desc}:\n  want {want}\n  got  {got}\n  diagnostics: {:?}",
                config
                    .diagnostics
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(compared >= 50, "only {compared} cases compared");
}

/// Middlewares from Consul tags (`traefik.http.middlewares.NAME.<kind>.<option>=...`) go through
/// the same reader as a file's: a router using them is served with its chain, and a kind
/// betaroute does not run is refused by name.
#[test]
fn middlewares_from_consul_tags() {
    let st = parse_static_str(
        "s.toml",
        &static_toml(&json!({"exposedByDefault": "true"})),
        Format::Toml,
    )
    .unwrap()
    .consul
    .unwrap();
    // Tags as the catalog reader hands them over: `key=value` labels.
    let labels = json!({
        "traefik.http.routers.api.rule": "Host(`api.example.com`)",
        "traefik.http.routers.api.middlewares": "strip,auth",
        "traefik.http.middlewares.strip.stripprefix.prefixes": "/api,/v1",
        "traefik.http.middlewares.auth.basicauth.users": "u:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/",
        "traefik.http.routers.other.rule": "Host(`other.example.com`)",
        "traefik.http.routers.other.middlewares": "fwd",
        "traefik.http.middlewares.fwd.forwardauth.address": "http://127.0.0.1:1",
        "traefik.http.middlewares.fwd.forwardauth.forwardbody": "true",
    });
    let catalog = Catalog {
        beta_enabled: None,
        items: vec![item(
            &json!({"ID": "api-1", "Node": "n", "Name": "api", "Address": "127.0.0.1", "Port": "80", "Status": "passing", "Labels": labels}),
        )],
        skipped: Vec::new(),
    };
    let layer = build(&catalog, &st);
    let (config, _) = combine(&[&layer], &Default::default());
    let router = |n: &str| {
        config
            .routers
            .iter()
            .find(|r| r.name == n)
            .unwrap_or_else(|| panic!("{n}: {:?}", config.diagnostics))
    };
    let api = router("api@consulcatalog");
    assert!(api.refused.is_none(), "{:?}", api.refused);
    assert_eq!(
        api.chain.len(),
        2,
        "{:?} {:?}",
        api.middlewares,
        config.diagnostics
    );
    let other = router("other@consulcatalog");
    assert!(
        other.refused.as_deref().is_some_and(
            |w| w.contains("fwd@consulcatalog (forwardAuth), forwardBody is not supported yet")
        ),
        "{:?}",
        other.refused
    );
}
