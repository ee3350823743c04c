//! Traefik's own middleware test cases (`cases/*.json`, transcribed from `traefik/traefik`
//! `pkg/middlewares/**/*_test.go`), run against betaroute's middlewares: each case's options go
//! through the real configuration reader, its request through the middleware, and what the
//! next handler would see (or the answer) is compared with what Traefik's test asserts.

use serde_json::Value;

use super::case_data::values;

use super::{run, Req, Stop};
use crate::config::Format;

fn cases(kind: &str) -> Vec<Value> {
    let path = format!(
        "{}/src/middleware/cases/{kind}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

/// The middleware of kind `kind` with `config`, through the configuration reader.
fn middleware(
    kind: &str,
    config: &Value,
) -> Result<Vec<std::sync::Arc<super::Middleware>>, String> {
    let doc = serde_json::json!({"http": {
        "routers": {"r": {"rule": "PathPrefix(`/`)", "service": "s", "middlewares": ["m"]}},
        "services": {"s": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:1"}]}}},
        "middlewares": {"m": {kind: if config.is_null() { serde_json::json!({}) } else { config.clone() }}},
    }});
    let cfg =
        crate::config::dynamic::parse_dynamic_str("case.yaml", &doc.to_string(), Format::Yaml)
            .map_err(|e| e.to_string())?;
    let r = &cfg.routers[0];
    if let Some(why) = &r.refused {
        return Err(why.clone());
    }
    Ok(r.chain.clone())
}

/// The case with the files it reads (`usersFile`) written where its configuration then points.
fn with_files(c: &Value) -> Value {
    let mut c = c.clone();
    if let Some(files) = c["files"].as_object().cloned() {
        // One directory per case: cases of several kinds name their files alike and run in
        // parallel.
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("betaroute-cases-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (f, text) in files {
            let path = dir.join(&f);
            std::fs::write(&path, text.as_str().unwrap()).unwrap();
            if c["config"]["usersFile"] == f.as_str() {
                c["config"]["usersFile"] = Value::String(path.to_str().unwrap().to_owned());
            }
        }
    }
    c
}

/// Runs every case of `kind`; returns the failures, described.
fn check(kind: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases(kind) {
        let mut name = c["name"].as_str().unwrap_or("?").to_owned();
        if let Some(v) = c["variant"].as_str() {
            name = format!("{name} ({v})");
        }
        let c = with_files(&c);
        // `forcePermanentRedirect` is Traefik-internal (`json:"-"`, set by its ingress-nginx
        // provider): a file cannot set it, so the case builds the middleware directly.
        let built = match c["config"].get("forcePermanentRedirect") {
            Some(Value::Bool(force)) => Ok(vec![std::sync::Arc::new(super::Middleware::Redirect(
                super::Redirect::scheme(
                    c["config"]["scheme"].as_str().unwrap(),
                    c["config"]["port"].as_str(),
                    c["config"]["permanent"].as_bool().unwrap_or(false),
                    *force,
                ),
            ))]),
            // Traefik's tests of the headers layer alone (`NewHeader` with nothing set): no user
            // configuration can say that (it is "headers configuration not valid"), so the case
            // gets the layer directly.
            _ if kind == "headers"
                && c.get("error").is_none()
                && c["config"].as_object().is_none_or(|o| {
                    o.values()
                        .all(|v| v.as_object().is_some_and(|m| m.is_empty()))
                }) =>
            {
                Ok(vec![std::sync::Arc::new(super::Middleware::Headers(
                    Box::default(),
                ))])
            }
            _ => middleware(kind, &c["config"]),
        };
        if c.get("error").is_some() && c.get("request").is_none() {
            {
                if built.is_ok() {
                    failures.push(format!(
                        "{name}: accepted, Traefik refuses it ({})",
                        c["error"]
                    ));
                }
                continue;
            }
        }
        let chain = match built {
            Ok(chain) => chain,
            Err(e) => {
                failures.push(format!("{name}: not built: {e}"));
                continue;
            }
        };
        let r = &c["request"];
        if r.is_null() {
            continue; // a case of the constructor alone
        }
        // Go's parser takes a space in a path; on the wire (and for `http`) it is `%20`.
        let url: http::Uri = r["url"]
            .as_str()
            .unwrap()
            .replace(' ', "%20")
            .parse()
            .unwrap();
        let target = match r["request_uri"].as_str() {
            Some(t) if !t.is_empty() => t.to_owned(),
            _ => url
                .path_and_query()
                .map_or("/".into(), |pq| pq.as_str().to_owned()),
        };
        let mut builder = http::Request::builder()
            .method(r["method"].as_str().unwrap_or("GET"))
            .uri(target.as_str());
        let mut host = url
            .authority()
            .map_or(String::new(), |a| a.as_str().to_owned());
        if let Some(h) = r["headers"].as_object() {
            for (k, v) in h {
                let values: Vec<&str> = match v {
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    v => vec![v.as_str().unwrap_or("")],
                };
                for v in values {
                    if k.eq_ignore_ascii_case("host") {
                        host = v.to_owned();
                    }
                    builder = builder.header(k.as_str(), v);
                }
            }
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        let tls = r["tls"].as_bool().unwrap_or(false);
        let mut req = Req::new(&mut parts, &host, tls, "127.0.0.1".parse().unwrap());
        if let Some(remote) = r["remote_addr"].as_str() {
            req.remote = remote.to_owned();
        }
        if let Some(t) = r["request_uri"].as_str().filter(|t| !t.is_empty()) {
            req = req.with_raw_target(t.to_owned());
        }
        let answer = match run(&chain, 0, &mut req) {
            Stop::Answer(a) => Some(a),
            Stop::Done => None,
            Stop::Wait(..) | Stop::Auth(_) => panic!("{name}: a wait"),
        };
        let e = &c["expect"];
        let status = answer.as_ref().map_or(200, |a| a.status.as_u16());
        if let Some(want) = e["status"].as_u64() {
            if u64::from(status) != want {
                failures.push(format!("{name}: status {status}, Traefik {want}"));
                continue;
            }
        }
        if let Some(want) = e.get("location") {
            let got = answer
                .as_ref()
                .and_then(|a| a.headers.get("location"))
                .map(|v| v.to_str().unwrap().to_owned());
            if got.as_deref() != want.as_str() {
                failures.push(format!("{name}: location {got:?}, Traefik {want}"));
            }
        }
        // What the client gets: the answer, or the next handler's response through the chain's
        // response sides.
        let mut response = http::HeaderMap::new();
        match &answer {
            Some(a) => response = a.headers.clone(),
            None => {
                if let Some(h) = c["next"]["headers"].as_object() {
                    for (k, v) in h {
                        for v in values(v) {
                            response.append(
                                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                                v.parse().unwrap(),
                            );
                        }
                    }
                }
                super::respond(&req.after, &mut response);
            }
        }
        if let Some(want) = e["response_headers"].as_object() {
            compare(
                &name,
                "response",
                &response,
                want,
                e["exact_response_headers"] == true,
                &mut failures,
            );
        }
        if let Some(want) = e["forwarded_headers"].as_object() {
            if answer.is_some() {
                failures.push(format!("{name}: answered {status}, Traefik forwards"));
            } else {
                // Go's `req.Host` is the Host the backend gets.
                let mut seen = req.parts.headers.clone();
                seen.insert(http::header::HOST, req.host.parse().unwrap());
                compare(
                    &name,
                    "forwarded",
                    &seen,
                    want,
                    e["exact_forwarded_headers"] == true,
                    &mut failures,
                );
            }
        }
        let Some(fwd) = e["forwarded"].as_object() else {
            continue;
        };
        if answer.is_some() {
            failures.push(format!("{name}: answered {status}, Traefik forwards"));
            continue;
        }
        let p = req.path().unwrap();
        if let Some(want) = fwd.get("path").and_then(Value::as_str) {
            let got = String::from_utf8_lossy(&p.path);
            if got != want {
                failures.push(format!("{name}: path {got:?}, Traefik {want:?}"));
            }
        }
        if let Some(want) = fwd.get("raw_path").and_then(Value::as_str) {
            if p.raw != want {
                failures.push(format!("{name}: raw path {:?}, Traefik {want:?}", p.raw));
            }
        }
        // "" is Go's RequestURI of a test request left unchanged (it never had one).
        if let Some(want) = fwd
            .get("request_uri")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
        {
            let got = req.request_target();
            if got != want {
                failures.push(format!("{name}: request URI {got:?}, Traefik {want:?}"));
            }
        }
        req.finish();
        if let Some(h) = fwd.get("headers").and_then(Value::as_object) {
            for (k, v) in h {
                let got: Vec<&str> = parts
                    .headers
                    .get_all(k.as_str())
                    .iter()
                    .map(|v| v.to_str().unwrap())
                    .collect();
                let ok = match v {
                    Value::Null => got.is_empty(),
                    Value::String(s) => got == [s.as_str()],
                    Value::Array(a) => {
                        got == a.iter().filter_map(Value::as_str).collect::<Vec<_>>()
                    }
                    _ => false,
                };
                if !ok {
                    failures.push(format!("{name}: forwarded {k} {got:?}, Traefik {v}"));
                }
            }
        }
    }
    failures
}

/// Headers against a case's expectation (`null`: absent; an array: every value, in order);
/// `exact`: no other header either (Go keeps `Host` out of the map).
fn compare(
    name: &str,
    what: &str,
    got: &http::HeaderMap,
    want: &serde_json::Map<String, Value>,
    exact: bool,
    failures: &mut Vec<String>,
) {
    for (k, v) in want {
        let have: Vec<String> = got
            .get_all(k.as_str())
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let ok = match v {
            Value::Null => have.is_empty(),
            _ => have == values(v),
        };
        if !ok {
            failures.push(format!("{name}: {what} {k} {have:?}, Traefik {v}"));
        }
    }
    if exact {
        for k in got.keys() {
            if k != http::header::HOST && !want.keys().any(|w| w.eq_ignore_ascii_case(k.as_str())) {
                failures.push(format!("{name}: {what} has {k}, Traefik's has not"));
            }
        }
    }
}

macro_rules! traefik_cases {
    ($($test:ident: $kind:literal),* $(,)?) => {$(
        #[test]
        fn $test() {
            let failures = check($kind);
            assert!(failures.is_empty(), "{} of Traefik's {} cases fail:\n{}", failures.len(), $kind, failures.join("\n"));
        }
    )*};
}

traefik_cases! {
    strip_prefix: "stripPrefix",
    strip_prefix_regex: "stripPrefixRegex",
    add_prefix: "addPrefix",
    replace_path: "replacePath",
    replace_path_regex: "replacePathRegex",
    redirect_scheme: "redirectScheme",
    redirect_regex: "redirectRegex",
    headers: "headers",
    basic_auth: "basicAuth",
    ip_allow_list: "ipAllowList",
}

/// Traefik's digestAuth cases: each exchange played as its Go test client plays it (a probe,
/// the 401 challenge, the computed answer), then the same answer again (a replayed nonce
/// count, refused).
#[test]
fn digest_auth() {
    let mut failures = Vec::new();
    for c in cases("digestAuth") {
        let c = with_files(&c);
        let name = format!(
            "{} ({})",
            c["name"].as_str().unwrap(),
            c["variant"].as_str().unwrap_or("")
        );
        let built = middleware("digestAuth", &c["config"]);
        if c.get("error").is_some() {
            if built.is_ok() {
                failures.push(format!("{name}: accepted, Traefik refuses it"));
            }
            continue;
        }
        let chain = built.unwrap_or_else(|e| panic!("{name}: {e}"));
        let send = |auth: Option<&str>, extra: &serde_json::Map<String, Value>| {
            let mut b = http::Request::get("/");
            for (k, v) in extra {
                if !k.eq_ignore_ascii_case("authorization") {
                    b = b.header(k.as_str(), v.as_str().unwrap());
                }
            }
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            let (mut parts, ()) = b.body(()).unwrap().into_parts();
            let mut req = Req::new(&mut parts, "127.0.0.1", false, "127.0.0.1".parse().unwrap());
            let stop = run(&chain, 0, &mut req);
            req.finish();
            (stop, parts.headers)
        };
        let headers = c["request"]["headers"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let Some(ex) = c.get("exchange") else {
            // One request, not Digest: a challenge.
            let a = headers.get("Authorization").and_then(Value::as_str);
            match send(a, &headers).0 {
                Stop::Answer(a)
                    if a.status == 401 && a.headers.contains_key("www-authenticate") => {}
                other => failures.push(format!("{name}: {other:?}, Traefik challenges")),
            }
            continue;
        };
        let challenge = match send(None, &serde_json::Map::new()).0 {
            Stop::Answer(a) if a.status == 401 => {
                a.headers["www-authenticate"].to_str().unwrap().to_owned()
            }
            other => {
                failures.push(format!("{name}: probe got {other:?}"));
                continue;
            }
        };
        let realm = ex["client_computation"]["realm_from_challenge"]
            .as_str()
            .unwrap();
        let shape = format!("Digest realm=\"{realm}\", nonce=\"");
        if !(challenge.starts_with(&shape)
            && challenge.ends_with("\", algorithm=\"MD5\", qop=\"auth\""))
        {
            failures.push(format!("{name}: challenge {challenge:?}"));
        }
        // "user test:test authenticates": the credentials the Go client uses.
        let variant = c["variant"].as_str().unwrap_or("user test:test");
        let creds = variant
            .strip_prefix("user ")
            .unwrap_or("test:test")
            .split(' ')
            .next()
            .unwrap();
        let (user, password) = creds.split_once(':').unwrap();
        let auth = super::digest_auth::respond_to(
            &challenge,
            user,
            password,
            "GET",
            "http://127.0.0.1:PORT",
            1,
            "0123456789abcdef",
        );
        let (stop, seen) = send(Some(&auth), &headers);
        let status = match &stop {
            Stop::Answer(a) => a.status.as_u16(),
            _ => 200,
        };
        let want = c["expect"]["status"].as_u64().unwrap() as u16;
        if status != want {
            failures.push(format!("{name}: status {status}, Traefik {want}"));
            continue;
        }
        if let Some(f) = c["expect"]["forwarded_headers"].as_object() {
            compare(&name, "forwarded", &seen, f, false, &mut failures);
        }
        if want == 200 {
            // The same nonce count again is a replay.
            match send(Some(&auth), &headers).0 {
                Stop::Answer(a) if a.status == 401 => {}
                other => failures.push(format!("{name}: a replay got {other:?}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of Traefik's digestAuth cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
