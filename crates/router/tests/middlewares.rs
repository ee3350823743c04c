//! Middlewares through the real binary over sockets: a Traefik dynamic file using the path and
//! redirect middlewares (directly, in a `chain`, across files), what the backend receives, what
//! the client gets back, and what the router refuses by name.

mod common;

use common::*;

fn config(backend: &str) -> String {
    format!(
        r#"
http:
  routers:
    api:
      rule: "Host(`api.example.com`) && PathPrefix(`/api`)"
      service: app
      middlewares: [strip-api, add-v2@file]
    legacy:
      rule: "Host(`api.example.com`) && PathPrefix(`/old`)"
      service: app
      middlewares: [legacy-chain]
    insecure:
      rule: "Host(`www.example.com`)"
      service: app
      middlewares: [to-https]
    moved:
      rule: "Host(`moved.example.com`)"
      service: app
      middlewares: [moved]
  middlewares:
    strip-api:
      stripPrefix:
        prefixes: ["/api"]
    add-v2:
      addPrefix:
        prefix: /v2
    legacy-chain:
      chain:
        middlewares: [old-to-new, strip-api]
    old-to-new:
      replacePathRegex:
        regex: "^/old/(.*)"
        replacement: "/api/items/$1"
    to-https:
      redirectScheme:
        scheme: https
        permanent: true
    moved:
      redirectRegex:
        regex: "^http://moved.example.com/(.*)"
        replacement: "https://new.example.com/${{1}}"
  services:
    app:
      loadBalancer:
        servers: [{{url: "{backend}"}}]
"#
    )
}

/// The static configuration with the test client as a trusted proxy (its X-Forwarded-* count).
fn trusted() -> String {
    STATIC.replace(
        "[admin]",
        "[entryPoints.web.forwardedHeaders]\ntrustedIPs = [\"127.0.0.1/32\"]\n[admin]",
    )
}

fn seen(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not the backend's JSON: {body}"))
}

#[tokio::test]
async fn path_and_redirect_middlewares_over_the_wire() {
    let app = Backend::start("app").await;
    let r = Router::start_with(&trusted(), &config(&app.url()));
    let c = client();

    // stripPrefix then addPrefix: the backend sees /v2/users?x=1, and the stripped prefix.
    let (status, body) = get(r.web, "api.example.com", "/api/users?x=1", &[]).await;
    assert_eq!(status, 200, "{body}\n{}", r.stderr());
    let b = seen(&body);
    assert_eq!(b["uri"], "/v2/users?x=1");
    assert_eq!(b["headers"]["x-forwarded-prefix"], "/api");

    // An encoded slash survives the strip as Traefik keeps it (RawPath).
    let (_, body) = get(r.web, "api.example.com", "/api/a%2Fb", &[]).await;
    assert_eq!(seen(&body)["uri"], "/v2/a%2Fb");

    // A strip that would leave a path cleaning changes is refused, as Traefik does.
    let (status, _) = get(r.web, "api.example.com", "/api/../admin", &[]).await;
    assert_eq!(status, 400);

    // A chain: replacePathRegex, then stripPrefix; the original path in X-Replaced-Path.
    let (status, body) = get(r.web, "api.example.com", "/old/42", &[]).await;
    assert_eq!(status, 200, "{body}");
    let b = seen(&body);
    assert_eq!(b["uri"], "/items/42");
    assert_eq!(b["headers"]["x-replaced-path"], "/old/42");
    assert_eq!(b["headers"]["x-forwarded-prefix"], "/api");

    // redirectScheme: 301 for GET, 308 for POST, to the same host and path.
    let hits = app.hits.load(std::sync::atomic::Ordering::SeqCst);
    let resp = c
        .request(
            hyper::Request::get(format!("http://{}/login?next=/a", r.web))
                .header("host", "www.example.com:80")
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 301);
    assert_eq!(
        resp.headers()["location"],
        "https://www.example.com/login?next=/a"
    );
    let (status, _) = request(
        &c,
        r.web,
        "POST",
        "www.example.com",
        "/form",
        &[],
        bytes::Bytes::from("x"),
    )
    .await;
    assert_eq!(status, 308);
    // Behind a TLS-terminating proxy that says so, no redirect loop.
    let (status, _) = get(
        r.web,
        "www.example.com",
        "/",
        &[("x-forwarded-proto", "https")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.hits.load(std::sync::atomic::Ordering::SeqCst),
        hits + 1,
        "redirects never reach the backend"
    );

    // redirectRegex: 302 with the capture substituted.
    let resp = c
        .request(
            hyper::Request::get(format!("http://{}/docs/x", r.web))
                .header("host", "moved.example.com")
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "https://new.example.com/docs/x");
}

#[tokio::test]
async fn unsupported_or_broken_middlewares_are_refused_by_name() {
    let app = Backend::start("app").await;
    let yaml = format!(
        r#"
http:
  routers:
    a: {{rule: "Host(`a`)", service: app, middlewares: [auth]}}
    b: {{rule: "Host(`b`)", service: app, middlewares: [loop]}}
  middlewares:
    auth: {{forwardAuth: {{address: "http://127.0.0.1:1", forwardBody: true}}}}
    loop: {{chain: {{middlewares: [loop2]}}}}
    loop2: {{chain: {{middlewares: [loop]}}}}
  services:
    app: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
"#,
        app.url()
    );
    let r = Router::start(&yaml);
    for host in ["a", "b"] {
        let (status, _) = get(r.web, host, "/", &[]).await;
        assert_eq!(
            status, 503,
            "router {host} is refused, never served without its middleware"
        );
    }
    let err = r.stderr();
    assert!(
        err.contains("router a@file uses middleware auth@file (forwardAuth), forwardBody is not supported yet"),
        "{err}"
    );
    assert!(err.contains("router b@file uses middleware chain loop@file, which contains itself (loop@file -> loop2@file -> loop@file)"), "{err}");

    // A bad option is an error at its line: the file is not loaded at all.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_betaroute"))
        .args(["check", "--dynamic"])
        .arg({
            let f = temp_dir().join("bad.yaml");
            std::fs::write(&f, "http:\n  middlewares:\n    s:\n      stripPrefix:\n        prefixes: [/a]\n        prefixs: [/b]\n    r:\n      replacePathRegex:\n        regex: \"(\"\n").unwrap();
            f
        })
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("bad.yaml:6:9: middleware s: stripPrefix: unknown key \"prefixs\""),
        "{text}"
    );
    assert!(
        text.contains("bad.yaml:9:9: middleware r: replacePathRegex: error parsing regexp"),
        "{text}"
    );
}

