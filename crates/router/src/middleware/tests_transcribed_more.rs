//! Traefik's cases for `errors`, `buffering` and the circuit breaker's states
//! (`cases/errors.json`, `cases/buffering.json`, `cases/circuitBreaker.json`) run against the
//! pure logic.
//!
//! Each middleware is built through the real configuration reader, as a file would give it.
//!
//! - `errors`: the case's request goes through the chain (which records the original request
//!   as the page request needs it), then the backend's status through [`Errors::catch`], the
//!   page's target through [`Errors::page_target`] and its headers as the chain recorded them
//!   ([`Errors::page_headers`]). Checked: whether the page service is asked, the status the
//!   client gets, the page request's target, host and headers, the configuration's ranges and
//!   refusals. The page's body and response headers, and the backend's interim 1xx responses
//!   (with the headers Traefik copies at each), are the proxy's (`proxy/request/after.rs`):
//!   not checked here.
//! - `buffering`: the limits as read, and which of 413 (request over `maxRequestBodyBytes`, by
//!   its Content-Length or as read), 500 (response over `maxResponseBodyBytes`) or the
//!   backend's status the client gets ([`Buffering::request_too_large`],
//!   [`Buffering::response_too_large`]), each backend try played as data through
//!   [`Buffering::again`] as the send phase plays them, and which `retryExpression`s the reader
//!   takes; the reading itself, and the headers and bodies delivered, are the proxy's.
//! - `circuitBreaker`: each state case's steps on a frozen clock through
//!   [`CircuitBreaker::admit`] and [`CircuitBreaker::record`], the fallback as
//!   [`CircuitBreaker::fallback`] gives it; the metrics cases through [`Metrics`].

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::case_data::{all, chain, header_map};

use super::buffering::{Buffering, Try};
use super::circuit_breaker::{CircuitBreaker, Metrics, State};
use super::errors::{Errors, Original};
use super::{run, After, Middleware, Req, Stop};

const ERRORS: &str = include_str!("cases/errors.json");
const BUFFERING: &str = include_str!("cases/buffering.json");
const CIRCUIT_BREAKER: &str = include_str!("cases/circuitBreaker.json");

/// `errors` cases the pure logic cannot express.
const ERRORS_SKIPPED: &[(&str, &str)] = &[
    (
        "TestHandler/nginx headers: backend status code preserved",
        "nginxHeaders is set only by Traefik's ingress-nginx provider, no file key: betaroute \
         has neither",
    ),
    (
        "TestHandler/nginx headers: X-Code and nginx headers forwarded",
        "nginxHeaders is set only by Traefik's ingress-nginx provider, no file key: betaroute \
         has neither",
    ),
    (
        "derived/nginx mode uses rewritten code in X-Code",
        "nginxHeaders is set only by Traefik's ingress-nginx provider, no file key: betaroute \
         has neither",
    ),
    (
        "derived/error service writes nothing",
        "a Go handler that writes nothing: the page service is an HTTP backend, which always \
         answers with a status (or fails, as the case 'error service unreachable' has it)",
    ),
    (
        "derived/backend writes nothing with 200 in list",
        "a Go handler that writes nothing: behind a proxy a backend always has a status \
         (Traefik's reverse proxy writes it, and a 200 in the list then catches it)",
    ),
];

/// Real divergences from Traefik in the `errors` cases: each must still differ.
const ERRORS_KNOWN: &[(&str, &str)] = &[];

/// The status the integration tests' backends give, as betaroute's proxy gives it too: the
/// chain's response sides see the proxy's error response as they see a backend's.
const ERRORS_BACKEND_KINDS: &[(&str, u16)] = &[
    (
        "TestErrorPage/unreachable backend -> proxy 502 -> caught",
        502,
    ),
    ("TestStatusRewrites/502 rewritten to 404", 502),
    (
        "TestStatusRewrites/418 (noop@internal) rewritten to 400",
        418,
    ),
];

