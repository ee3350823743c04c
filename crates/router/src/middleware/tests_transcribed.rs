//! Traefik's cases for `compress` and `retry` (`cases/compress.json`, `cases/retry.json`) run
//! against the pure logic.
//!
//! Each middleware is built through the real configuration reader, as a file would give it.
//! `compress`: which encoding a request gets ([`Compress::choose`]) and whether a response head
//! may be compressed ([`Compress::compresses`]); what needs the body (the minimum size, flushes)
//! is run over the wire elsewhere. `retry`: each case's backend tries are played as data
//! through [`Retry::again`], as the proxy's send phase plays them.

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use serde_json::Value;

use super::case_data::{chain, header_map, values};

use super::compress::{Compress, Encoding, MediaType, DEFAULT_ENCODINGS, DEFAULT_MIN_SIZE};
use super::retry::{Outcome, Retry};

/// Deliberate differences from Traefik, by case (`test/name`): each must still differ, so the
/// list stays honest.
///
/// Two more known differences have no case in the files to show them: betaroute never
/// compresses a 206 / Content-Range, 204, 304 or 1xx response for any encoding (Traefik checks
/// Content-Range only for gzip; its 204/304 cases have no body, so neither compresses), and a
/// request body over `maxRequestBodyBytes` is sent once with no retry at all (Traefik still
/// retries network errors; its too-long-body cases have no network error, so both send once).
const KNOWN: &[(&str, &str)] = &[(
    "TestNegotiation/accept any header",
    "Traefik hands `*` to gzhttp, which re-parses Accept-Encoding, finds no explicit gzip and \
     does not compress; betaroute compresses with the encoding `*` chose",
)];

/// `compress` cases whose outcome needs the body (how much of it, when it is flushed): they are
/// run over the wire, where the body is. The others are decided by the heads: betaroute
/// compresses from the first byte once `choose` and `compresses` say so and the body reaches
/// `minResponseBodyBytes`, which all of them do (the `Test_Flush*ContentTypes` bodies are 4164
/// bytes, so their flushes only move the moment of a decision the Content-Type already made).
/// `Test_NoBody`'s 204 and 304 are run: betaroute refuses them from the status alone, so no
/// body could change the outcome.
const NEEDS_BODY: &[(&str, &str)] = &[
    (
        "TestMinResponseBodyBytes/should not compress",
        "a 100000-byte body under minResponseBodyBytes 100001",
    ),
    (
        "Test_Vary/brotli",
        "a 94-byte body under the minimum; Vary is the proxy's",
    ),
    (
        "Test_Vary/zstd",
        "a 94-byte body under the minimum; Vary is the proxy's",
    ),
    (
        "Test_SmallBodyNoCompression/brotli",
        "a 94-byte body under the minimum",
    ),
    (
        "Test_SmallBodyNoCompression/zstd",
        "a 94-byte body under the minimum",
    ),
    (
        "Test_NoBody/status OK with empty body",
        "a 200 with an empty body: nothing to compress",
    ),
    (
        "Test_NoBody/status OK with nil body",
        "a 200 with an empty body: nothing to compress",
    ),
    (
        "Test_MinSize/short response (minSize-1 bytes, 1-byte writes)",
        "buffering 1-byte writes below the minimum",
    ),
    (
        "Test_MinSize/long response (exactly minSize bytes, 1-byte writes)",
        "buffering 1-byte writes up to the minimum",
    ),
    (
        "Test_MultipleWriteHeader",
        "which of two WriteHeader calls wins: Go's writer API, one head on the wire",
    ),
    (
        "Test_FlushBeforeWrite/brotli",
        "a flush before any body byte",
    ),
    ("Test_FlushBeforeWrite/zstd", "a flush before any body byte"),
    (
        "Test_FlushAfterWrite/brotli",
        "a flush after 1 byte forces compression",
    ),
    (
        "Test_FlushAfterWrite/zstd",
        "a flush after 1 byte forces compression",
    ),
    (
        "Test_FlushAfterWriteNil/brotli",
        "an empty write then a flush",
    ),
    (
        "Test_FlushAfterWriteNil/zstd",
        "an empty write then a flush",
    ),
    (
        "Test_FlushAfterAllWrites/brotli",
        "1-byte writes then a flush",
    ),
    (
        "Test_FlushAfterAllWrites/zstd",
        "1-byte writes then a flush",
    ),
    (
        "Test_FlushForceCompress/brotli",
        "a flush forces compression of a 94-byte body",
    ),
    (
        "Test_FlushForceCompress/zstd",
        "a flush forces compression of a 94-byte body",
    ),
];