#[tokio::test]
async fn headers_middleware_over_the_wire() {
    let app = Backend::start("app").await;
    let yaml = format!(
        r#"
http:
  routers:
    web:
      rule: "Host(`web.example.com`)"
      service: app
      middlewares: [secure, cors]
  middlewares:
    secure:
      headers:
        customRequestHeaders:
          X-Script-Name: test
          X-Forwarded-For: ""
          X-Drop-Me: ""
        customResponseHeaders:
          X-Custom-Response: "yes"
          Server: ""
        stsSeconds: 31536000
        stsIncludeSubdomains: true
        sslProxyHeaders:
          X-Forwarded-Proto: https
        frameDeny: true
        contentTypeNosniff: true
        referrerPolicy: no-referrer
    cors:
      headers:
        accessControlAllowMethods: [GET, OPTIONS, PUT]
        accessControlAllowOriginList: ["https://app.example.com"]
        accessControlMaxAge: 100
        addVaryHeader: true
  services:
    app: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
"#,
        app.url()
    );
    let r = Router::start_with(&trusted(), &yaml);
    let c = client();
    let send = |method: &str, headers: &[(&str, &str)]| {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(format!("http://{}/page", r.web))
            .header("host", "web.example.com");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        c.request(
            b.body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
    };
    let resp = send(
        "GET",
        &[
            ("origin", "https://app.example.com"),
            ("x-forwarded-proto", "https"),
            ("x-drop-me", "1"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(
        h["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-custom-response"], "yes");
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(h["vary"], "Origin");
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let b = seen(std::str::from_utf8(&body).unwrap());
    assert_eq!(b["headers"]["x-script-name"], "test");
    assert!(b["headers"].get("x-drop-me").is_none(), "{b}");
    assert!(
        b["headers"].get("x-forwarded-for").is_none(),
        "X-Forwarded-For: \"\" keeps the proxy's out: {b}"
    );

    // Plain http: no Strict-Transport-Security; another origin: no Allow-Origin.
    let resp = send("GET", &[("origin", "https://evil.example.com")])
        .await
        .unwrap();
    assert!(resp.headers().get("strict-transport-security").is_none());
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    // A preflight is answered by the router, never reaching the backend.
    let hits = app.hits.load(std::sync::atomic::Ordering::SeqCst);
    let resp = send(
        "OPTIONS",
        &[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "PUT"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-methods"],
        "GET,OPTIONS,PUT"
    );
    assert_eq!(resp.headers()["access-control-max-age"], "100");
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(app.hits.load(std::sync::atomic::Ordering::SeqCst), hits);
}

#[tokio::test]
async fn basic_auth_over_the_wire() {
    let app = Backend::start("app").await;
    let dir = temp_dir();
    let users = dir.join("users");
    // test:test (apr1) in the file; bcrypt and {SHA} users inline.
    std::fs::write(
        &users,
        "# staff\ntest:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/\n",
    )
    .unwrap();
    let yaml = format!(
        r#"
http:
  routers:
    admin:
      rule: "Host(`admin.example.com`)"
      service: app
      middlewares: [auth]
  middlewares:
    auth:
      basicAuth:
        usersFile: "{}"
        users:
          - "bob:$2a$04$.8sTYfcxbSplCtoxt5TdJOgpBYkarKtZYsYfYxQ1edbYRuO1DNi0e"
          - "sha:{{SHA}}W6ph5Mm5Pz8GgiULbPgzG37mj9g="
        realm: staff only
        headerField: X-WebAuth-User
        removeHeader: true
  services:
    app: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
"#,
        users.display(),
        app.url()
    );
    let r = Router::start(&yaml);
    let c = client();
    let send = |auth: Option<&str>| {
        let mut b =
            hyper::Request::get(format!("http://{}/", r.web)).header("host", "admin.example.com");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        c.request(
            b.body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
    };
    let basic = |u: &str, p: &str| {
        use base64ct::Encoding;
        format!(
            "Basic {}",
            base64ct::Base64::encode_string(format!("{u}:{p}").as_bytes())
        )
    };
    for bad in [
        None,
        Some(basic("test", "wrong")),
        Some(basic("nobody", "test")),
        Some("Bearer x".to_owned()),
    ] {
        let resp = send(bad.as_deref()).await.unwrap();
        assert_eq!(resp.status(), 401, "{bad:?}");
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Basic realm=\"staff only\""
        );
    }
    for (u, p) in [("test", "test"), ("bob", "test"), ("sha", "password")] {
        let resp = send(Some(&basic(u, p))).await.unwrap();
        assert_eq!(resp.status(), 200, "{u}");
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let b = seen(std::str::from_utf8(&body).unwrap());
        assert_eq!(b["headers"]["x-webauth-user"], u);
        assert!(
            b["headers"].get("authorization").is_none(),
            "removeHeader: {b}"
        );
    }
    let logs = format!(
        "{}{}{}",
        r.stderr(),
        r.stdout(),
        std::fs::read_to_string(r.dir.join("access.log")).unwrap_or_default()
    );
    assert!(
        !logs.contains("dGVzdDp0ZXN0") && !logs.contains("wrong"),
        "credentials are never logged"
    );
}

#[tokio::test]
async fn ip_allow_list_over_the_wire_and_never_from_a_forged_header() {
    let app = Backend::start("app").await;
    let yaml = format!(
        r#"
http:
  routers:
    local: {{rule: "Host(`local`)", service: app, middlewares: [local-only]}}
    office: {{rule: "Host(`office`)", service: app, middlewares: [office-only]}}
  middlewares:
    local-only:
      ipAllowList: {{sourceRange: ["127.0.0.1/32", "::1"]}}
    office-only:
      ipWhiteList:
        sourceRange: ["10.0.0.0/8"]
        ipStrategy: {{depth: 1}}
        rejectStatusCode: 404
  services:
    app: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
"#,
        app.url()
    );
    // An untrusted peer: its X-Forwarded-For is dropped before any middleware reads it.
    let r = Router::start(&yaml);
    assert_eq!(get(r.web, "local", "/", &[]).await.0, 200);
    let (status, body) = get(r.web, "office", "/", &[("x-forwarded-for", "10.1.2.3")]).await;
    assert_eq!((status, body.as_str()), (404, "Not Found"));
    drop(r);
    // A trusted edge in front: its X-Forwarded-For counts.
    let r = Router::start_with(&trusted(), &yaml);
    assert_eq!(
        get(r.web, "office", "/", &[("x-forwarded-for", "10.1.2.3")])
            .await
            .0,
        200
    );
    assert_eq!(
        get(
            r.web,
            "office",
            "/",
            &[("x-forwarded-for", "10.1.2.3, 192.168.1.1")]
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn rate_limit_over_the_wire() {
    let app = Backend::start("app").await;
    let yaml = format!(
        r#"
http:
  routers:
    api: {{rule: "Host(`api`)", service: app, middlewares: [limit]}}
    smooth: {{rule: "Host(`smooth`)", service: app, middlewares: [smooth]}}
    one: {{rule: "Host(`one`)", service: app, middlewares: [slow]}}
    two: {{rule: "Host(`two`)", service: app, middlewares: [slow]}}
  middlewares:
    slow:
      rateLimit: {{average: 1, period: 1m, burst: 2, sourceCriterion: {{requestHeaderName: X-Api-Key}}}}
    limit:
      rateLimit: {{average: 5, period: 1s, burst: 3, sourceCriterion: {{requestHeaderName: X-Api-Key}}}}
    smooth:
      rateLimit: {{average: 100, burst: 1}}
  services:
    app: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
"#,
        app.url()
    );
    let r = Router::start(&yaml);
    let c = client();
    let send = |key: &str| {
        let req = hyper::Request::get(format!("http://{}/", r.web))
            .header("host", "api")
            .header("x-api-key", key)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        c.request(req)
    };
    let mut codes = Vec::new();
    let mut rejected = None;
    for _ in 0..6 {
        let resp = send("alice").await.unwrap();
        codes.push(resp.status().as_u16());
        if resp.status() == 429 {
            rejected = Some(resp);
        }
    }
    assert_eq!(&codes[..3], &[200, 200, 200], "the burst: {codes:?}");
    assert!(codes[3..].contains(&429), "{codes:?}");
    let resp = rejected.unwrap();
    assert_eq!(resp.headers()["retry-after"], "1");
    assert!(
        resp.headers()["x-retry-in"]
            .to_str()
            .unwrap()
            .ends_with("ms"),
        "{:?}",
        resp.headers()
    );
    // Another source has its own bucket.
    assert_eq!(send("bob").await.unwrap().status(), 200);
    // After a second, alice has tokens again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(send("alice").await.unwrap().status(), 200);

    // One middleware, one set of buckets, however many routers name it: alice's burst of 2
    // spent through router one leaves her nothing through router two.
    let key = [("x-api-key", "alice")];
    assert_eq!(get(r.web, "one", "/", &key).await.0, 200);
    assert_eq!(get(r.web, "two", "/", &key).await.0, 200);
    assert_eq!(get(r.web, "two", "/", &key).await.0, 429);
    assert_eq!(get(r.web, "one", "/", &key).await.0, 429);

    // 100/s with a burst of 1: a request 6 ms after the last is delayed to the next token
    // (up to maxDelay, 5 ms) rather than refused, so 20 of them take at least 190 ms.
    let started = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(get(r.web, "smooth", "/", &[]).await.0, 200);
        tokio::time::sleep(std::time::Duration::from_millis(6)).await;
    }
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(190),
        "20 requests at 100/s took {took:?}"
    );
}

#[test]
fn check_prints_what_each_router_does_and_a_migration_summary() {
    let f = temp_dir().join("traefik.yaml");
    std::fs::write(
        &f,
        "http:\n  routers:\n    a: {rule: \"Host(`a`)\", service: s, middlewares: [strip, auth]}\n    b: {rule: \"Host(`b`)\", service: s, middlewares: [fwd]}\n  middlewares:\n    strip: {stripPrefix: {prefixes: [/api]}}\n    auth: {basicAuth: {users: [\"u:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/\"]}}\n    fwd: {plugin: {geoblock: {allowed: [NO]}}}\n  services:\n    s: {loadBalancer: {servers: [{url: \"http://127.0.0.1:1\"}]}}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_betaroute"))
        .args(["check", "--dynamic"])
        .arg(&f)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout.contains("router a@file: Host(`a`) -> s@file through strip@file (stripPrefix), auth@file (basicAuth): served"), "{stdout}");
    assert!(
        stdout.contains(
            "router b@file: Host(`b`) -> s@file through fwd@file (plugin): refused, answers 503"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("middlewares honoured: basicAuth (1 router(s)), stripPrefix (1 router(s))"),
        "{stdout}"
    );
    assert!(stdout.contains("middlewares refused (their routers answer 503; see the lines above): plugin (1 router(s))"), "{stdout}");
    assert!(stderr.contains("traefik.yaml:4:54: refused: router b@file uses middleware fwd@file (plugin), plugin geoblock: betaroute does not run Traefik plugins"), "{stderr}");
}

#[tokio::test]
async fn digest_auth_with_curl() {
    let app = Backend::start("app").await;
    let yaml = format!(
        r#"
http:
  routers:
    admin: {{rule: "Host(`admin.example.com`)", service: app, middlewares: [digest]}}
  middlewares:
    digest:
      digestAuth:
        users: ["test:traefik:a2688e031edb4be6a3797f3882655c05"]
        headerField: X-WebAuth-User
  services:
    app: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
"#,
        app.url()
    );
    let r = Router::start(&yaml);
    let web = r.web;
    // curl blocks: off the runtime, which serves the backend.
    let curl = move |user: &'static str| {
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "-",
                    "-w",
                    "\n%{http_code}",
                    "--digest",
                    "-u",
                    user,
                    "-H",
                    "Host: admin.example.com",
                ])
                .arg(format!("http://{web}/page?x=1"))
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    let ok = curl("test:test").await.unwrap();
    assert!(ok.ends_with("\n200"), "{ok}");
    assert!(ok.contains("\"x-webauth-user\":\"test\""), "{ok}");
    let bad = curl("test:nope").await.unwrap();
    assert!(bad.ends_with("\n401"), "{bad}");
}

#[tokio::test]
async fn in_flight_req_over_the_wire() {
    let app = Backend::start("app").await;
    app.slow_ms.store(400, std::sync::atomic::Ordering::SeqCst);
    let yaml = format!(
        r#"
http:
  routers:
    api: {{rule: "Host(`api`)", service: app, middlewares: [one]}}
  middlewares:
    one: {{inFlightReq: {{amount: 1}}}}
  services:
    app: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
"#,
        app.url()
    );
    let r = Router::start(&yaml);
    let web = r.web;
    let first = tokio::spawn(async move { get(web, "api", "/slow", &[]).await.0 });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let (status, body) = get(r.web, "api", "/slow", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (429, "max connections reached: 1\n")
    );
    assert_eq!(first.await.unwrap(), 200);
    // The slot came back with the first response.
    assert_eq!(get(r.web, "api", "/", &[]).await.0, 200);
}

/// An auth server: `Bearer good` is 200 (with X-Auth-User and a session cookie), anything else
/// 401 with a relative Location; what it was sent is kept.
async fn auth_server() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<hyper::HeaderMap>>>,
) {
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/verify", listener.local_addr().unwrap());
    let seen: std::sync::Arc<std::sync::Mutex<Vec<hyper::HeaderMap>>> = Default::default();
    let sink = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let sink = sink.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let sink = sink.clone();
                    async move {
                        sink.lock().unwrap().push(req.headers().clone());
                        let good = req
                            .headers()
                            .get("authorization")
                            .is_some_and(|v| v == "Bearer good");
                        let resp = if good {
                            hyper::Response::builder()
                                .header("x-auth-user", "alice")
                                .header("set-cookie", "session=s1; Path=/")
                                .header("set-cookie", "other=x")
                                .body(http_body_util::Full::new(bytes::Bytes::from("ok")))
                        } else {
                            hyper::Response::builder()
                                .status(401)
                                .header("www-authenticate", "Bearer realm=\"api\"")
                                .header("location", "/login?next=1")
                                .body(http_body_util::Full::new(bytes::Bytes::from("nope")))
                        };
                        Ok::<_, std::convert::Infallible>(resp.unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn forward_auth_over_the_wire() {
    let app = Backend::start("app").await;
    let (auth, seen_by_auth) = auth_server().await;
    let yaml = format!(
        r#"
http:
  routers:
    api: {{rule: "Host(`api.example.com`)", service: app, middlewares: [auth]}}
  middlewares:
    auth:
      forwardAuth:
        address: "{auth}"
        trustForwardHeader: false
        authResponseHeaders: [X-Auth-User]
        addAuthCookiesToResponse: [session]
  services:
    app: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
"#,
        app.url()
    );
    let r = Router::start(&yaml);
    let c = client();
    let send = |auth: &str| {
        let req = hyper::Request::get(format!("http://{}/page?x=1", r.web))
            .header("host", "api.example.com")
            .header("authorization", auth)
            .header("x-auth-user", "mallory")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        c.request(req)
    };
    let resp = send("Bearer good").await.unwrap();
    assert_eq!(resp.status(), 200);
    let cookies: Vec<_> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        cookies,
        ["session=s1; Path=/"],
        "only the named auth cookie reaches the client"
    );
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let b = seen(std::str::from_utf8(&body).unwrap());
    assert_eq!(
        b["headers"]["x-auth-user"], "alice",
        "the auth server's, never the client's: {b}"
    );
    let asked = seen_by_auth.lock().unwrap()[0].clone();
    assert_eq!(asked["x-forwarded-method"], "GET");
    assert_eq!(asked["x-forwarded-uri"], "/page?x=1");
    assert_eq!(asked["x-forwarded-host"], "api.example.com");
    assert_eq!(asked["x-forwarded-proto"], "http");
    assert_eq!(asked["authorization"], "Bearer good");

    // Refused: the auth server's answer, as it gave it; its relative Location made absolute.
    let hits = app.hits.load(std::sync::atomic::Ordering::SeqCst);
    let resp = send("Bearer bad").await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"api\"");
    let origin = auth.trim_end_matches("/verify");
    assert_eq!(
        resp.headers()["location"],
        format!("{origin}/login?next=1").as_str()
    );
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"nope");
    assert_eq!(app.hits.load(std::sync::atomic::Ordering::SeqCst), hits);
}

/// `compress` with curl as the client: each codec chosen by Accept-Encoding and decoded by
/// curl, a chunked body held back until the minimum, and what must go as it came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_over_the_wire_with_curl() {
    let page = "<p>betaroute compresses this</p>\n".repeat(200);
    let body = page.clone();
    let (url, _) = scripted(move |req, _| {
        let b = body.as_bytes();
        match req.uri.path() {
            "/page" => Reply::new(200, &[("content-type", "text/html; charset=utf-8")], &[b]),
            // Chunked (no Content-Length), in pieces below and then above the minimum.
            "/chunked" => Reply::new(
                200,
                &[("content-type", "text/plain")],
                &[&b[..500], &b[500..]],
            ),
            "/small" => Reply::new(200, &[("content-type", "text/plain")], &[b"tiny"]),
            "/small-chunked" => Reply::new(200, &[], &[b"ti", b"ny"]),
            "/encoded" => Reply::new(200, &[("content-encoding", "br")], &[b]),
            "/image" => Reply::new(200, &[("content-type", "image/png")], &[b]),
            "/range" => Reply::new(206, &[("content-range", "bytes 0-6599/9999")], &[b]),
            _ => Reply::new(404, &[], &[]),
        }
    })
    .await;
    let dynamic = format!(
        r#"
http:
  routers:
    site:
      rule: "Host(`site.example.com`)"
      service: app
      middlewares: [squeeze]
  middlewares:
    squeeze:
      compress:
        excludedContentTypes: ["image/png"]
  services:
    app:
      loadBalancer:
        servers: [{{url: "{url}"}}]
"#
    );
    let r = Router::start(&dynamic);
    let at = |path: &str| format!("http://{}{path}", r.web);
    let header = |h: &[(String, String)], name: &str| {
        h.iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let host = "Host: site.example.com";
    for (accept, token) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip;q=0.5, br;q=0.8, zstd;q=0.1", "br"),
        ("*", "gzip"),
    ] {
        // curl decodes what it is sent; the head says how it came.
        let (status, h, got) = tokio::task::block_in_place(|| {
            curl(&[
                "--compressed",
                "-H",
                host,
                "-H",
                &format!("Accept-Encoding: {accept}"),
                &at("/page"),
            ])
        });
        assert_eq!(status, 200, "{}", r.stderr());
        assert_eq!(
            header(&h, "content-encoding"),
            token,
            "Accept-Encoding: {accept}"
        );
        assert_eq!(header(&h, "vary"), "Accept-Encoding");
        assert!(
            header(&h, "content-length").is_empty(),
            "no Content-Length once compressed"
        );
        assert_eq!(
            String::from_utf8(got).unwrap(),
            page,
            "{token} decodes to the page"
        );
        // The raw bytes are smaller than the page.
        let (_, _, raw) = tokio::task::block_in_place(|| {
            curl(&[
                "-H",
                host,
                "-H",
                &format!("Accept-Encoding: {accept}"),
                &at("/page"),
            ])
        });
        assert!(raw.len() < page.len() / 5, "{token}: {} bytes", raw.len());
    }
    // A chunked body, its first chunk below the minimum: held back, then compressed whole.
    let (_, h, got) = tokio::task::block_in_place(|| {
        curl(&[
            "--compressed",
            "-H",
            host,
            "-H",
            "Accept-Encoding: gzip",
            &at("/chunked"),
        ])
    });
    assert_eq!(header(&h, "content-encoding"), "gzip");
    assert_eq!(String::from_utf8(got).unwrap(), page);
    // What must go as it came: short bodies (with or without Content-Length), an encoded body,
    // an excluded type, a range, a HEAD, no Accept-Encoding.
    for (path, extra, want) in [
        ("/small", "Accept-Encoding: gzip", "tiny".to_owned()),
        ("/small-chunked", "Accept-Encoding: gzip", "tiny".to_owned()),
        ("/encoded", "Accept-Encoding: gzip, br", page.clone()),
        ("/image", "Accept-Encoding: gzip", page.clone()),
        ("/range", "Accept-Encoding: gzip", page.clone()),
        ("/page", "X-No-Accept: 1", page.clone()),
    ] {
        let (_, h, got) =
            tokio::task::block_in_place(|| curl(&["-H", host, "-H", extra, &at(path)]));
        let encoding = header(&h, "content-encoding");
        assert!(
            encoding.is_empty() || (path == "/encoded" && encoding == "br"),
            "{path}: {encoding}"
        );
        assert_eq!(String::from_utf8_lossy(&got), want, "{path} as it came");
        // Vary whenever a compressor was chosen, compressed or not.
        let vary = header(&h, "vary");
        assert_eq!(
            vary.is_empty(),
            extra.starts_with("X-No"),
            "{path}: Vary {vary:?}"
        );
    }
    let (_, h, _) = tokio::task::block_in_place(|| {
        curl(&[
            "-I",
            "-H",
            host,
            "-H",
            "Accept-Encoding: gzip",
            &at("/page"),
        ])
    });
    assert!(
        header(&h, "content-encoding").is_empty(),
        "HEAD is never compressed"
    );
}

/// `retry`: a backend that fails twice, then answers; what is tried again (by status, by
/// method, with the body sent again whole), and a refused connection tried again with backoff.
#[tokio::test]
async fn retry_over_the_wire() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let failures = std::sync::Arc::new(AtomicUsize::new(0));
    let left = failures.clone();
    let (url, seen) = scripted(move |_, _| {
        // Each request takes one failure while there are any.
        let failing = left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            Reply::new(503, &[("x-try", "failed")], &[b"busy"])
        } else {
            Reply::new(200, &[], &[b"done"])
        }
    })
    .await;
    let dynamic = format!(
        r#"
http:
  routers:
    api:
      rule: "Host(`api.example.com`)"
      service: app
      middlewares: [again]
    posts:
      rule: "Host(`posts.example.com`)"
      service: app
      middlewares: [again-posts]
    dead:
      rule: "Host(`dead.example.com`)"
      service: nowhere
      middlewares: [again]
  middlewares:
    again:
      retry:
        attempts: 3
        initialInterval: 10ms
        status: ["500-503"]
    again-posts:
      retry:
        attempts: 3
        status: ["503"]
        retryNonIdempotentMethod: true
  services:
    app:
      loadBalancer:
        servers: [{{url: "{url}"}}]
    nowhere:
      loadBalancer:
        servers: [{{url: "{}"}}]
"#,
        dead_url()
    );
    let r = Router::start(&dynamic);
    let c = client();
    let count = || seen.lock().unwrap().len();

    // Two 503s, then 200: three tries, the client sees only the last.
    failures.store(2, Ordering::SeqCst);
    let (status, body) = get(r.web, "api.example.com", "/", &[]).await;
    assert_eq!((status, body.as_str()), (200, "done"), "{}", r.stderr());
    assert_eq!(count(), 3);

    // Three failures for three tries: the last answer goes to the client as it is.
    failures.store(3, Ordering::SeqCst);
    let (status, body) = get(r.web, "api.example.com", "/", &[]).await;
    assert_eq!((status, body.as_str()), (503, "busy"));
    assert_eq!(count(), 6);

    // A POST is not tried again on a status...
    failures.store(1, Ordering::SeqCst);
    let (status, _) = request(&c, r.web, "POST", "api.example.com", "/", &[], "x".into()).await;
    assert_eq!(status, 503);
    assert_eq!(count(), 7);

    // ...unless retryNonIdempotentMethod: then its body is sent again, whole.
    failures.store(1, Ordering::SeqCst);
    let payload = bytes::Bytes::from("a=1&b=2".repeat(1000));
    let (status, _) = request(
        &c,
        r.web,
        "POST",
        "posts.example.com",
        "/",
        &[],
        payload.clone(),
    )
    .await;
    assert_eq!(status, 200);
    {
        let seen_now = seen.lock().unwrap();
        assert_eq!(seen_now.len(), 9);
        for p in &seen_now[7..] {
            assert_eq!(
                p.extensions.get::<bytes::Bytes>(),
                Some(&payload),
                "the body each try"
            );
        }
    }

    // A refused connection is tried again, `attempts` times in all. The refusal keeps the one
    // server out for a while (passive health), so the next tries find no server: 503, which
    // the status ranges try again too.
    let (status, body) = get(r.web, "dead.example.com", "/", &[]).await;
    assert_eq!((status, body.as_str()), (503, "no available server\n"));
    let metrics = r.admin_get("/metrics").await;
    let retried: u64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("betaroute_retries_total")
                && l.contains("nowhere@file")
                && l.contains("retry-middleware")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(retried, 2, "{metrics}");
}