/// `buffering` cases the pure logic cannot express.
const BUFFERING_SKIPPED: &[(&str, &str)] = &[
    (
        "oxy/buffer:TestBuffer_disableRequestBuffer",
        "disableRequestBuffer is code-only in Traefik (a JSON tag, no file, label or KV key): \
         no configuration sets it",
    ),
    (
        "oxy/buffer:TestBuffer_disableResponseBuffer/disableResponseBuffer ignores the limit",
        "disableResponseBuffer is code-only in Traefik (a JSON tag, no file, label or KV key): \
         no configuration sets it",
    ),
];

/// Real divergences from Traefik in the `buffering` cases: each must still differ.
const BUFFERING_KNOWN: &[(&str, &str)] = &[];

/// Circuit breaker state cases the pure logic cannot express.
const STATE_SKIPPED: &[(&str, &str)] = &[];

/// Real divergences from Traefik in the state cases: each must still differ.
const STATE_KNOWN: &[(&str, &str)] = &[];

/// oxy's metrics cases about pieces betaroute fixes at the circuit breaker's settings.
const METRICS_SKIPPED: &[(&str, &str)] = &[
    (
        "TestRollingCounter_Clone_expired",
        "a rolling counter of 3 buckets: betaroute's has oxy's circuit-breaker setting, 10 of 1 s \
         (its window runs in the state case derived_counter_window_10s)",
    ),
    (
        "TestRollingCounter_cleanup",
        "10^9 increments one by one through the only way in (a recorded response); the window \
         runs in the state case derived_counter_window_10s",
    ),
    (
        "TestHDRHistogram_Merge",
        "the HDR library's own merge, in microseconds: betaroute reads merged latencies only in \
         whole milliseconds (the expression cases run them)",
    ),
    (
        "TestHDRHistogram_rotation",
        "a rolling histogram of 2 buckets of 1 s, 3 significant digits: betaroute's has oxy's \
         circuit-breaker setting, 6 of 10 s and 2 digits",
    ),
    (
        "TestHDRHistogram_Reset",
        "a rolling histogram of 2 buckets of 1 s, 3 significant digits: betaroute's has oxy's \
         circuit-breaker setting, 6 of 10 s and 2 digits",
    ),
];

fn cases(file: &str, key: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(file).unwrap();
    v[key].as_array().unwrap().clone()
}

/// A case's name as Go names its subtest.
fn id(c: &Value) -> String {
    let test = c["test"].as_str().unwrap_or("?");
    match c["name"].as_str() {
        Some(n) if !n.is_empty() => format!("{test}/{n}"),
        _ => test.to_owned(),
    }
}

/// Runs a file's cases: skipped ones are not run (each must be a case), known ones must
/// still fail, the others must pass. Returns how many ran.
fn tally(
    cases: &[(String, Value)],
    skipped: &[(&str, &str)],
    known: &[(&str, &str)],
    check: impl Fn(&str, &Value) -> Vec<String>,
    failures: &mut Vec<String>,
) -> usize {
    let names: Vec<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "case names are how the lists find them"
    );
    for (n, _) in skipped.iter().chain(known) {
        assert!(names.contains(n), "{n}: listed but not a case");
    }
    let mut ran = 0;
    for (name, c) in cases {
        if skipped.iter().any(|(n, _)| *n == name.as_str()) {
            continue;
        }
        ran += 1;
        let mut got = check(name, c);
        if let Some((_, why)) = known.iter().find(|(n, _)| *n == name.as_str()) {
            if got.is_empty() {
                failures.push(format!(
                    "{name}: listed as known ({why}) but matches Traefik"
                ));
            }
        } else {
            failures.append(&mut got);
        }
    }
    assert_eq!(ran + skipped.len(), cases.len(), "a case unaccounted for");
    ran
}

