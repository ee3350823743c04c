//! The Consul Catalog provider end to end: the real `betaroute serve` against a fake Consul
//! (`scripts/fake_consul.py`, Consul's HTTP API on loopback: no Consul server can be installed
//! here), with real backends. Instances are registered through Consul's own agent API, so the
//! same calls work against a real agent: set `CONSUL_HTTP_ADDR` to run
//! `a_real_agent_when_one_is_configured` against one.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use serde_json::{json, Value};

/// The fake Consul, as a process.
struct FakeConsul {
    child: Child,
    url: String,
    addr: std::net::SocketAddr,
}

impl FakeConsul {
    fn start(args: &[&str]) -> FakeConsul {
        FakeConsul::start_on("127.0.0.1:0", args)
    }

    fn start_on(listen: &str, args: &[&str]) -> FakeConsul {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/fake_consul.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--listen", listen])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the fake Consul");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("the fake prints its URL")
            .to_owned();
        let addr = url.split("://").nth(1).unwrap().parse().unwrap();
        FakeConsul { child, url, addr }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let body = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        request(&client(), self.addr, method, "consul", path, headers, body).await
    }

    /// Registers an instance through the agent API, its TTL check passing.
    async fn register(&self, id: &str, name: &str, port: u16, tags: &[&str]) {
        let body = json!({
            "ID": id, "Name": name, "Address": "127.0.0.1", "Port": port, "Tags": tags,
            "Check": {"CheckID": format!("service:{id}"), "TTL": "1h", "Status": "passing"},
        });
        let (s, b) = self
            .call("PUT", "/v1/agent/service/register", body, &[])
            .await;
        assert_eq!(s, 200, "{b}");
    }

    async fn deregister(&self, id: &str) {
        let (s, b) = self
            .call(
                "PUT",
                &format!("/v1/agent/service/deregister/{id}"),
                Value::Null,
                &[],
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }

    async fn check(&self, id: &str, verb: &str) {
        let (s, b) = self
            .call(
                "PUT",
                &format!("/v1/agent/check/{verb}/service:{id}"),
                Value::Null,
                &[],
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }

    async fn fault(&self, mode: &str) {
        // Reads fail; registrations (the agent API) still work, as with a sick server.
        let paths = json!(["/v1/catalog", "/v1/health"]);
        let (s, b) = self
            .call(
                "PUT",
                "/_fake/fault",
                json!({"mode": mode, "paths": paths}),
                &[],
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }

    async fn requests(&self) -> Vec<Value> {
        let (_, b) = self.call("GET", "/_fake/requests", Value::Null, &[]).await;
        serde_json::from_str(&b).unwrap()
    }

    /// Waits until the router has a blocking query parked here.
    async fn wait_parked(&self, n: u64) {
        for _ in 0..200 {
            let (_, b) = self.call("GET", "/_fake/blocked", Value::Null, &[]).await;
            if b.trim().parse::<u64>().unwrap_or(0) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the router never parked {n} blocking queries");
    }
}

impl Drop for FakeConsul {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn static_config(consul: &str, options: &str) -> String {
    format!(
        "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n[providers.consulCatalog]\n{options}\n[providers.consulCatalog.endpoint]\naddress = \"{consul}\"\n[serversTransport.forwardingTimeouts]\ndialTimeout = \"1s\"\n"
    )
}

const BETA_RULE: &str =
    "traefik.http.routers.api-beta.rule=Host(`api.example.com`) && Header(`X-RiksTV-Beta`, `true`)";
const MAIN_RULE: &str = "traefik.http.routers.api-main.rule=Host(`api.example.com`)";

async fn server(r: &Router, beta: bool) -> (u16, String) {
    let h: &[(&str, &str)] = if beta {
        &[("X-RiksTV-Beta", "true")]
    } else {
        &[]
    };
    let (s, b) = get(r.web, "api.example.com", "/", h).await;
    (s, server_of(&b))
}

/// Polls until `f` holds, returning how long it took.
async fn until<F: std::future::Future<Output = bool>>(
    secs: u64,
    mut f: impl FnMut() -> F,
) -> Duration {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if f().await {
            return t.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within {secs}s");
}

#[tokio::test]
async fn beta_and_main_routed_from_tags_and_following_the_catalog() {
    let consul = FakeConsul::start(&[]);
    let (main, main2, beta) = (
        Backend::start("main").await,
        Backend::start("main2").await,
        Backend::start("beta").await,
    );
    consul
        .register("api-main-1", "api-main", main.addr.port(), &[MAIN_RULE])
        .await;
    consul
        .register("api-beta-1", "api-beta", beta.addr.port(), &[BETA_RULE])
        .await;
    let r = Router::start_with(
        &static_config(&consul.url, "watch = true\nexposedByDefault = true"),
        "",
    );
    assert_eq!(server(&r, true).await, (200, "beta".into()));
    assert_eq!(server(&r, false).await, (200, "main".into()));

    // Traefik's API names them by provider.
    let routers: Value = serde_json::from_str(&r.admin_get("/api/http/routers").await).unwrap();
    let beta_router = routers
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "api-beta@consulcatalog")
        .expect("api-beta@consulcatalog");
    assert_eq!(beta_router["provider"], "consulcatalog");
    assert_eq!(beta_router["service"], "api-beta");
    let svc: Value = serde_json::from_str(
        &r.admin_get("/api/http/services/api-main@consulcatalog")
            .await,
    )
    .unwrap();
    assert_eq!(svc["loadBalancer"]["servers"].as_array().unwrap().len(), 1);

    // A second instance of main joins: traffic follows within a second (blocking query).
    consul.wait_parked(2).await;
    consul
        .register("api-main-2", "api-main", main2.addr.port(), &[MAIN_RULE])
        .await;
    let took = until(5, || async {
        let mut seen = false;
        for _ in 0..4 {
            seen |= server(&r, false).await.1 == "main2";
        }
        seen
    })
    .await;
    eprintln!("watch: a new instance took {took:?} to get traffic");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // Its check fails: it gets no more traffic.
    consul.check("api-main-2", "fail").await;
    until(5, || async {
        let mut all_main = true;
        for _ in 0..6 {
            all_main &= server(&r, false).await.1 == "main";
        }
        all_main
    })
    .await;

    // The beta group scales in to nothing: beta users land on main, nothing fails.
    consul.deregister("api-beta-1").await;
    until(5, || async {
        server(&r, true).await == (200, "main".into())
    })
    .await;
    let m = r.admin_get("/metrics").await;
    assert!(
        m.contains("betaroute_provider_up{provider=\"consulcatalog\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn an_unreachable_or_garbled_consul_keeps_the_last_good_configuration() {
    let consul = FakeConsul::start(&[]);
    let main = Backend::start("main").await;
    let beta = Backend::start("beta").await;
    consul
        .register("api-main-1", "api-main", main.addr.port(), &[MAIN_RULE])
        .await;
    let r = Router::start_with(&static_config(&consul.url, "watch = true"), "");
    assert_eq!(server(&r, false).await, (200, "main".into()));
    consul.wait_parked(2).await;

    consul.fault("garbage").await;
    // A change, so the router reads the catalog and gets garbage.
    consul
        .register("api-beta-1", "api-beta", beta.addr.port(), &[BETA_RULE])
        .await;
    r.wait_admin("/metrics", 10, |m| {
        m.contains("betaroute_provider_up{provider=\"consulcatalog\"} 0")
    })
    .await;
    for _ in 0..10 {
        assert_eq!(
            server(&r, false).await,
            (200, "main".into()),
            "the last good configuration is served"
        );
    }
    let p: Value = serde_json::from_str(&r.admin_get("/api/providers").await).unwrap();
    let consul_health = p
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "consulcatalog")
        .unwrap();
    assert_eq!(consul_health["up"], false);
    assert!(
        consul_health["error"]
            .as_str()
            .unwrap()
            .contains("unexpected answer"),
        "{consul_health}"
    );

    consul.fault("error500").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(server(&r, false).await, (200, "main".into()));

    // Consul comes back: the new catalog (with beta) is picked up.
    consul.fault("ok").await;
    let t = Instant::now();
    while server(&r, true).await != (200, "beta".into()) {
        assert!(
            t.elapsed() < Duration::from_secs(40),
            "beta never routed after Consul came back:\n{}",
            r.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    r.wait_admin("/metrics", 10, |m| {
        m.contains("betaroute_provider_up{provider=\"consulcatalog\"} 1")
    })
    .await;
    let log = r.stderr();
    assert!(log.contains("\"provider\":\"consulcatalog\""), "{log}");
}

#[tokio::test]
async fn the_router_starts_without_consul_and_routes_once_it_answers() {
    let addr = dead_url().trim_start_matches("http://").to_owned();
    let r = Router::start_with(
        &static_config(&format!("http://{addr}"), "watch = true"),
        "",
    );
    assert_eq!(server(&r, false).await.0, 404);
    r.wait_admin("/api/providers", 10, |p| p.contains("\"up\":false"))
        .await;
    let consul = FakeConsul::start_on(&addr, &[]);
    let main = Backend::start("main").await;
    consul
        .register("api-main-1", "api-main", main.addr.port(), &[MAIN_RULE])
        .await;
    let took = until(40, || async {
        server(&r, false).await == (200, "main".into())
    })
    .await;
    eprintln!("consul up after the router: routed after {took:?}");
    r.wait_admin("/metrics", 10, |m| {
        m.contains("betaroute_provider_up{provider=\"consulcatalog\"} 1")
    })
    .await;
}

#[tokio::test]
async fn polling_without_watch_follows_at_the_refresh_interval() {
    let consul = FakeConsul::start(&[]);
    let main = Backend::start("main").await;
    let beta = Backend::start("beta").await;
    consul
        .register("api-main-1", "api-main", main.addr.port(), &[MAIN_RULE])
        .await;
    let r = Router::start_with(&static_config(&consul.url, "refreshInterval = \"1s\""), "");
    assert_eq!(server(&r, true).await, (200, "main".into()));
    consul
        .register("api-beta-1", "api-beta", beta.addr.port(), &[BETA_RULE])
        .await;
    let took = until(5, || async {
        server(&r, true).await == (200, "beta".into())
    })
    .await;
    eprintln!("poll (refreshInterval 1s): a new service took {took:?} to get traffic");
    assert!(
        consul
            .requests()
            .await
            .iter()
            .all(|q| q["query"].get("index").is_none()),
        "no blocking queries without watch"
    );
}

#[tokio::test]
async fn file_and_consul_together_with_references_across_providers() {
    let consul = FakeConsul::start(&[]);
    let (main, shared) = (Backend::start("main").await, Backend::start("shared").await);
    // A Consul router sending to a file service, and a file router to a Consul service.
    consul
        .register(
            "api-main-1",
            "api-main",
            main.addr.port(),
            &[
                "traefik.http.routers.legacy.rule=Host(`legacy.example.com`)",
                "traefik.http.routers.legacy.service=shared@file",
                MAIN_RULE,
                "traefik.http.routers.api-main.service=api-main",
            ],
        )
        .await;
    let dynamic = format!(
        "http:\n  routers:\n    edge:\n      rule: Host(`edge.example.com`)\n      service: api-main@consulcatalog\n  services:\n    shared:\n      loadBalancer:\n        servers:\n          - url: {}\n",
        shared.url()
    );
    let stat = static_config(&consul.url, "watch = true").replace(
        "[providers.consulCatalog]",
        "[providers.file]\nfilename = \"dynamic.yaml\"\nwatch = true\n[providers.consulCatalog]",
    );
    let r = Router::start_with(&stat, &dynamic);
    assert_eq!(
        server_of(&get(r.web, "edge.example.com", "/", &[]).await.1),
        "main"
    );
    assert_eq!(
        server_of(&get(r.web, "legacy.example.com", "/", &[]).await.1),
        "shared"
    );
    assert_eq!(server(&r, false).await, (200, "main".into()));

    // A broken file keeps the file's last good layer, and Consul's updates still apply.
    r.write_dynamic("http:\n  routers: [broken\n");
    let beta = Backend::start("beta").await;
    consul
        .register("api-beta-1", "api-beta", beta.addr.port(), &[BETA_RULE])
        .await;
    until(5, || async {
        server(&r, true).await == (200, "beta".into())
    })
    .await;
    assert_eq!(
        server_of(&get(r.web, "edge.example.com", "/", &[]).await.1),
        "main"
    );

    // The Consul service the file router uses disappears: that router is refused by name (503),
    // the rest is served.
    consul.deregister("api-main-1").await;
    until(5, || async {
        get(r.web, "edge.example.com", "/", &[]).await.0 == 503
    })
    .await;
    assert_eq!(server(&r, true).await, (200, "beta".into()));
    let routers = r.admin_get("/api/http/routers/edge@file").await;
    assert!(
        routers.contains("api-main@consulcatalog does not exist"),
        "{routers}"
    );
}

#[tokio::test]
async fn the_token_is_sent_and_never_logged_and_bad_tags_are_located() {
    let consul = FakeConsul::start(&["--token", "s3cr3t-t0ken"]);
    let main = Backend::start("main").await;
    consul
        .call("PUT", "/v1/agent/service/register", json!({
            "ID": "api-main-1", "Name": "api-main", "Address": "127.0.0.1", "Port": main.addr.port(),
            "Tags": [MAIN_RULE], "Check": {"TTL": "1h", "Status": "passing"},
        }), &[("X-Consul-Token", "s3cr3t-t0ken")])
        .await;
    consul
        .call("PUT", "/v1/agent/service/register", json!({
            "ID": "bad-1", "Name": "bad", "Address": "127.0.0.1", "Port": 1,
            "Tags": ["traefik.http.routers.bad.rule=Host(`bad.example.com`", "traefik.http.routers.bad.priority=high"],
            "Check": {"TTL": "1h", "Status": "passing"},
        }), &[("X-Consul-Token", "s3cr3t-t0ken")])
        .await;
    consul
        .call("PUT", "/v1/agent/service/register", json!({
            "ID": "tagged-1", "Name": "tagged", "Address": "127.0.0.1", "Port": main.addr.port(),
            "Tags": ["traefik.enable=true", "traefik.http.routers.tagged.rule=Host(`tagged.example.com`)"],
            "Check": {"TTL": "1h", "Status": "passing"},
        }), &[("X-Consul-Token", "s3cr3t-t0ken")])
        .await;
    let stat = static_config(&consul.url, "exposedByDefault = false").replace(
        "[serversTransport",
        "token = \"s3cr3t-t0ken\"\n[serversTransport",
    );
    let r = Router::start_with(&stat, "");
    // Not exposed by default: nothing routed until tagged, and Consul is asked with the tag filter.
    assert_eq!(server(&r, false).await.0, 404);
    let reqs = consul.requests().await;
    assert!(reqs.iter().all(|q| q["had_token"] == true), "{reqs:?}");
    assert!(
        reqs.iter().any(|q| q["path"] == "/v1/health/service/tagged"
            && q["query"]["tag"] == json!(["traefik.enable=true"])),
        "{reqs:?}"
    );
    assert!(
        !reqs
            .iter()
            .any(|q| q["path"] == "/v1/health/service/api-main"),
        "a service not enabled is not read: {reqs:?}"
    );
    assert_eq!(
        server_of(&get(r.web, "tagged.example.com", "/", &[]).await.1),
        "main"
    );
    assert!(!r.stderr().contains("s3cr3t"), "{}", r.stderr());

    let log = r.stderr();
    assert!(!log.contains("s3cr3t"));
    drop(r);
    let stat = static_config(&consul.url, "").replace(
        "[serversTransport",
        "token = \"s3cr3t-t0ken\"\n[serversTransport",
    );
    let r = Router::start_with(&stat, "");
    assert_eq!(server(&r, false).await, (200, "main".into()));
    let log = r.stderr();
    assert!(
        log.contains("consul service bad instance bad-1 on node"),
        "the dropped instance is named: {log}"
    );
    assert!(log.contains("instance dropped"), "{log}");
    assert!(!log.contains("s3cr3t"), "{log}");
}

/// Against a real Consul agent, when one is configured (`CONSUL_HTTP_ADDR`); skipped otherwise.
#[tokio::test]
async fn a_real_agent_when_one_is_configured() {
    let Ok(addr) = std::env::var("CONSUL_HTTP_ADDR") else {
        eprintln!("CONSUL_HTTP_ADDR is not set: no real Consul agent to test against");
        return;
    };
    let main = Backend::start("main").await;
    let host = addr.trim_start_matches("http://").to_owned();
    let target: std::net::SocketAddr = tokio::net::lookup_host(&host)
        .await
        .unwrap()
        .next()
        .unwrap();
    let id = format!("betaroute-test-{}", std::process::id());
    let body = json!({"ID": id, "Name": id, "Address": "127.0.0.1", "Port": main.addr.port(),
        "Tags": [format!("traefik.http.routers.{id}.rule=Host(`{id}.example.com`)")],
        "Check": {"TTL": "1h", "Status": "passing"}});
    let token = std::env::var("CONSUL_HTTP_TOKEN").unwrap_or_default();
    let headers: Vec<(&str, &str)> = if token.is_empty() {
        vec![]
    } else {
        vec![("X-Consul-Token", token.as_str())]
    };
    let (s, b) = request(
        &client(),
        target,
        "PUT",
        &host,
        "/v1/agent/service/register",
        &headers,
        Bytes::from(body.to_string()),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let r = Router::start_with(&static_config(&host, "watch = true"), "");
    let host_header = format!("{id}.example.com");
    until(10, || async {
        server_of(&get(r.web, &host_header, "/", &[]).await.1) == "main"
    })
    .await;
    request(
        &client(),
        target,
        "PUT",
        &host,
        &format!("/v1/agent/service/deregister/{id}"),
        &headers,
        Bytes::new(),
    )
    .await;
}

#[tokio::test]
async fn tls_to_consul_with_a_private_ca_and_a_client_certificate() {
    let dir = temp_dir();
    pki(&dir);
    let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    let main = Backend::start("main").await;
    // The test's own client speaks plain HTTP: the fake starts with its catalog instead.
    let state = json!({"services": [{"ID": "api-main-1", "Service": "api-main", "Address": "127.0.0.1",
        "Port": main.addr.port(), "Tags": [MAIN_RULE], "Checks": [{"CheckID": "c", "Name": "c", "Status": "passing"}]}]});
    let state_file = dir.join("state.json");
    std::fs::write(&state_file, state.to_string()).unwrap();
    let consul = FakeConsul::start(&[
        "--tls-cert",
        &p("server.pem"),
        "--tls-key",
        &p("server.key"),
        "--tls-client-ca",
        &p("ca.pem"),
        "--state",
        state_file.to_str().unwrap(),
    ]);
    assert!(consul.url.starts_with("https://"), "{}", consul.url);
    let tls = format!(
        "[providers.consulCatalog.endpoint.tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        p("ca.pem"),
        p("client.pem"),
        p("client.key")
    );
    let r = Router::start_with(
        &format!("{}{tls}", static_config(&consul.url, "watch = true")),
        "",
    );
    assert_eq!(
        server(&r, false).await,
        (200, "main".into()),
        "{}",
        r.stderr()
    );
    drop(r);

    // Without the client certificate Consul refuses the handshake: said so, nothing routed.
    let tls = format!(
        "[providers.consulCatalog.endpoint.tls]\nca = \"{}\"\n",
        p("ca.pem")
    );
    let r = Router::start_with(&format!("{}{tls}", static_config(&consul.url, "")), "");
    assert_eq!(server(&r, false).await.0, 404);
    r.wait_admin("/api/providers", 10, |s| s.contains("\"up\":false"))
        .await;
    drop(r);

    // Without the CA the server is not trusted, unless insecureSkipVerify says so.
    let tls = format!(
        "[providers.consulCatalog.endpoint.tls]\ncert = \"{}\"\nkey = \"{}\"\ninsecureSkipVerify = true\n",
        p("client.pem"), p("client.key")
    );
    let r = Router::start_with(&format!("{}{tls}", static_config(&consul.url, "")), "");
    assert_eq!(server(&r, false).await, (200, "main".into()));
}

#[tokio::test]
async fn the_kill_switch_from_a_consul_kv_key() {
    let consul = FakeConsul::start(&[]);
    let main = Backend::start("main").await;
    let beta = Backend::start("beta").await;
    consul
        .register("api-main-1", "api-main", main.addr.port(), &[MAIN_RULE])
        .await;
    consul
        .register("api-beta-1", "api-beta", beta.addr.port(), &[BETA_RULE])
        .await;
    let r = Router::start_with(
        &static_config(
            &consul.url,
            "watch = true\ncohortsKey = \"betaroute/cohorts/beta/enabled\"",
        ),
        "",
    );
    // No key yet: beta is on.
    assert_eq!(server(&r, true).await, (200, "beta".into()));
    consul.wait_parked(3).await;
    let put = |v: &'static str| {
        let consul = &consul;
        async move {
            let (s, b) = request(
                &client(),
                consul.addr,
                "PUT",
                "consul",
                "/v1/kv/betaroute/cohorts/beta/enabled",
                &[],
                Bytes::from(v),
            )
            .await;
            assert_eq!(s, 200, "{b}");
        }
    };
    put("false").await;
    let took = until(3, || async { server(&r, true).await.1 == "main" }).await;
    eprintln!("consul kv kill switch took {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let api = r.admin_get("/api/cohorts/beta").await;
    assert!(
        api.contains("\"provider\":\"consulcatalog\"") && api.contains("\"enabled\":false"),
        "{api}"
    );

    // A value that is not true or false keeps the last good configuration (beta off).
    put("maybe").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server(&r, true).await.1, "main");
    let m = r.admin_get("/metrics").await;
    assert!(
        m.contains("betaroute_provider_up{provider=\"consulcatalog\"} 0"),
        "{m}"
    );

    put("TRUE").await;
    until(3, || async { server(&r, true).await.1 == "beta" }).await;
    // The key deleted: the switch is unset, beta on.
    put("false").await;
    until(3, || async { server(&r, true).await.1 == "main" }).await;
    let (s, _) = request(
        &client(),
        consul.addr,
        "DELETE",
        "consul",
        "/v1/kv/betaroute/cohorts/beta/enabled",
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(s, 200);
    until(3, || async { server(&r, true).await.1 == "beta" }).await;
}