/// `circuitBreaker`: 502s trip it; while tripped the backend is not called and the client gets
/// `responseCode` with its text; after `fallbackDuration` and `recoveryDuration`, requests
/// reach the (recovered) backend again.
#[tokio::test]
async fn circuit_breaker_over_the_wire() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let broken = std::sync::Arc::new(AtomicBool::new(true));
    let b = broken.clone();
    let (url, seen) = scripted(move |_, _| {
        if b.load(Ordering::SeqCst) {
            Reply::new(502, &[], &[b"down"])
        } else {
            Reply::new(200, &[], &[b"up"])
        }
    })
    .await;
    let dynamic = format!(
        r#"
http:
  routers:
    api:
      rule: "Host(`api.example.com`)"
      service: app
      middlewares: [breaker]
  middlewares:
    breaker:
      circuitBreaker:
        expression: "NetworkErrorRatio() > 0.30 && RequestThreshold() >= 2"
        checkPeriod: 1ms
        fallbackDuration: 300ms
        recoveryDuration: 100ms
        responseCode: 429
  services:
    app:
      loadBalancer:
        servers: [{{url: "{url}"}}]
"#
    );
    let r = Router::start(&dynamic);
    let hits = || seen.lock().unwrap().len();
    // The first response is below RequestThreshold; the second trips the breaker. Both 502s
    // reach the client as the backend gave them.
    assert_eq!(
        get(r.web, "api.example.com", "/", &[]).await,
        (502, "down".into())
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(
        get(r.web, "api.example.com", "/", &[]).await,
        (502, "down".into())
    );
    for _ in 0..5 {
        let (status, body) = get(r.web, "api.example.com", "/", &[]).await;
        assert_eq!((status, body.as_str()), (429, "Too Many Requests"));
    }
    assert_eq!(hits(), 2, "the backend is not called while tripped");
    broken.store(false, Ordering::SeqCst);
    // Past fallbackDuration and recoveryDuration: back to standby.
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    let _ = get(r.web, "api.example.com", "/", &[]).await; // starts the recovery
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    for _ in 0..3 {
        assert_eq!(
            get(r.web, "api.example.com", "/", &[]).await,
            (200, "up".into())
        );
    }
}