/// `retry` cases with no counterpart in the data model: the proxy's send phase reads the body
/// and always gets a response or an error from a try.
const RETRY_ELSEWHERE: &[(&str, &str)] = &[
    (
        "TestMultipleRetriesShouldNotLooseHeaders",
        "a Go handler that writes nothing at all: a backend always answers or fails",
    ),
    (
        "TestRetryDoesNotBufferBodyForNonIdempotentMethod",
        "a request body that fails to read: the proxy reads it, over the wire",
    ),
    (
        "derived: body read error with status retry/GET body read error",
        "a request body that fails to read: the proxy reads it, over the wire",
    ),
];

/// Traefik's error texts that betaroute words its own way (Traefik's, betaroute's).
const WORDING: &[(&str, &str)] = &[("creating HTTP code ranges", "is not a number")];

fn file(kind: &str) -> Value {
    let path = format!(
        "{}/src/middleware/cases/{kind}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn section(kind: &str, key: &str) -> Vec<Value> {
    file(kind)[key].as_array().unwrap().clone()
}

/// A case's name as Go names its subtest.
fn id(c: &Value) -> String {
    let test = c["test"].as_str().unwrap_or("?");
    match c["name"].as_str() {
        Some(n) if !n.is_empty() => format!("{test}/{n}"),
        _ => test.to_owned(),
    }
}

fn compress(config: &Value) -> Result<Arc<Compress>, String> {
    match chain("compress", config)?.first().map(|m| &**m) {
        Some(super::Middleware::Compress(c)) => Ok(c.clone()),
        other => Err(format!("not a compress middleware: {other:?}")),
    }
}

fn retry(config: &Value) -> Result<Arc<Retry>, String> {
    match chain("retry", config)?.first().map(|m| &**m) {
        Some(super::Middleware::Retry(r)) => Ok(r.clone()),
        other => Err(format!("not a retry middleware: {other:?}")),
    }
}

fn accept(lines: &[String]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for l in lines {
        h.append(
            http::header::ACCEPT_ENCODING,
            HeaderValue::from_str(l).unwrap(),
        );
    }
    h
}

fn token(e: Option<Encoding>) -> Option<&'static str> {
    e.map(Encoding::token)
}

fn report(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of Traefik's {what} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Checks a case against the known differences: one listed must differ (`ok == false`), one
/// not listed must agree. Returns whether it was listed.
fn known(name: &str, ok: bool, got: &str, failures: &mut Vec<String>) -> bool {
    let listed = KNOWN.iter().any(|(n, _)| *n == name);
    if listed && ok {
        failures.push(format!(
            "{name}: listed in KNOWN but agrees with Traefik now ({got})"
        ));
    }
    listed
}

/// `getCompressionEncoding` and the derived cases: `supported` and `default_encoding` as the
/// configuration, the request's Accept-Encoding lines; "identity" and "not_acceptable" are
/// Traefik's two ways of not compressing.
fn accept_encoding(key: &str) {
    let mut failures = Vec::new();
    let cases = section("compress", key);
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let config = serde_json::json!({
            "encodings": c["supported"],
            "defaultEncoding": c["default_encoding"],
        });
        let m = match compress(&config) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}: not built: {e}"));
                continue;
            }
        };
        let got = token(m.choose(&Method::GET, &accept(&values(&c["accept_encoding"]))));
        let want = match c["expect"].as_str().unwrap() {
            "identity" | "not_acceptable" => None,
            e => Some(e),
        };
        if got != want {
            failures.push(format!("{name}: {got:?}, Traefik {:?}", c["expect"]));
        }
    }
    assert!(!cases.is_empty());
    report(key, &failures);
}

#[test]
fn compress_accept_encoding_cases() {
    accept_encoding("accept_encoding_cases");
}