fn report(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of Traefik's {what} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// errors

/// The `errors` middleware of a chain and the original request as its request side recorded
/// it, for the case's request.
fn errors_of(
    name: &str,
    chain: &[Arc<Middleware>],
    r: &Value,
) -> Result<(Arc<Errors>, Original), String> {
    let method = r["method"].as_str().unwrap_or("GET");
    let mut b = http::Request::builder()
        .method(method)
        .uri(r["url"].as_str().unwrap());
    for (k, v) in header_map(&r["headers"]).iter() {
        b = b.header(k, v);
    }
    let (mut parts, ()) = b.body(()).unwrap().into_parts();
    let host = r["host"].as_str().unwrap();
    let tls = r["tls"].as_bool().unwrap_or(false);
    let mut req = Req::new(&mut parts, host, tls, "127.0.0.1".parse().unwrap());
    match run(chain, 0, &mut req) {
        Stop::Done => {}
        other => return Err(format!("{name}: the chain did not go on: {other:?}")),
    }
    match req.after.as_slice() {
        [After::Errors(e, original)] => Ok((e.clone(), (**original).clone())),
        other => Err(format!("{name}: the chain recorded {other:?}")),
    }
}

/// The backend's interim statuses and its final one: the status it writes, or the first
/// non-1xx `WriteHeader` of its sequence (a `Write` first is Go's implicit 200).
fn backend_statuses(name: &str, b: &Value) -> Option<(Vec<u16>, u16)> {
    if let Some(s) = b["status"].as_u64() {
        return Some((Vec::new(), s as u16));
    }
    if let Some(steps) = b["sequence"].as_array() {
        let mut interim = Vec::new();
        for s in steps.iter().filter_map(Value::as_str) {
            if let Some(code) = s
                .strip_prefix("WriteHeader(")
                .and_then(|r| r.split(')').next())
            {
                let code: u16 = code.parse().unwrap();
                if code >= 200 {
                    return Some((interim, code));
                }
                interim.push(code);
            } else if s.starts_with("Write(") {
                return Some((interim, 200));
            }
        }
        return None;
    }
    ERRORS_BACKEND_KINDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| (Vec::new(), *s))
}

fn errors_check(name: &str, c: &Value) -> Vec<String> {
    let mut failures = Vec::new();
    let e = &c["expect"];
    let built = chain("errors", &c["config"]);

    // Configuration only: Go's `strconv.Atoi` error names the part it fails on, as
    // betaroute's does (`"<part>" is not a number`).
    if let Some(want) = e["config_error"].as_str() {
        let part = want
            .split_once("parsing ")
            .and_then(|(_, p)| p.split_once(": "))
            .map(|(p, _)| p)
            .unwrap();
        let ours = format!("{part} is not a number");
        match built {
            Ok(_) => failures.push(format!("{name}: accepted, Traefik: {want}")),
            Err(why) if !why.contains(&ours) => {
                failures.push(format!("{name}: refused with {why:?}, Traefik {want:?}"))
            }
            Err(_) => {}
        }
        return failures;
    }
    let chain = match built {
        Ok(chain) => chain,
        Err(why) => return vec![format!("{name}: not built: {why}")],
    };
    let Some(Middleware::Errors(m)) = chain.first().map(|m| &**m) else {
        return vec![format!("{name}: the chain is not one errors")];
    };
    if let Some(ranges) = e["ranges"].as_array() {
        let want: Vec<(u16, u16)> = ranges
            .iter()
            .map(|r| (r[0].as_u64().unwrap() as u16, r[1].as_u64().unwrap() as u16))
            .collect();
        if m.status.0 != want {
            failures.push(format!("{name}: ranges {:?}, Traefik {want:?}", m.status.0));
        }
        return failures;
    }

    let (m, original) = match errors_of(name, &chain, &c["request"]) {
        Ok(x) => x,
        Err(why) => return vec![why],
    };
    let Some((interim, status)) = backend_statuses(name, &c["backend"]) else {
        return vec![format!("{name}: the backend's status is not known here")];
    };
    // 1xx are forwarded, never caught, whatever the list says.
    for code in interim {
        if let Some(got) = m.catch(code) {
            failures.push(format!("{name}: interim {code} caught as {got:?}"));
        }
    }
    let caught = m.catch(status);
    let target = caught.map(|(code, from)| m.page_target(code, from, &original.url));
    // As `proxy/request/after.rs` sends the page: a target that makes no request target gets
    // the status with its reason, and no page.
    let asked = caught
        .is_some_and(|(code, from)| m.page_request_target(code, from, &original.url).is_some());
    let req_want = &e["error_service_request"];
    // Said, or shown by the page request the case gives; a case that gives neither shows the
    // page's own answer (its body or headers), so the page is asked there too.
    let want_asked = e["error_service_called"].as_bool().unwrap_or(true);
    if asked != want_asked {
        failures.push(format!(
            "{name}: page asked: {asked} (caught {caught:?}, target {target:?}), Traefik {want_asked}"
        ));
    }
    let got_status = caught.map_or(status, |(code, _)| code);
    if let Some(want) = e["status"].as_u64().or(e["status_derived"].as_u64()) {
        if u64::from(got_status) != want {
            failures.push(format!("{name}: status {got_status}, Traefik {want}"));
        }
    }
    if !asked || !req_want.is_object() {
        return failures;
    }
    let target = target.unwrap();
    if let Some(want) = req_want["path_and_query"].as_str() {
        if target != want {
            failures.push(format!("{name}: page target {target:?}, Traefik {want:?}"));
        }
    }
    if let Some(want) = req_want["host"].as_str() {
        if original.host != want {
            failures.push(format!(
                "{name}: page host {:?}, Traefik {want:?}",
                original.host
            ));
        }
    }
    if req_want["method"].as_str().is_some_and(|m| m != "GET") {
        failures.push(format!("{name}: Traefik's page request is not a GET"));
    }
    // The page request's headers, exactly (the case's request has no others).
    if let Some(want) = req_want["headers"].as_object() {
        let want_map = header_map(&req_want["headers"]);
        for k in original.headers.keys() {
            if !want_map.contains_key(k) {
                failures.push(format!(
                    "{name}: page request carries {k} {:?}, Traefik does not",
                    all(&original.headers, k.as_str())
                ));
            }
        }
        for k in want.keys() {
            let have = all(&original.headers, k);
            if have != all(&want_map, k) {
                failures.push(format!(
                    "{name}: page request {k} {have:?}, Traefik {:?}",
                    all(&want_map, k)
                ));
            }
        }
    }
    failures
}