/// `errors`: a caught status gets the page service's body with the backend's status or its
/// rewrite; the page request is a GET of `query` with the placeholders filled, the original
/// Host and headers; statuses not listed, and a middleware's own answer, as listed.
#[tokio::test]
async fn errors_over_the_wire() {
    let (app, _) = scripted(|req, _| match req.uri.path() {
        "/fail" => Reply::new(503, &[("x-backend", "1")], &[b"backend's own 503"]),
        "/missing" => Reply::new(404, &[], &[b"backend's 404"]),
        "/teapot" => Reply::new(418, &[], &[b"short and stout"]),
        _ => Reply::new(200, &[], &[b"fine"]),
    })
    .await;
    let (pages, asked) = scripted(|req, _| {
        let body = format!("page {}", req.uri);
        Reply::new(200, &[("content-type", "text/html")], &[body.as_bytes()])
    })
    .await;
    let dynamic = format!(
        r#"
http:
  routers:
    site:
      rule: "Host(`site.example.com`)"
      service: app
      middlewares: [pages, login]
  middlewares:
    pages:
      errors:
        status: ["500-599", "404", "401"]
        statusRewrites:
          "502-503": 500
        service: error-pages
        query: "/{{status}}.html?from={{originalStatus}}&url={{url}}"
    login:
      basicAuth:
        users: ["u:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"]
  services:
    app:
      loadBalancer:
        servers: [{{url: "{app}"}}]
    error-pages:
      loadBalancer:
        servers: [{{url: "{pages}"}}]
"#
    );
    let r = Router::start(&dynamic);
    // u:test, as in Traefik's basicAuth docs.
    let auth = ("authorization", "Basic dTp0ZXN0");
    let (status, body) = get(r.web, "site.example.com", "/fail?q=1", &[auth]).await;
    assert_eq!(status, 500, "{body}\n{}", r.stderr());
    assert_eq!(
        body,
        "page /500.html?from=503&url=http%3A%2F%2Fsite.example.com%2Ffail%3Fq%3D1"
    );
    {
        let asked = asked.lock().unwrap();
        let p = asked.last().unwrap();
        assert_eq!(p.method, "GET");
        assert_eq!(p.headers["host"], "site.example.com");
        assert_eq!(
            p.headers["authorization"], "Basic dTp0ZXN0",
            "the request's headers"
        );
    }
    let (status, body) = get(r.web, "site.example.com", "/missing", &[auth]).await;
    assert_eq!(
        (status, body.as_str()),
        (
            404,
            "page /404.html?from=404&url=http%3A%2F%2Fsite.example.com%2Fmissing"
        )
    );
    // Not listed: as the backend gave it.
    assert_eq!(
        get(r.web, "site.example.com", "/teapot", &[auth]).await,
        (418, "short and stout".into())
    );
    assert_eq!(
        get(r.web, "site.example.com", "/", &[auth]).await,
        (200, "fine".into())
    );
    // basicAuth's 401, behind errors in the chain, gets the page too.
    let (status, body) = get(r.web, "site.example.com", "/", &[]).await;
    assert_eq!(status, 401);
    assert!(body.starts_with("page /401.html?from=401"), "{body}");
}

