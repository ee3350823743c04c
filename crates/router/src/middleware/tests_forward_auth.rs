//! Traefik's response-side forwardAuth cases (`cases/forwardAuth.json`) run against the pure
//! logic: the case's configuration goes through the real configuration reader, its request
//! through the chain up to the auth call, the auth server's answer (as the case gives it)
//! through `on_auth_response`, then what the proxy does next (`proxy/request/mod.rs`): an answer
//! goes to the client through the chain's response sides, a `Next` lets the backend's response
//! (as the case gives it) go through them.

use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

use super::case_data::{all, chain, header_map, values};

use super::{respond, run, Flow, Middleware, Req, Stop};

/// The placeholders' stand-ins: Traefik's httptest auth server and the server in front of the
/// middleware (both `http://127.0.0.1:<port>`, no path).
const AUTH: &str = "http://127.0.0.1:40001";
const TS_HOST: &str = "127.0.0.1:40000";

/// Cases the pure logic cannot express; over-the-wire tests' business.
const SKIPPED: &[(&str, &str)] = &[
    (
        "TestForwardAuthClientClosedRequest",
        "499 needs a client that goes away while the auth call is in flight (the proxy's future \
         being dropped); no pure code decides it",
    ),
    (
        "TestForwardAuthForwardError",
        "500 comes from proxy/request/auth.rs when the auth server cannot be reached (a real, \
         unresolvable host and a deadline)",
    ),
    (
        "TestForwardAuthMaxResponseBodySize/auth failure, response body exceeds the limit",
        "the 401 is proxy/request/auth.rs's bounded read (Limited), not the pure code; only the \
         limit the reader hands the proxy is checked here",
    ),
    (
        "TestForwardAuthMaxResponseBodySize/auth success body exceeds limit",
        "the 401 is proxy/request/auth.rs's bounded read (Limited), not the pure code; only the \
         limit the reader hands the proxy is checked here",
    ),
];

/// Real divergences from Traefik, left unfixed for the engineer to decide: each must still
/// differ (checked below), so the list stays honest.
const KNOWN: &[(&str, &str)] = &[];

/// The writeHeader tables run in `forward_auth.rs`'s own tests (auth request headers).
fn run_elsewhere(name: &str) -> bool {
    name.starts_with("TestForwardAuth_writeHeader")
        || name.starts_with("TestForwardAuth_oldWriteHeader")
}

/// `received body empty` / `received body == ""`: what the auth server reads.
fn wants_empty_auth_body(checks: &str) -> bool {
    checks.contains("received body empty") || checks.contains("received body == \"\"")
}

/// `<who> request method == X` in a case's checks.
fn method_check<'a>(checks: &'a str, who: &str) -> Option<&'a str> {
    let at = checks.find(&format!("{who} request method == "))?;
    let rest = &checks[at + who.len() + " request method == ".len()..];
    rest.split(|c: char| !c.is_ascii_alphabetic()).next()
}