#[test]
fn compress_derived_accept_encoding_cases() {
    accept_encoding("derived_accept_encoding_cases");
}

/// `parseAcceptableEncodings` has no Rust counterpart (the parsed list is private): each
/// expected list is ranked as Traefik ranks it (weight, then `*`, the configured order,
/// identity last) and its winner compared with what `choose` picks from the same header.
#[test]
fn compress_parse_accept_encoding_cases() {
    let mut failures = Vec::new();
    let cases = section("compress", "parse_accept_encoding_cases");
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let supported = values(&c["supported"]);
        let m = match compress(&serde_json::json!({"encodings": supported})) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}: not built: {e}"));
                continue;
            }
        };
        let rank = |t: &str| match t {
            "*" => -1,
            "identity" => supported.len() as i64,
            e => supported.iter().position(|s| s == e).unwrap() as i64,
        };
        let mut best: Option<(&str, f64)> = None;
        for item in c["expect"].as_array().unwrap() {
            let (t, w) = (
                item["type"].as_str().unwrap(),
                item["weight"].as_f64().unwrap(),
            );
            if best.is_none_or(|(b, bw)| w > bw || (w == bw && rank(t) < rank(b))) {
                best = Some((t, w));
            }
        }
        let want = match best {
            None | Some(("identity", _)) => None,
            Some(("*", _)) => Some(supported[0].as_str()),
            Some((t, _)) => Some(t),
        };
        let got = token(m.choose(&Method::GET, &accept(&values(&c["values"]))));
        if got != want {
            failures.push(format!(
                "{name}: {got:?}, the winner of Traefik's {} is {want:?}",
                c["expect"]
            ));
        }
    }
    assert!(!cases.is_empty());
    report("parse_accept_encoding", &failures);
}

/// `parsedContentType.equals` is private; it is what `compresses` asks of an included type, so
/// each pattern is the only included type (kept with its parameters, as Traefik's handler keeps
/// them; the reader strips them, so the Compress is built directly) and the other side is the
/// response's Content-Type.
#[test]
fn compress_content_type_equals_cases() {
    let mut failures = Vec::new();
    let mut run = 0;
    for c in section("compress", "content_type_equals_cases") {
        let name = c["name"].as_str().unwrap();
        let params = |v: &Value| -> Vec<(String, String)> {
            let o = v.as_object().unwrap();
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        };
        let essence = c["mediaType"].as_str().unwrap();
        if essence.is_empty() {
            // Go compares two empty parsed types; a response with an empty Content-Type has no
            // parsed type in betaroute (see the compress cases for what it does with one).
            assert_eq!(name, "empty parsed content type");
            continue;
        }
        run += 1;
        let pattern = MediaType {
            essence: c["pattern"]["mediaType"].as_str().unwrap().to_owned(),
            params: params(&c["pattern"]["params"]),
        };
        let m = Compress {
            excludes: Vec::new(),
            includes: vec![pattern],
            min_size: DEFAULT_MIN_SIZE,
            encodings: DEFAULT_ENCODINGS.to_vec(),
            default_encoding: None,
        };
        let mut ct = essence.to_owned();
        for (k, v) in params(&c["params"]) {
            ct.push_str(&format!("; {k}={v}"));
        }
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_str(&ct).unwrap(),
        );
        let got = m.compresses(StatusCode::OK, &h);
        if got != c["expect"].as_bool().unwrap() {
            failures.push(format!(
                "{name}: {ct:?} matches: {got}, Traefik {}",
                c["expect"]
            ));
        }
    }
    assert_eq!(run, 5);
    report("content_type_equals", &failures);
}

/// The encoding the client gets in Traefik, as the middleware gives it: a `compression_handler`
/// case (the handler alone, list parameters kept) through the full middleware is its
/// `middleware_equivalent_expect` where that differs. `None`: the case does not say.
fn expected_encoding(c: &Value) -> Option<Option<String>> {
    let meq = &c["middleware_equivalent_expect"];
    if c["layer"] == "compression_handler" && meq.get("encoding").is_some() {
        return Some(meq["encoding"].as_str().map(str::to_owned));
    }
    let e = &c["expect"];
    if let Some(enc) = e.get("encoding") {
        return Some(enc.as_str().map(str::to_owned));
    }
    // Only Content-Encoding asserted: null, or the backend's own passed through.
    match e["headers"].get("Content-Encoding")? {
        Value::Null => Some(None),
        v if c["next"]["headers"].get("Content-Encoding") == Some(v) => Some(None),
        v => Some(values(v).first().cloned()),
    }
}

