//! Traefik conformance of the configuration, through the real binary: `check`, `route explain`
//! and `serve` on files shaped like the ones Traefik users write. Each case is a defect found
//! when betaroute was tried against Traefik's own tests and real configuration files.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{betaroute, get, server_of, temp_dir, Backend, Router};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn check_dynamic(name: &str, text: &str) -> (i32, String, String) {
    let p = write(&temp_dir(), name, text);
    betaroute(&["check", "--dynamic", p.to_str().unwrap()])
}

fn explain(config: &Path, url: &str, headers: &[&str]) -> serde_json::Value {
    let mut args = vec!["route", "explain", "--config", config.to_str().unwrap()];
    for h in headers {
        args.extend(["-H", h]);
    }
    args.push(url);
    let (code, out, err) = betaroute(&args);
    assert!(code == 0 || code == 1, "exit {code}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out} / {err}"))
}

#[test]
fn host_star_matches_every_host_with_priority_nine() {
    for url in ["http://anything.example/x", "http://127.0.0.1:9/"] {
        let (code, out, _) = betaroute(&["route", "explain", "--rule", "Host(`*`)", url]);
        assert_eq!(code, 0, "{url}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["priority"], 9, "{out}");
    }
}

#[test]
fn priorities_above_the_user_maximum_are_refused_at_their_line() {
    let max = i64::MAX - 1000;
    let dynamic = |p: i64| {
        format!("http:\n  routers:\n    r:\n      rule: Host(`a`)\n      service: s\n      priority: {p}\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n")
    };
    let (code, _, err) = check_dynamic("ok.yaml", &dynamic(max));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = check_dynamic("high.yaml", &dynamic(max + 1));
    assert_eq!(code, 2);
    assert!(err.contains("high.yaml:6:17:"), "{err}");
    assert!(
        err.contains("exceeds the maximum user-defined priority"),
        "{err}"
    );
}

/// Traefik's file provider matches keys in any letter case: these real spellings must load and
/// mean what they say.
#[test]
fn keys_in_any_letter_case_are_honoured() {
    let dir = temp_dir();
    let dynamic = write(
        &dir,
        "lower.yaml",
        "http:\n  Routers:\n    r:\n      Rule: Host(`a.example`)\n      SERVICE: s@file\n      entrypoints: [web]\n      priority: \"5\"\n  services:\n    s:\n      loadbalancer:\n        PassHostHeader: false\n        servers:\n          - URL: http://127.0.0.1:1\n            Weight: 2\n",
    );
    let (code, out, err) = betaroute(&["check", "--dynamic", dynamic.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let v = explain(&dynamic, "http://a.example/", &[]);
    assert_eq!(v["router"], "r@file");
    assert_eq!(v["service"], "s@file");
    assert_eq!(v["priority"], 5);
}

#[tokio::test]
async fn lowercase_entrypoints_restrict_the_router() {
    let main = Backend::start("main").await;
    let other = Backend::start("other").await;
    let stat = "[entryPoints.web]\naddress = \"127.0.0.1:0\"\n[entryPoints.internal]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"127.0.0.1:0\"\n[providers.file]\nfilename = \"dynamic.yaml\"\n";
    let dynamic = format!(
        "http:\n  routers:\n    only-internal:\n      rule: Host(`api.example.com`)\n      entrypoints:\n        - internal\n      service: other\n      priority: 100\n    public:\n      rule: Host(`api.example.com`)\n      service: main\n  services:\n    main:\n      LoadBalancer:\n        servers:\n          - url: {}\n    other:\n      loadBalancer:\n        servers:\n          - url: {}\n",
        main.url(),
        other.url()
    );
    let r = Router::start_with(stat, &dynamic);
    let (status, body) = get(r.web, "api.example.com", "/", &[]).await;
    assert_eq!((status, server_of(&body).as_str()), (200, "main"));
}

#[test]
fn a_service_qualified_with_its_own_provider_resolves() {
    let (code, out, err) = check_dynamic(
        "at.toml",
        "[http.routers.r]\nrule = \"Host(`a`)\"\nservice = \"s@file\"\n[[http.services.s.loadBalancer.servers]]\nurl = \"http://127.0.0.1:1\"\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = check_dynamic(
        "docker.toml",
        "[http.routers.r]\nrule = \"Host(`a`)\"\nservice = \"s@docker\"\n",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "docker.toml:3:11: refused: router r@file: service s@docker is from provider \"docker\", which is not running"
        ),
        "{err}"
    );
}

#[test]
fn errors_point_at_the_key_that_is_wrong() {
    let (code, _, err) = check_dynamic(
        "typo.yaml",
        "# a comment\nhttp:\n  services:\n    a:\n      loadBalancr:\n        servers: []\n    b:\n      loadBalancer:\n        servers:\n          - url: ftp://x\n    c:\n      weighted: {}\n  routers:\n    norule:\n      service: a\n",
    );
    assert_eq!(code, 2);
    let lines: Vec<&str> = err.lines().collect();
    let has = |prefix: &str, text: &str| {
        assert!(
            lines.iter().any(|l| l.contains(prefix) && l.contains(text)),
            "no line {prefix}...{text} in:\n{err}"
        )
    };
    has("typo.yaml:5:7:", "unknown key \"loadBalancr\"");
    // The misspelt kind is reported once, at its key, not again as a missing kind.
    assert!(!err.contains("found none"), "{err}");
    has("typo.yaml:10:18:", "url \"ftp://x\" is not http(s)://");
    has(
        "typo.yaml:12:17:",
        "service c: weighted: services is missing or empty",
    );
    has("typo.yaml:14:5:", "router norule: no rule");
}

#[test]
fn unsupported_features_are_refused_by_name_at_their_line() {
    let (code, out, err) = check_dynamic(
        "features.yaml",
        "http:\n  routers:\n    admin:\n      rule: Host(`a`) && PathPrefix(`/admin`)\n      service: s\n      middlewares:\n        - auth\n    secure:\n      rule: Host(`b`)\n      service: s\n      tls:\n        certResolver: le\n  middlewares:\n    auth:\n      forwardAuth:\n        address: http://127.0.0.1:1\n        forwardBody: true\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\ntcp:\n  routers: {}\n",
    );
    assert_eq!(code, 2, "{out}");
    for want in [
        "features.yaml:7:11: refused: router admin@file uses middleware auth@file (forwardAuth), forwardBody is not supported yet",
        "features.yaml:12:9: refused: router secure: tls: certResolver (ACME) cannot work offline",
        "features.yaml:23:1: refused: dynamic configuration: tcp is not supported yet",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(out.contains("refused"), "{out}");
}

#[test]
fn informational_keys_are_warnings_and_exit_zero() {
    let (code, out, err) = check_dynamic(
        "obs.yaml",
        "http:\n  routers:\n    r:\n      rule: Host(`a`)\n      service: s\n      observability:\n        accessLogs: false\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("obs.yaml:6:7: warning: router r: observability is ignored"),
        "{err}"
    );
    assert!(out.contains(": ok:"), "{out}");
}

/// A router whose middleware is refused answers 503 and never falls through to a lower-priority
/// router that would serve the same request without its protection.
#[tokio::test]
async fn a_refused_router_answers_503_instead_of_falling_through() {
    let main = Backend::start("main").await;
    let dynamic = format!(
        "http:\n  routers:\n    admin:\n      rule: Host(`api.example.com`) && PathPrefix(`/admin`)\n      service: main\n      middlewares: [auth]\n    public:\n      rule: Host(`api.example.com`)\n      service: main\n  middlewares:\n    auth:\n      forwardAuth:\n        address: http://127.0.0.1:1\n        forwardBody: true\n  services:\n    main:\n      loadBalancer:\n        servers:\n          - url: {}\n",
        main.url()
    );
    let r = Router::start(&dynamic);
    let (status, body) = get(r.web, "api.example.com", "/admin/users", &[]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(main.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    let (status, body) = get(r.web, "api.example.com", "/public", &[]).await;
    assert_eq!((status, server_of(&body).as_str()), (200, "main"));
    assert!(
        r.stderr()
            .contains("router admin@file uses middleware auth@file (forwardAuth), forwardBody is not supported yet"),
        "{}",
        r.stderr()
    );
}

/// A dynamic file whose routers have `entryPoints:` keys is not a static file: 24 of 43 real
/// Traefik files were misread that way.
#[test]
fn dynamic_files_are_told_from_static_ones_by_their_top_level_keys() {
    let dir = temp_dir();
    let dynamic = write(
        &dir,
        "routes.yml",
        "http:\n  routers:\n    r:\n      entryPoints:\n        - web\n      rule: Host(`a`)\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n",
    );
    for flag in ["--config", "--dynamic"] {
        let (code, out, err) = betaroute(&["check", flag, dynamic.to_str().unwrap()]);
        assert_eq!(code, 0, "{flag}: {out}{err}");
        assert!(out.contains("1 router(s)"), "{out}");
    }
    // A static file names its dynamic files; their routers' entry points are checked.
    write(&dir, "betaroute.toml", "[entryPoints.websecure]\naddress = \":8443\"\n[providers.file]\nfilename = \"routes.yml\"\n");
    let (code, _, err) = betaroute(&[
        "check",
        "--config",
        dir.join("betaroute.toml").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("router r@file: entry point \"web\" does not exist"),
        "{err}"
    );
}

#[test]
fn a_closed_output_pipe_is_not_a_panic() {
    let dir = temp_dir();
    let dynamic = write(
        &dir,
        "d.yaml",
        "http:\n  routers:\n    r:\n      rule: Host(`a`)\n      service: s\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_betaroute"))
        .args(["check", "--dynamic", dynamic.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before anything is written
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The cohort of a request is what routing used: the metric label, the access log and the
/// chosen router agree, whatever the header's value, and with a renamed cohort header.
#[tokio::test]
async fn metric_label_access_log_and_router_agree_on_the_cohort() {
    for header in ["X-RiksTV-Beta", "X-Canary"] {
        let main = Backend::start("main").await;
        let beta = Backend::start("beta").await;
        let stat = common::STATIC.to_owned()
            + &format!("[cohort]\nheader = \"{header}\"\n[entryPoints.web.routingHeaders]\ntrust = \"any\"\n");
        let dynamic =
            common::beta_main_config(&main.url(), &beta.url()).replace("X-RiksTV-Beta", header);
        let r = Router::start_with(&stat, &dynamic);
        let cases = [
            (Some("true"), "beta"),
            (Some("TRUE"), "main"),
            (Some("1"), "main"),
            (None, "main"),
        ];
        for (value, want) in cases {
            let headers: Vec<(&str, &str)> = value.iter().map(|v| (header, *v)).collect();
            let (status, body) = get(r.web, "api.example.com", "/", &headers).await;
            assert_eq!(
                (status, server_of(&body).as_str()),
                (200, want),
                "{header}: {value:?}"
            );
        }
        let m = r.admin_get("/metrics").await;
        for (router, cohort, n) in [("api-beta", "beta", 1), ("api-main", "main", 3)] {
            let line = format!("betaroute_requests_total{{entrypoint=\"web\",router=\"{router}@file\",service=\"{}@file\",cohort=\"{cohort}\",code=\"2xx\"}} {n}", &router[4..]);
            assert!(m.contains(&line), "{header}: no {line} in\n{m}");
        }
        assert!(
            !m.contains("router=\"api-main@file\",service=\"main@file\",cohort=\"beta\""),
            "{m}"
        );
        let log_path = r.dir.join("access.log");
        let mut lines = Vec::new();
        for _ in 0..100 {
            lines = std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            if lines.len() == 4 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let logged: Vec<(String, String)> = lines
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["router"].as_str().unwrap().to_owned(),
                    v["cohort"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = cases
            .iter()
            .map(|(_, c)| (format!("api-{c}@file"), (*c).to_owned()))
            .collect();
        assert_eq!(logged, want, "{header}");
    }
}

/// `healthCheck.port` checks another port than the server's (Traefik's option, once warned
/// about and ignored): the server is judged by the health of what answers on that port.
#[tokio::test]
async fn health_checks_use_the_configured_port() {
    let a = Backend::start("a").await;
    let probe = Backend::start("probe").await;
    probe
        .healthy
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let port = probe.addr.port();
    let dynamic = format!(
        "http:\n  routers:\n    r:\n      rule: Host(`api.example.com`)\n      service: s\n  services:\n    s:\n      loadBalancer:\n        healthCheck:\n          path: /health\n          interval: 100ms\n          unhealthyInterval: 100ms\n          timeout: 1s\n          port: {port}\n        servers:\n          - url: {}\n",
        a.url()
    );
    let r = Router::start(&dynamic);
    r.wait_admin("/metrics", 10, |m| {
        m.contains(&format!("url=\"{}/\"}} 0", a.url()))
    })
    .await;
    let (status, _) = get(r.web, "api.example.com", "/", &[]).await;
    assert_eq!(status, 503);
    assert_eq!(a.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    probe
        .healthy
        .store(true, std::sync::atomic::Ordering::SeqCst);
    r.wait_admin("/metrics", 10, |m| {
        m.contains(&format!("url=\"{}/\"}} 1", a.url()))
    })
    .await;
    let (status, body) = get(r.web, "api.example.com", "/", &[]).await;
    assert_eq!((status, server_of(&body).as_str()), (200, "a"));
}

#[test]
fn explain_takes_dynamic_files_explicitly() {
    let dir = temp_dir();
    let a = write(
        &dir,
        "a.yaml",
        "http:\n  routers:\n    api:\n      rule: Host(`api.example.com`)\n      service: s\n",
    );
    let b = write(
        &dir,
        "b.toml",
        "[[http.services.s.loadBalancer.servers]]\nurl = \"http://127.0.0.1:1\"\n",
    );
    let (code, out, err) = betaroute(&[
        "route",
        "explain",
        "--dynamic",
        a.to_str().unwrap(),
        "--dynamic",
        b.to_str().unwrap(),
        "http://api.example.com/x",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["router"].as_str(), v["service"].as_str()),
        (Some("api@file"), Some("s@file"))
    );
}

/// A static setting that would change what is served stops the load, named at its line.
#[test]
fn refused_static_settings_stop_the_load() {
    let dir = temp_dir();
    write(&dir, "d.yaml", "http: {}\n");
    let stat = write(
        &dir,
        "traefik.yml",
        "entryPoints:\n  web:\n    address: \":80\"\n    http:\n      encodeQuerySemicolons: true\nproviders:\n  file:\n    filename: d.yaml\nlog:\n  level: DEBUG\n",
    );
    let (code, _, err) = betaroute(&["check", "--config", stat.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("traefik.yml:5:7: refused: entry point web: http: encodeQuerySemicolons is not supported yet"), "{err}");
    let (code, _, err) = betaroute(&["serve", "--config", stat.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("refused: entry point web: http: encodeQuerySemicolons"),
        "{err}"
    );
}

/// `providers.consulCatalog` is read with Traefik's option names; a mistake in the default rule
/// template or the constraints is located at the byte where it is, and a valid section checks
/// without contacting Consul.
#[test]
fn consul_catalog_options_are_checked_where_they_are_written() {
    let dir = temp_dir();
    let bad = write(
        &dir,
        "consul.toml",
        "[entryPoints.web]\naddress = \":80\"\n[providers.consulCatalog]\ndefaultRule = \"Host(`{{ normalise .Name }}`)\"\nconstraints = \"Tag(`a`) && Label(`b`)\"\nstrictChecks = [\"passing\", \"healthy\"]\nconnectAware = true\n[providers.consulCatalog.endpoint]\naddress = \"127.0.0.1:1\"\n",
    );
    let (code, _, err) = betaroute(&["check", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    for want in [
        "consul.toml:4:25: static configuration: providers: consulCatalog: defaultRule: template: function \"normalise\" not defined",
        "consul.toml:5:28: static configuration: providers: consulCatalog: constraints: unsupported function: Label (valid: Tag, TagRegex)",
        "consul.toml:6:28: static configuration: providers: consulCatalog: strictChecks: \"healthy\" is not a health status",
        "consul.toml:7:1: refused: static configuration: providers: consulCatalog: connectAware",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let good = write(
        &dir,
        "good.toml",
        "[entryPoints.web]\naddress = \":80\"\n[providers.file]\nfilename = \"d.yaml\"\n[providers.consulCatalog]\nexposedByDefault = false\nconstraints = \"Tag(`team=api`) || TagRegex(`^canary`)\"\n",
    );
    write(
        &dir,
        "d.yaml",
        "http:\n  routers:\n    edge:\n      rule: Host(`e`)\n      service: api@consulcatalog\n",
    );
    let (code, out, err) = betaroute(&["check", "--config", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("routers of Consul's catalog at run time"),
        "{out}"
    );
    assert!(err.contains("warning: router edge@file: service api@consulcatalog does not exist in a catalog not read yet"), "{err}");
}