/// Runs one case; its failures.
fn check(c: &Value) -> Vec<String> {
    let name = c["name"].as_str().unwrap();
    let mut failures = Vec::new();
    let mut config = c["config"].clone();
    if config["address"] == "AUTH" {
        config["address"] = Value::String(AUTH.into());
    }
    let built = chain("forwardAuth", &config);
    // Refused by name in betaroute: the body is never sent to the auth server.
    if config["forwardBody"] == true {
        match built {
            Ok(_) => failures.push(format!(
                "{name}: forwardBody accepted, betaroute refuses it"
            )),
            Err(e) if !e.contains("forwardBody") => {
                failures.push(format!("{name}: refused, but not for forwardBody: {e}"))
            }
            Err(_) => {}
        }
        return failures;
    }
    let chain = match built {
        Ok(chain) => chain,
        Err(e) => return vec![format!("{name}: not built: {e}")],
    };
    let Some(Middleware::ForwardAuth(fa)) = chain.first().map(|m| &**m) else {
        return vec![format!("{name}: the chain is not one forwardAuth")];
    };
    // The limit the proxy's bounded read gets (-1 / unset: unlimited).
    if let Some(max) = config["maxResponseBodySize"].as_i64() {
        let want = u64::try_from(max).ok();
        if fa.max_response_body_size != want {
            failures.push(format!(
                "{name}: maxResponseBodySize {:?}, Traefik {want:?}",
                fa.max_response_body_size
            ));
        }
    }
    if SKIPPED.iter().any(|(n, _)| *n == name) {
        return failures;
    }

    // The request as hyper's server hands it over from Go's client: `Host`, and the body's
    // framing (`Content-Length` for a bytes body; Go also sends `0` for a bodiless POST/PUT/PATCH).
    let r = &c["request"];
    assert_eq!(r["url"], "TS", "{name}: a request to the test server");
    let method = r["method"].as_str().unwrap_or("GET");
    let body = r["body"].as_str().unwrap_or("");
    let mut b = http::Request::builder()
        .method(method)
        .uri("/")
        .header("host", TS_HOST);
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        b = b.header("content-length", body.len());
    }
    for (k, v) in header_map(&r["headers"]).iter() {
        b = b.header(k, v);
    }
    let (mut parts, ()) = b.body(()).unwrap().into_parts();
    let mut req = Req::new(&mut parts, TS_HOST, false, "127.0.0.1".parse().unwrap());
    match run(&chain, 0, &mut req) {
        Stop::Auth(0) => {}
        other => {
            return vec![format!(
                "{name}: the chain did not ask the auth server: {other:?}"
            )]
        }
    }

    // The auth request.
    let ar = fa.auth_request(&req);
    if *ar.uri() != AUTH.parse::<http::Uri>().unwrap() {
        failures.push(format!(
            "{name}: auth request to {}, Traefik {AUTH}",
            ar.uri()
        ));
    }
    let checks = c["auth_server"]["checks"].as_str().unwrap_or("");
    let want_method = method_check(checks, "auth").unwrap_or("GET");
    if ar.method() != want_method {
        failures.push(format!(
            "{name}: auth method {}, Traefik {want_method}",
            ar.method()
        ));
    }
    // No body goes (`Request<()>`), so its framing must not say otherwise.
    if wants_empty_auth_body(checks) {
        let cl = all(ar.headers(), "content-length");
        let te = all(ar.headers(), "transfer-encoding");
        if !cl.iter().all(|v| v == "0") || !te.is_empty() {
            failures.push(format!(
                "{name}: auth request has no body but says content-length {cl:?} \
                 transfer-encoding {te:?}; Traefik's auth server reads an empty body"
            ));
        }
    }

    // The auth server's answer, then what the proxy does with the flow.
    let a = &c["auth_server"];
    let status = StatusCode::from_u16(a["status"].as_u64().unwrap() as u16).unwrap();
    let auth_headers = header_map(&a["headers"]);
    let auth_body = Bytes::copy_from_slice(a["body"].as_str().unwrap_or("").as_bytes());
    let flow = fa.on_auth_response(&mut req, status, &auth_headers, auth_body.clone());
    let e = &c["expect"];
    let (got_status, got_headers, got_body) = match flow {
        Flow::Answer(mut answer) => {
            respond(&req.after, &mut answer.headers);
            (answer.status, answer.headers, Some(answer.body))
        }
        Flow::Next => {
            if !matches!(run(&chain, 1, &mut req), Stop::Done) {
                failures.push(format!("{name}: the chain after the auth did not go on"));
            }
            let resp = &c["backend"]["response"];
            let mut h = header_map(&resp["headers"]);
            respond(&req.after, &mut h);
            let s = resp["status"].as_u64().unwrap_or(200) as u16;
            (StatusCode::from_u16(s).unwrap(), h, None)
        }
        other => return vec![format!("{name}: {other:?}")],
    };
    if let Some(want) = e["status"].as_u64() {
        if u64::from(got_status.as_u16()) != want {
            failures.push(format!("{name}: status {got_status}, Traefik {want}"));
        }
    }
    let backend_called = got_body.is_none();
    let backend_checks = c["backend"]["checks"].as_str().unwrap_or("");
    if backend_checks.contains("must NOT be called") && backend_called {
        failures.push(format!("{name}: backend called, Traefik does not call it"));
    }

    if let Some(body) = &got_body {
        if let Some(want) = e["body"].as_str() {
            if body != want.as_bytes() {
                failures.push(format!("{name}: body {body:?}, Traefik {want:?}"));
            }
        }
        if e["body_not_empty"] == true && body.is_empty() {
            failures.push(format!("{name}: empty body, Traefik's is not"));
        }
        // A refusal the auth server wrote: every header of its but the hop-by-hop ones, as
        // given (Location apart: resolved unless preserved), and its body.
        let signin = status == StatusCode::UNAUTHORIZED && config["authSigninURL"].is_string();
        if !signin {
            const HOP: [&str; 6] = [
                "connection",
                "keep-alive",
                "te",
                "trailers",
                "transfer-encoding",
                "upgrade",
            ];
            for k in auth_headers.keys() {
                if HOP.contains(&k.as_str()) || k == http::header::LOCATION {
                    continue;
                }
                if all(&got_headers, k.as_str()) != all(&auth_headers, k.as_str()) {
                    failures.push(format!(
                        "{name}: client gets {k} {:?}, Traefik copies {:?}",
                        all(&got_headers, k.as_str()),
                        all(&auth_headers, k.as_str())
                    ));
                }
            }
            if body != &auth_body {
                failures.push(format!(
                    "{name}: body {body:?}, auth server's {auth_body:?}"
                ));
            }
        }
        // Go's len(Header), Date included: the server adds it (Go's and hyper's alike).
        if let Some(n) = e["response_header_count"].as_u64() {
            if got_headers.keys_len() as u64 != n - 1 {
                failures.push(format!(
                    "{name}: {} response headers (+ Date), Traefik {n}: {got_headers:?}",
                    got_headers.keys_len()
                ));
            }
        }
    }
    for (k, v) in e["response_headers"].as_object().into_iter().flatten() {
        let have = all(&got_headers, k);
        let ok = match v {
            Value::Null => have.is_empty(),
            _ => have == values(v),
        };
        if !ok {
            failures.push(format!("{name}: response {k} {have:?}, Traefik {v}"));
        }
    }

    // A relative Location is made absolute against the auth server's URL unless preserved
    // (the note of PreserveLocationHeader): the same answer without the option.
    if fa.preserve_location_header {
        if let Some(loc) = auth_headers.get("location").and_then(|v| v.to_str().ok()) {
            if loc.starts_with('/') {
                let mut plain = (**fa).clone();
                plain.preserve_location_header = false;
                let mut parts2 = http::Request::new(()).into_parts().0;
                let mut r2 = Req::new(&mut parts2, TS_HOST, false, "127.0.0.1".parse().unwrap());
                let want = format!("{AUTH}{loc}");
                match plain.on_auth_response(&mut r2, status, &auth_headers, auth_body.clone()) {
                    Flow::Answer(a) if all(&a.headers, "location") == [want.clone()] => {}
                    other => failures.push(format!(
                        "{name} (not preserved): {other:?}, Traefik Location {want}"
                    )),
                }
            }
        }
    }

    // What the backend gets on a 2xx.
    if backend_called {
        if let Some(want) = method_check(backend_checks, "backend") {
            if req.parts.method != want {
                failures.push(format!(
                    "{name}: backend method {}, Traefik {want}",
                    req.parts.method
                ));
            }
        }
        for (k, v) in e["forwarded_headers"].as_object().into_iter().flatten() {
            let have = all(&req.parts.headers, k);
            let ok = match v {
                Value::Null => have.is_empty(),
                _ => have == values(v),
            };
            if !ok {
                failures.push(format!("{name}: forwarded {k} {have:?}, Traefik {v}"));
            }
        }
        // The auth cookies go to the client's response only.
        if req.parts.headers.contains_key(http::header::SET_COOKIE)
            || req.parts.headers.contains_key(http::header::COOKIE)
        {
            failures.push(format!("{name}: auth cookies in the backend request"));
        }
    } else if e["forwarded_headers"].is_object() {
        failures.push(format!("{name}: answered {got_status}, Traefik forwards"));
    }
    failures
}