#[test]
fn errors_cases() {
    let all: Vec<(String, Value)> = cases(ERRORS, "cases")
        .into_iter()
        .map(|c| (id(&c), c))
        .collect();
    let mut failures = Vec::new();
    let ran = tally(
        &all,
        ERRORS_SKIPPED,
        ERRORS_KNOWN,
        errors_check,
        &mut failures,
    );
    assert_eq!(ran, 48, "errors cases run here");
    assert_eq!(ERRORS_SKIPPED.len(), 5);
    report(
        &format!(
            "errors ({ran} run, {} skipped, {} known)",
            ERRORS_SKIPPED.len(),
            ERRORS_KNOWN.len()
        ),
        &failures,
    );
}

// ---------------------------------------------------------------------------------------
// buffering

/// A body's length: `body`, `bodyRandom` n or `bodyRepeat` {count}.
fn body_len(v: &Value) -> u64 {
    v["body"]
        .as_str()
        .map(|b| b.len() as u64)
        .or(v["bodyRandom"].as_u64())
        .or(v["bodyRepeat"]["count"].as_u64())
        .unwrap_or(0)
}

fn buffering_check(name: &str, c: &Value) -> Vec<String> {
    let mut failures = Vec::new();
    let config = &c["config"];
    let e = &c["expect"];
    let built = chain("buffering", config);
    if let Some(refused) = e["configError"].as_bool() {
        match (refused, built) {
            (false, Err(why)) => failures.push(format!("{name}: refused: {why}")),
            (true, Ok(_)) => failures.push(format!("{name}: accepted, Traefik refuses it")),
            _ => {}
        }
        return failures;
    }
    let chain = match built {
        Ok(chain) => chain,
        Err(why) => return vec![format!("{name}: not built: {why}")],
    };
    let Some(Middleware::Buffering(b)) = chain.first().map(|m| &**m) else {
        return vec![format!("{name}: the chain is not one buffering")];
    };
    let b: &Buffering = b;
    let limit = |k: &str| config[k].as_u64().unwrap_or(0);
    if b.max_request_body_bytes != limit("maxRequestBodyBytes")
        || b.max_response_body_bytes != limit("maxResponseBodyBytes")
    {
        failures.push(format!(
            "{name}: limits {b:?}, Traefik {}/{}",
            limit("maxRequestBodyBytes"),
            limit("maxResponseBodyBytes")
        ));
    }

    // The request: refused by its Content-Length before reading, or as read.
    let r = &c["request"];
    let len = body_len(r);
    let declared = r["contentLength"]
        .as_u64()
        .or_else(|| (r["chunked"] != true && len > 0).then_some(len));
    let too_large = declared.is_some_and(|n| b.request_too_large(n)) || b.request_too_large(len);
    // The backend's tries: one response, or each try's (an unreachable server is the proxy's
    // 502); over the response limit, 500 and no other try; then again while the expression
    // holds.
    let method = http::Method::from_bytes(r["method"].as_str().unwrap().as_bytes()).unwrap();
    let backend = &c["backend"];
    let tries: Vec<&Value> = match backend["attempts"].as_array() {
        Some(a) => a.iter().collect(),
        None => vec![&backend["response"]],
    };
    let mut attempts = 0u32;
    let (status, backend_called) = if too_large {
        (413, false)
    } else {
        loop {
            let Some(t) = tries.get(attempts as usize) else {
                failures.push(format!(
                    "{name}: try {} too many, Traefik stops",
                    attempts + 1
                ));
                break (0, true);
            };
            attempts += 1;
            let code = t["status"].as_u64().unwrap() as u16;
            if b.response_too_large(body_len(t)) {
                break (500, true);
            }
            let again = b.again(&Try {
                attempt: attempts,
                code,
                method: &method,
            });
            if !again {
                break (code, true);
            }
        }
    };
    if let Some(want) = e["attempts"].as_u64() {
        if u64::from(attempts) != want {
            failures.push(format!("{name}: {attempts} tries, Traefik {want}"));
        }
    }
    if let Some(want) = e["status"].as_u64() {
        if u64::from(status) != want {
            failures.push(format!("{name}: status {status}, Traefik {want}"));
        }
    }
    if let Some(want) = e["backendCalled"].as_bool() {
        if backend_called != want {
            failures.push(format!(
                "{name}: backend called: {backend_called}, Traefik {want}"
            ));
        }
    }
    // The proxy's answer to a request over the limit (the 500's is `proxy/request/after.rs`'s,
    // over the wire).
    if too_large {
        let ours = crate::proxy::ProxyError::RequestTooLarge;
        if ours.status().as_u16() != 413 {
            failures.push(format!(
                "{name}: a request over the limit gets {}",
                ours.status()
            ));
        }
        if let Some(want) = e["body"].as_str() {
            if ours.body() != want {
                failures.push(format!("{name}: body {:?}, Traefik {want:?}", ours.body()));
            }
        }
    }
    failures
}