/// Traefik's HTTP cases decided by the heads: the request's encoding, then whether the
/// backend's response head may be compressed. Status, Vary, 1xx forwarding and bodies are
/// checked over the wire; the minimum size read from the configuration is checked here for
/// every case.
#[test]
fn compress_cases() {
    let mut failures = Vec::new();
    let (mut run, mut skipped) = (0, 0);
    let mut seen = Vec::new();
    for c in section("compress", "cases") {
        let name = id(&c);
        seen.push(name.clone());
        let m = match compress(&c["config"]) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}: not built: {e}"));
                continue;
            }
        };
        // 0 and negative mean the default.
        let min = c["config"]["minResponseBodyBytes"].as_i64().unwrap_or(0);
        let want_min = if min > 0 {
            min as usize
        } else {
            DEFAULT_MIN_SIZE
        };
        if m.min_size != want_min {
            failures.push(format!(
                "{name}: min size {}, Traefik {want_min}",
                m.min_size
            ));
        }
        if NEEDS_BODY.iter().any(|(n, _)| *n == name) {
            skipped += 1;
            continue;
        }
        let Some(want) = expected_encoding(&c) else {
            failures.push(format!(
                "{name}: the case says no encoding; list it as skipped"
            ));
            continue;
        };
        run += 1;
        let r = &c["request"];
        let method = Method::from_bytes(r["method"].as_str().unwrap().as_bytes()).unwrap();
        let chosen = m.choose(&method, &header_map(&r["headers"]));
        let next = &c["next"];
        let mut response = header_map(&next["headers"]);
        for w in next["writes"].as_array().into_iter().flatten() {
            response.extend(header_map(&w["add_header"]));
        }
        let status = StatusCode::from_u16(next["status"].as_u64().unwrap() as u16).unwrap();
        let got = chosen.filter(|_| m.compresses(status, &response));
        let ok = token(got) == want.as_deref();
        let got = format!("{:?} (chosen {:?})", token(got), token(chosen));
        if !known(&name, ok, &got, &mut failures) && !ok {
            failures.push(format!("{name}: {got}, Traefik {want:?}"));
        }
    }
    for (n, _) in KNOWN.iter().chain(NEEDS_BODY) {
        if !seen.iter().any(|s| s == n) {
            failures.push(format!("{n}: listed, but no such case"));
        }
    }
    assert_eq!(skipped, NEEDS_BODY.len());
    assert!(run > 0);
    report(
        &format!("compress ({run} run, {skipped} skipped)"),
        &failures,
    );
}