#[test]
fn traefik_forward_auth_cases() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/middleware/cases/forwardAuth.json"
    );
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = data["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    let mut ran = 0;
    for c in cases {
        let name = c["name"].as_str().unwrap();
        if run_elsewhere(name) {
            continue;
        }
        if !SKIPPED.iter().any(|(n, _)| *n == name) {
            ran += 1;
        }
        let mut got = check(c);
        if let Some((_, what)) = KNOWN.iter().find(|(n, _)| *n == name) {
            // A known divergence that no longer shows: the list must say so.
            if got.is_empty() {
                failures.push(format!(
                    "{name}: listed in KNOWN ({what}) but matches Traefik"
                ));
            }
        } else {
            failures.append(&mut got);
        }
    }
    // Nothing dropped silently: every case is run here, skipped with why, or run elsewhere.
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    let elsewhere = names.iter().filter(|n| run_elsewhere(n)).count();
    assert_eq!(elsewhere, 25, "writeHeader cases run by forward_auth.rs");
    for (n, _) in SKIPPED.iter().chain(KNOWN) {
        assert!(names.contains(n), "{n}: listed but not a case");
    }
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "case names are how SKIPPED and KNOWN find them"
    );
    assert_eq!(ran, 22, "cases run here");
    assert_eq!(
        ran + SKIPPED.len() + elsewhere,
        names.len(),
        "a case unaccounted for"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