/// `buffering`: a request over maxRequestBodyBytes is 413 before the backend (by its
/// Content-Length, or as read when chunked); one within goes with a Content-Length; a response
/// over maxResponseBodyBytes is 500.
#[tokio::test]
async fn buffering_over_the_wire() {
    let (url, seen) = scripted(|req, _| match req.uri.path() {
        "/big" => Reply::new(200, &[], &[&[b'x'; 600], &[b'y'; 600]]),
        _ => Reply::new(200, &[], &[b"ok"]),
    })
    .await;
    let dynamic = format!(
        r#"
http:
  routers:
    api:
      rule: "Host(`api.example.com`)"
      service: app
      middlewares: [whole]
  middlewares:
    whole:
      buffering:
        maxRequestBodyBytes: 1000
        memRequestBodyBytes: 100
        maxResponseBodyBytes: 1000
  services:
    app:
      loadBalancer:
        servers: [{{url: "{url}"}}]
"#
    );
    let r = Router::start(&dynamic);
    let at = format!("http://{}/", r.web);
    let host = "Host: api.example.com";
    let big = "z".repeat(1001);
    let (status, _, body) = tokio::task::spawn_blocking({
        let (at, big) = (at.clone(), big.clone());
        move || curl(&["-H", host, "--data-binary", &big, &at])
    })
    .await
    .unwrap();
    assert_eq!(
        (status, body.as_slice()),
        (413, &b"Request Entity Too Large"[..])
    );
    // Chunked: no Content-Length to decide from; refused as read.
    let (status, _, _) = tokio::task::spawn_blocking({
        let (at, big) = (at.clone(), big.clone());
        move || {
            curl(&[
                "-H",
                host,
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                &big,
                &at,
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(status, 413);
    assert!(seen.lock().unwrap().is_empty(), "the backend got neither");
    // Within the limit, chunked: the backend gets it whole, with its Content-Length.
    let (status, _, _) = tokio::task::spawn_blocking({
        let at = at.clone();
        move || {
            curl(&[
                "-H",
                host,
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                "hello",
                &at,
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    {
        let s = seen.lock().unwrap();
        assert_eq!(s[0].headers["content-length"], "5");
        assert!(!s[0].headers.contains_key("transfer-encoding"));
        assert_eq!(s[0].extensions.get::<bytes::Bytes>().unwrap(), "hello");
    }
    // A response over maxResponseBodyBytes.
    let (status, body) = get(r.web, "api.example.com", "/big", &[]).await;
    assert_eq!((status, body.as_str()), (500, "Internal Server Error"));
}

/// `contentType`: Traefik's four cases (`cases/contentType.json`) over the wire, and Go's
/// guesses for a few bodies: without the middleware no Content-Type is made up; with it, a
/// response without one gets Go's `DetectContentType` of its first bytes.
#[tokio::test]
async fn content_type_over_the_wire() {
    let (url, _) = scripted(|req, _| match req.uri.path() {
        "/json" => Reply::new(200, &[("content-type", "application/json")], &[b"Test"]),
        "/html" => Reply::new(
            200,
            &[],
            &[b"  <!DOCTYPE html><html>", b"<body>hi</body></html>"],
        ),
        "/png" => Reply::new(200, &[], &[b"\x89PNG\x0D\x0A\x1A\x0A\x00\x00"]),
        "/empty" => Reply::new(200, &[], &[]),
        _ => Reply::new(200, &[], &[b"Test"]),
    })
    .await;
    let dynamic = format!(
        r#"
http:
  routers:
    plain:
      rule: "Host(`plain.example.com`)"
      service: app
    sniffed:
      rule: "Host(`sniffed.example.com`)"
      service: app
      middlewares: [guess]
  middlewares:
    guess:
      contentType: {{}}
  services:
    app:
      loadBalancer:
        servers: [{{url: "{url}"}}]
"#
    );
    let r = Router::start(&dynamic);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/middleware/cases/contentType.json"
    );
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let c = client();
    let content_type = |host: &'static str, path: &'static str| {
        let c = c.clone();
        let web = r.web;
        async move {
            let resp = c
                .request(
                    hyper::Request::get(format!("http://{web}{path}"))
                        .header("host", host)
                        .body(http_body_util::Full::new(bytes::Bytes::new()))
                        .unwrap(),
                )
                .await
                .unwrap();
            resp.headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
        }
    };
    let mut ran = 0;
    for case in cases["cases"].as_array().unwrap() {
        let host = if case["config"].is_null() {
            "plain.example.com"
        } else {
            "sniffed.example.com"
        };
        let path = if case["next"]["headers"]["Content-Type"].is_string() {
            "/json"
        } else {
            "/"
        };
        let want = case["expect"]["response_headers"]["Content-Type"]
            .as_str()
            .map(str::to_owned);
        assert_eq!(
            content_type(host, path).await,
            want,
            "{} {host}{path}",
            case["name"]
        );
        ran += 1;
    }
    assert_eq!(ran, 4);
    let s = "sniffed.example.com";
    assert_eq!(
        content_type(s, "/html").await.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(content_type(s, "/png").await.as_deref(), Some("image/png"));
    assert_eq!(content_type(s, "/empty").await, None, "no body, no guess");
    assert_eq!(content_type("plain.example.com", "/png").await, None);
    // The body is still whole after the look ahead.
    assert_eq!(
        get(r.web, s, "/html", &[]).await,
        (200, "  <!DOCTYPE html><html><body>hi</body></html>".into())
    );
}

/// Traefik's `@internal` services behind routers: the common http-to-https router on
/// `noop@internal`, `ping@internal` and `prometheus@internal` answered by betaroute itself;
/// `api@internal` refused by name (503, and `check` says why).
#[tokio::test]
async fn internal_services_behind_routers() {
    let dynamic = r#"
http:
  routers:
    to-https:
      rule: "HostRegexp(`.+`)"
      priority: 1
      service: noop@internal
      middlewares: [redirect]
    teapot:
      rule: "Host(`noop.example.com`)"
      service: noop@internal
    ping:
      rule: "Host(`ping.example.com`)"
      service: ping@internal
    metrics:
      rule: "Host(`metrics.example.com`)"
      service: prometheus@internal
      middlewares: [guard]
    dashboard:
      rule: "Host(`traefik.example.com`)"
      service: api@internal
  middlewares:
    redirect:
      redirectScheme: {scheme: https, permanent: true}
    guard:
      ipAllowList: {sourceRange: ["127.0.0.1/32"]}
"#;
    let r = Router::start(dynamic);
    let c = client();
    let (status, _) = request(
        &c,
        r.web,
        "GET",
        "www.example.com",
        "/a",
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(status, 301, "{}", r.stderr());
    assert_eq!(
        get(r.web, "noop.example.com", "/", &[]).await,
        (418, String::new())
    );
    assert_eq!(
        get(r.web, "ping.example.com", "/", &[]).await,
        (200, "OK".into())
    );
    let (status, body) = get(r.web, "metrics.example.com", "/metrics", &[]).await;
    assert_eq!(status, 200);
    assert!(body.contains("betaroute_requests_total"), "{body}");
    let (status, _) = get(r.web, "traefik.example.com", "/", &[]).await;
    assert_eq!(status, 503);
    assert!(
        r.stderr().contains("service api@internal is one of Traefik's internal services betaroute does not serve behind a router"),
        "{}",
        r.stderr()
    );
}

/// `passHostHeader` as Traefik: true by default (the client's Host, or the one a `headers`
/// middleware set); false sends the server's host; X-Forwarded-Host keeps the client's.
#[tokio::test]
async fn pass_host_header_as_traefik() {
    let (url, seen) = scripted(|_, _| Reply::new(200, &[], &[b"ok"])).await;
    let authority = url.trim_start_matches("http://").to_owned();
    let dynamic = format!(
        r#"
http:
  routers:
    passed:
      rule: "Host(`a.example.com`)"
      service: passing
    rewritten:
      rule: "Host(`b.example.com`)"
      service: passing
      middlewares: [internal-host]
    own:
      rule: "Host(`c.example.com`)"
      service: own-host
      middlewares: [internal-host]
  middlewares:
    internal-host:
      headers:
        customRequestHeaders: {{Host: "internal.example.com"}}
  services:
    passing:
      loadBalancer:
        servers: [{{url: "{url}"}}]
    own-host:
      loadBalancer:
        passHostHeader: false
        servers: [{{url: "{url}"}}]
"#
    );
    let r = Router::start(&dynamic);
    for (host, want) in [
        ("a.example.com", "a.example.com"),
        ("b.example.com", "internal.example.com"),
        ("c.example.com", authority.as_str()),
    ] {
        assert_eq!(get(r.web, host, "/", &[]).await.0, 200, "{}", r.stderr());
        let s = seen.lock().unwrap();
        let h = &s.last().unwrap().headers;
        assert_eq!(h["host"], want, "{host}");
        assert_eq!(h["x-forwarded-host"], host, "{host}");
    }
}

/// `encodedCharacters`: an encoded slash refused with 400 by default, allowed by its option;
/// other escapes pass.
#[tokio::test]
async fn encoded_characters_over_the_wire() {
    let (url, seen) = scripted(|_, _| Reply::new(200, &[], &[b"ok"])).await;
    let dynamic = format!(
        r#"
http:
  routers:
    strict:
      rule: "Host(`strict.example.com`)"
      service: app
      middlewares: [strict]
    slashes:
      rule: "Host(`slashes.example.com`)"
      service: app
      middlewares: [slashes]
  middlewares:
    strict:
      encodedCharacters: {{}}
    slashes:
      encodedCharacters: {{allowEncodedSlash: true}}
  services:
    app:
      loadBalancer:
        servers: [{{url: "{url}"}}]
"#
    );
    let r = Router::start(&dynamic);
    assert_eq!(
        get(r.web, "strict.example.com", "/a%2Fb", &[]).await,
        (400, String::new())
    );
    assert_eq!(get(r.web, "strict.example.com", "/a%3bb", &[]).await.0, 400);
    assert_eq!(get(r.web, "strict.example.com", "/a%20b", &[]).await.0, 200);
    assert_eq!(
        get(r.web, "slashes.example.com", "/a%2Fb", &[]).await.0,
        200
    );
    assert_eq!(
        get(r.web, "slashes.example.com", "/a%23b", &[]).await.0,
        400
    );
    let s = seen.lock().unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[1].uri.path(), "/a%2Fb", "the path as it came");
}

/// `buffering`'s `retryExpression` over the wire: a kept body sent again while the expression
/// holds (a 503 twice, then the answer), to the next server after a refused connection, and
/// the try the expression lets go delivered as it is.
#[tokio::test]
async fn buffering_retry_expression_over_the_wire() {
    let (flaky, flaky_seen) = scripted(|_, n| match n {
        0 | 1 => Reply::new(503, &[], &[b"busy"]),
        _ => Reply::new(200, &[], &[b"ok"]),
    })
    .await;
    let (busy, busy_seen) = scripted(|_, _| Reply::new(503, &[], &[b"busy"])).await;
    let (live, _) = scripted(|_, _| Reply::new(200, &[], &[b"live"])).await;
    let dynamic = format!(
        r#"
http:
  routers:
    flaky: {{rule: "Host(`flaky`)", service: flaky, middlewares: [again]}}
    busy: {{rule: "Host(`busy`)", service: busy, middlewares: [again]}}
    dead: {{rule: "Host(`dead`)", service: half, middlewares: [unreached]}}
  middlewares:
    again:
      buffering: {{retryExpression: "ResponseCode() == 503 && Attempts() < 3"}}
    unreached:
      buffering: {{retryExpression: "IsNetworkError() && Attempts() <= 2"}}
  services:
    flaky: {{loadBalancer: {{servers: [{{url: "{flaky}"}}]}}}}
    busy: {{loadBalancer: {{servers: [{{url: "{busy}"}}]}}}}
    half: {{loadBalancer: {{servers: [{{url: "http://127.0.0.1:1"}}, {{url: "{live}"}}]}}}}
"#
    );
    let r = Router::start(&dynamic);
    let at = format!("http://{}/", r.web);
    let post = |host: &'static str| {
        let at = at.clone();
        tokio::task::spawn_blocking(move || {
            curl(&[
                "-H",
                &format!("Host: {host}"),
                "--data-binary",
                "hello",
                &at,
            ])
        })
    };
    let (status, _, body) = post("flaky").await.unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"ok"[..]));
    {
        let seen = flaky_seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "two 503s, then the answer");
        for s in seen.iter() {
            assert_eq!(s.extensions.get::<bytes::Bytes>().unwrap(), "hello");
        }
    }
    let (status, _, body) = post("busy").await.unwrap();
    assert_eq!((status, body.as_slice()), (503, &b"busy"[..]));
    assert_eq!(
        busy_seen.lock().unwrap().len(),
        3,
        "Attempts() < 3: three tries"
    );
    // oxy's TestBuffer_retryOnError: whichever server the balancer gives first, the client
    // gets the live one's answer (betaroute's own failover already moves a refused connection
    // to the next server, so the expression is the second line of defence here).
    for _ in 0..4 {
        let (status, _, body) = post("dead").await.unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"live"[..]));
    }
    let metrics = r.admin_get("/metrics").await;
    assert!(
        metrics.contains("reason=\"buffering\""),
        "retries counted: {metrics}"
    );
}

#[test]
fn a_retry_expression_oxy_refuses_is_an_error_at_its_line() {
    let f = temp_dir().join("retry-expression.yaml");
    std::fs::write(
        &f,
        "http:\n  middlewares:\n    again:\n      buffering:\n        retryExpression: \"!IsNetworkError()\"\n",
    )
    .unwrap();
    let (code, out, err) = betaroute(&["check", "--dynamic", f.to_str().unwrap()]);
    let all = format!("{out}{err}");
    assert_ne!(code, 0, "{all}");
    assert!(all.contains(":5:"), "located at its line: {all}");
    assert!(all.contains("! is not supported"), "{all}");
}

/// `circuitBreaker` latencies run to the end of the body, as oxy records them once the
/// handler has written everything: a backend whose head is quick and whose body takes 300 ms
/// trips `LatencyAtQuantileMS(50.0) > 200`.
#[tokio::test]
async fn a_circuit_breaker_measures_latency_to_the_end_of_the_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                loop {
                    let Ok(n) = s.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        got.clear();
                        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
                        if s.write_all(head).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        if s.write_all(b"slow").await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    let dynamic = format!(
        r#"
http:
  routers:
    api: {{rule: "Host(`api.example.com`)", service: app, middlewares: [breaker]}}
  middlewares:
    breaker:
      circuitBreaker:
        expression: "LatencyAtQuantileMS(50.0) > 200 && RequestThreshold() >= 2"
        checkPeriod: 1ms
        fallbackDuration: 10s
  services:
    app: {{loadBalancer: {{servers: [{{url: "{url}"}}]}}}}
"#
    );
    let r = Router::start(&dynamic);
    for _ in 0..2 {
        assert_eq!(
            get(r.web, "api.example.com", "/", &[]).await,
            (200, "slow".into())
        );
    }
    // The breaker records a response when its body is done, just after the client has it.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, body) = get(r.web, "api.example.com", "/", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (503, "Service Unavailable"),
        "tripped by the bodies' time"
    );
}