#[test]
fn buffering_cases() {
    let all: Vec<(String, Value)> = cases(BUFFERING, "cases")
        .into_iter()
        .map(|c| (id(&c), c))
        .collect();
    let mut failures = Vec::new();
    let ran = tally(
        &all,
        BUFFERING_SKIPPED,
        BUFFERING_KNOWN,
        buffering_check,
        &mut failures,
    );
    assert_eq!(ran, 47, "buffering cases run here");
    report(
        &format!(
            "buffering ({ran} run, {} skipped, {} known)",
            BUFFERING_SKIPPED.len(),
            BUFFERING_KNOWN.len()
        ),
        &failures,
    );
}

// ---------------------------------------------------------------------------------------
// circuitBreaker

/// oxy's frozen clock: 2012-03-04T05:06:07Z.
const T0: Duration = Duration::from_secs(1_330_837_567);

fn ms(v: &Value) -> Duration {
    Duration::from_nanos((v.as_f64().unwrap() * 1e6).round() as u64)
}

/// A Go duration for the configuration: `<n>ms`.
fn go_duration(v: &Value) -> Value {
    Value::String(format!("{}ms", v.as_f64().unwrap()))
}

fn breaker(name: &str, config: &Value) -> Result<Arc<CircuitBreaker>, String> {
    let mut m = serde_json::Map::new();
    m.insert("expression".into(), config["expression"].clone());
    for (ours, key) in [
        ("check_period_ms", "checkPeriod"),
        ("fallback_duration_ms", "fallbackDuration"),
        ("recovery_duration_ms", "recoveryDuration"),
    ] {
        if !config[ours].is_null() {
            m.insert(key.into(), go_duration(&config[ours]));
        }
    }
    if !config["response_code"].is_null() {
        m.insert("responseCode".into(), config["response_code"].clone());
    }
    let chain = chain("circuitBreaker", &Value::Object(m))?;
    let Some(Middleware::CircuitBreaker(cb)) = chain.first().map(|m| &**m) else {
        return Err(format!("{name}: the chain is not one circuitBreaker"));
    };
    // The durations as configured, Traefik's defaults (100ms, 10s, 10s, 503) without them.
    let want = |k: &str, default: u64| {
        if config[k].is_null() {
            Duration::from_millis(default)
        } else {
            ms(&config[k])
        }
    };
    let got = (
        cb.check_period,
        cb.fallback_duration,
        cb.recovery_duration,
        cb.response_code.as_u16(),
    );
    let wanted = (
        want("check_period_ms", 100),
        want("fallback_duration_ms", 10_000),
        want("recovery_duration_ms", 10_000),
        config["response_code"].as_u64().unwrap_or(503) as u16,
    );
    if got != wanted {
        return Err(format!("{name}: configured as {got:?}, Traefik {wanted:?}"));
    }
    Ok(cb.clone())
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Standby => "standby",
        State::Tripped { .. } => "tripped",
        State::Recovering { .. } => "recovering",
    }
}