/// One backend try as the data model has it: the outcome `again` sees, the status the client
/// would get if it is the last, and how long it took.
fn attempt(a: &Value, proxy_reached: bool) -> (Outcome, u16, Duration) {
    let delay = Duration::from_millis(a["delay_ms"].as_u64().unwrap_or(0));
    let status = match a["kind"].as_str().unwrap() {
        "websocket_upgrade" => 101,
        // The last final status the script writes; a Write alone is an implicit 200.
        "script" => a["steps"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .filter_map(|s| s["writeHeader"].as_u64())
            .find(|c| *c >= 200)
            .unwrap_or(200) as u16,
        _ => a["status"].as_u64().unwrap() as u16,
    };
    // A "network error" before the proxy (nothing wrapped) is just an answer in Traefik; in
    // betaroute it is a response too, whatever answered.
    let outcome = if a["kind"] == "network_error" && proxy_reached {
        Outcome::NotReached
    } else {
        Outcome::Status(status)
    };
    (outcome, status, delay)
}

/// Traefik's retry cases: each backend's tries in turn, tried again while `again` says so; the
/// number of tries and the status the client gets compared with Traefik's. The body is kept
/// when it is at most `maxRequestBodyBytes` (negative: no limit) and the status ranges apply to
/// the method; a longer one is sent once (`send_retrying`). Validation cases check the reader.
#[test]
fn retry_cases() {
    let mut failures = Vec::new();
    let (mut run, mut skipped, mut validation) = (0, 0, 0);
    for c in section("retry", "cases") {
        let name = id(&c);
        let e = &c["expect"];
        let built = retry(&c["config"]);
        if let Some(refused) = e["configError"].as_bool() {
            validation += 1;
            match (refused, built) {
                (false, Err(why)) => failures.push(format!("{name}: refused: {why}")),
                (true, Ok(_)) => failures.push(format!("{name}: accepted, Traefik refuses it")),
                (true, Err(why)) => {
                    let want = e["errorContains"].as_str().unwrap();
                    let ours = WORDING
                        .iter()
                        .find(|(t, _)| *t == want)
                        .map_or(want, |(_, b)| *b);
                    if !why.contains(ours) {
                        failures.push(format!("{name}: refused with {why:?}, Traefik {want:?}"));
                    }
                }
                (false, Ok(_)) => {}
            }
            continue;
        }
        let r = match built {
            Ok(r) => r,
            Err(why) => {
                failures.push(format!("{name}: not built: {why}"));
                continue;
            }
        };
        if RETRY_ELSEWHERE.iter().any(|(n, _)| *n == name) {
            skipped += 1;
            continue;
        }
        run += 1;
        let req = &c["request"];
        let method = Method::from_bytes(req["method"].as_str().unwrap().as_bytes()).unwrap();
        let body_len = req["body"].as_str().map_or_else(
            || req["bodyRepeat"]["count"].as_u64().unwrap(),
            |b| b.len() as u64,
        );
        let kept = r.max_request_body_bytes < 0 || body_len <= r.max_request_body_bytes as u64;
        let status_retries = kept && r.retries_status(&method);
        let proxy_reached = c["backend"]["wrapHandler"].as_bool().unwrap();
        let tries = c["backend"]["attempts"].as_array().unwrap();
        // Waits of the backoff at the middle of their randomization, for the timeout's clock.
        let mut backoff = r.backoff();
        let mut elapsed = Duration::ZERO;
        let mut n = 0u32;
        let status = loop {
            let Some(a) = tries.get(n as usize) else {
                failures.push(format!("{name}: try {} too many, Traefik stops", n + 1));
                break None;
            };
            n += 1;
            let (outcome, status, delay) = attempt(a, proxy_reached);
            elapsed += delay;
            if !kept || !r.again(n, outcome, elapsed, status_retries) {
                break Some(status);
            }
            elapsed += backoff.next(0.5);
        };
        let Some(status) = status else { continue };
        let want_tries = e["attempts"]
            .as_u64()
            .or(e["backendCalls"].as_u64())
            .or(e["retries"].as_u64().map(|r| r + 1))
            .unwrap();
        if u64::from(n) != want_tries {
            failures.push(format!("{name}: {n} tries, Traefik {want_tries}"));
        }
        if let Some(want) = e["retries"].as_u64() {
            if u64::from(n - 1) != want {
                failures.push(format!("{name}: {} retries, Traefik {want}", n - 1));
            }
        }
        if let Some(want) = e["status"].as_u64() {
            if u64::from(status) != want {
                failures.push(format!("{name}: status {status}, Traefik {want}"));
            }
        }
        // cenkalti's randomized waits: within ±50 % of `initialInterval` for the first, none
        // without it or with one try.
        let initial = r.initial_interval.as_secs_f64();
        let (low, high) = (r.backoff().next(0.0), r.backoff().next(0.999_999));
        let zero = initial == 0.0 || r.attempts < 2;
        let (want_low, want_high) = if zero {
            (0.0, 0.0)
        } else {
            (initial * 0.5, initial * 1.5)
        };
        if (low.as_secs_f64() - want_low).abs() > 1e-6
            || (high.as_secs_f64() - want_high).abs() > 1e-6
        {
            failures.push(format!(
                "{name}: first wait in [{low:?}, {high:?}], Traefik [{want_low}s, {want_high}s)"
            ));
        }
    }
    assert_eq!(skipped, RETRY_ELSEWHERE.len());
    assert_eq!(validation, 5);
    report(
        &format!("retry ({run} run, {validation} validation, {skipped} skipped)"),
        &failures,
    );
}