/// Metrics holding `samples` ({code, count, latency_us}), all recorded at `now`.
fn metrics(samples: &Value, now: Duration) -> Metrics {
    let mut m = Metrics::default();
    for s in samples.as_array().into_iter().flatten() {
        for _ in 0..s["count"].as_u64().unwrap_or(1) {
            m.record(
                now,
                s["code"].as_u64().unwrap() as u16,
                Duration::from_micros(s["latency_us"].as_u64().unwrap_or(0)),
            );
        }
    }
    m
}

/// One request at `now` through the breaker: the status and body the client gets and whether
/// the backend was called (its response then recorded, as the proxy records it).
fn request(cb: &CircuitBreaker, now: Duration, backend: &Value) -> (u16, String, bool) {
    if !cb.admit(now) {
        let a = cb.fallback();
        // Traefik's fallback sets no header (the server adds its own, as Go's does).
        let body = if a.headers.is_empty() {
            String::from_utf8(a.body.to_vec()).unwrap()
        } else {
            format!("(with headers {:?})", a.headers)
        };
        return (a.status.as_u16(), body, false);
    }
    let status = backend["status"].as_u64().unwrap_or(200) as u16;
    let latency = Duration::from_millis(backend["latency_ms"].as_u64().unwrap_or(0));
    cb.record(now, status, latency);
    let body = backend["body"].as_str().unwrap_or("").to_owned();
    (status, body, true)
}

fn expect_request(
    name: &str,
    e: &Value,
    got: &(u16, String, bool),
    state: State,
    failures: &mut Vec<String>,
) {
    let (status, body, called) = got;
    let want_status = e["status"].as_u64().or(e["status_derived"].as_u64());
    if want_status.is_some_and(|w| w != u64::from(*status)) {
        failures.push(format!("{name}: status {status}, Traefik {want_status:?}"));
    }
    if let Some(want) = e["body"].as_str() {
        if body != want {
            failures.push(format!("{name}: body {body:?}, Traefik {want:?}"));
        }
    }
    let want_called = e["backend_called"]
        .as_bool()
        .or(e["backend_called_derived"].as_bool());
    if want_called.is_some_and(|w| w != *called) {
        failures.push(format!(
            "{name}: backend called: {called}, Traefik {want_called:?}"
        ));
    }
    if let Some(want) = e["state"].as_str() {
        if state_name(state) != want {
            failures.push(format!("{name}: state {state:?}, Traefik {want}"));
        }
    }
}

/// oxy's ratio controller through a recovery: one request per step from its start, the share
/// let through never more than 0.05 from the target, the counts at the checkpoints.
fn ratio_controller(name: &str, c: &Value) -> Vec<String> {
    let mut failures = Vec::new();
    let cfg = &c["config"];
    let config = serde_json::json!({
        "expression": "NetworkErrorRatio() > 0.5",
        "recovery_duration_ms": cfg["recovery_duration_ms"],
    });
    let cb = match breaker(name, &config) {
        Ok(cb) => cb,
        Err(why) => return vec![why],
    };
    // Tripped by a first 502; the first request after the fallback starts the recovery.
    assert!(cb.admit(T0));
    cb.record(T0, 502, Duration::ZERO);
    let start = T0 + cb.fallback_duration + ms(&cfg["first_request_at_elapsed_ms"]);
    let recovery = cb.recovery_duration.as_nanos() as f64;
    let step = ms(&cfg["step_ms"]);
    let checkpoints = c["checkpoints_derived"].as_array().unwrap();
    let (mut allowed, mut denied) = (0u64, 0u64);
    let mut worst = 0f64;
    for i in 0..cfg["steps"].as_u64().unwrap() as u32 {
        let elapsed = step * i;
        if cb.admit(start + elapsed) {
            allowed += 1;
        } else {
            denied += 1;
        }
        let target = 0.5 / recovery * elapsed.as_nanos() as f64;
        let diff = (allowed as f64 / (allowed + denied) as f64 - target).abs();
        worst = worst.max(diff);
        if let Some(p) = checkpoints
            .iter()
            .find(|p| p["elapsed_ms"].as_u64() == Some(u64::from(i) * step.as_millis() as u64))
        {
            let want = (
                p["allowed"].as_u64().unwrap(),
                p["denied"].as_u64().unwrap(),
            );
            if (allowed, denied) != want {
                failures.push(format!(
                    "{name}: at {elapsed:?} {allowed} allowed, {denied} denied, oxy {want:?}"
                ));
            }
        }
    }
    if worst >= 0.05 {
        failures.push(format!("{name}: the share strays {worst} from the target"));
    }
    failures
}

fn state_check(name: &str, c: &Value) -> Vec<String> {
    if c["kind"] == "ratio_controller" {
        return ratio_controller(name, c);
    }
    // Traefik's responseCode: trip with a first 502, then the fallback.
    if let Some(variants) = c["variants"].as_array() {
        let mut failures = Vec::new();
        for v in variants {
            let cb = match breaker(name, &v["config"]) {
                Ok(cb) => cb,
                Err(why) => {
                    failures.push(why);
                    continue;
                }
            };
            let code = v["config"]["response_code"].clone();
            let name = format!("{name} ({code})");
            request(&cb, T0, &serde_json::json!({"status": 502}));
            let got = request(&cb, T0, &serde_json::json!({"status": 200}));
            expect_request(
                &name,
                &v["after_trip_expect"],
                &got,
                cb.state(),
                &mut failures,
            );
        }
        return failures;
    }
    let mut failures = Vec::new();
    let cb = match breaker(name, &c["config"]) {
        Ok(cb) => cb,
        Err(why) => return vec![why],
    };
    let mut now = T0;
    for (i, s) in c["steps"].as_array().unwrap().iter().enumerate() {
        let step = format!("{name} step {i}");
        if !s["at_ms"].is_null() {
            now = T0 + ms(&s["at_ms"]);
        } else if !s["advance_ms"].is_null() {
            now += ms(&s["advance_ms"]);
        }
        if !s["set_metrics"].is_null() {
            cb.set_metrics(metrics(&s["set_metrics"], now));
        }
        if s["request"].is_null() {
            continue;
        }
        let backend = match &s["request"]["backend"] {
            Value::Null => &c["backend"],
            b => b,
        };
        let mut allowed = 0;
        let repeat = s["repeat"].as_u64().unwrap_or(1);
        for _ in 0..repeat {
            let got = request(&cb, now, backend);
            allowed += u64::from(got.2);
            expect_request(&step, &s["expect"], &got, cb.state(), &mut failures);
        }
        let d = &s["expect_derived"];
        if let Some(want) = d["allowed"].as_u64() {
            if allowed != want {
                failures.push(format!(
                    "{step}: {allowed} of {repeat} let through, oxy {want}"
                ));
            }
        }
        if let Some(want) = d["state"].as_str() {
            if state_name(cb.state()) != want {
                failures.push(format!("{step}: state {:?}, oxy {want}", cb.state()));
            }
        }
    }
    failures
}

#[test]
fn circuit_breaker_state_cases() {
    let all: Vec<(String, Value)> = cases(CIRCUIT_BREAKER, "state_cases")
        .into_iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c))
        .collect();
    let mut failures = Vec::new();
    let ran = tally(&all, STATE_SKIPPED, STATE_KNOWN, state_check, &mut failures);
    assert_eq!(ran, 13, "state cases run here");
    report(
        &format!(
            "circuit breaker state ({ran} run, {} skipped, {} known)",
            STATE_SKIPPED.len(),
            STATE_KNOWN.len()
        ),
        &failures,
    );
}

/// `TestNewRTMetrics_defaults`: counts through the metric functions (a status' count is its
/// share of the total), then the same after a reset.
fn metrics_check(name: &str, c: &Value) -> Vec<String> {
    let mut failures = Vec::new();
    let now = T0;
    let mut m = Metrics::default();
    for r in c["records"].as_array().unwrap() {
        m.record(
            now,
            r[0].as_u64().unwrap() as u16,
            Duration::from_micros(r[1].as_u64().unwrap()),
        );
    }
    let mut check = |when: &str, m: &Metrics, e: &Value| {
        let total = m.total(now);
        let mut got = vec![
            ("total", total as f64),
            ("network_error_ratio", m.network_error_ratio(now)),
            (
                "network_error_count",
                (m.network_error_ratio(now) * total as f64).round(),
            ),
            (
                "response_code_ratio(500,503,200,300)",
                m.response_code_ratio(now, 500, 503, 200, 300),
            ),
        ];
        // oxy's quantile in microseconds, truncated to seconds; betaroute's in milliseconds.
        let ms = m.latency_ms_at_quantile(100.0);
        got.push((
            "latency_at_quantile_100_seconds_truncated",
            (ms / 1000) as f64,
        ));
        got.push(("latency_at_quantile_100_us", (ms * 1000) as f64));
        for (k, v) in got {
            if let Some(want) = e[k].as_f64() {
                if (v - want).abs() > 1e-12 {
                    failures.push(format!("{name} {when}: {k} {v}, oxy {want}"));
                }
            }
        }
        let counts = e["status_counts"].as_object().unwrap();
        for (code, want) in counts {
            let code: u16 = code.parse().unwrap();
            let n = (m.response_code_ratio(now, code, code + 1, 0, 1000) * total as f64).round();
            if n != want.as_f64().unwrap() {
                failures.push(format!("{name} {when}: {code} counted {n}, oxy {want}"));
            }
        }
        if counts.is_empty() && total != 0 {
            failures.push(format!("{name} {when}: {total} responses, oxy none"));
        }
    };
    check("", &m, &c["expect"]);
    m.reset(now);
    check("after reset", &m, &c["after_reset"]);
    failures
}

#[test]
fn circuit_breaker_metrics_cases() {
    let all: Vec<(String, Value)> = cases(CIRCUIT_BREAKER, "metrics_cases")
        .into_iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c))
        .collect();
    let mut failures = Vec::new();
    let ran = tally(&all, METRICS_SKIPPED, &[], metrics_check, &mut failures);
    assert_eq!(ran, 1, "metrics cases run here");
    report(
        &format!(
            "circuit breaker metrics ({ran} run, {} skipped)",
            METRICS_SKIPPED.len()
        ),
        &failures,
    );
}
