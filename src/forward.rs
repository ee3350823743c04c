//! The origin fetch for a decided request: routing headers stripped, X-Forwarded-* set, the
//! decision's headers and the routing signature added, the body streamed; the request's log line
//! once the origin answers; a 502 when it cannot be reached.

use std::cell::RefCell;
use std::rc::Rc;

use betaroute_core::signature::{self, RoutingKey};
use betaroute_core::{Decision, Verdict};
use js_sys::Reflect;
use serde_json::json;
use wasm_bindgen::{JsCast, JsValue};
use worker::{console_error, console_log, Response};

use crate::config::EdgeConfig;
use crate::error::{EdgeError, HeaderAction, UpstreamProblem};
use crate::js;
use crate::rollout::Active;
use crate::url::{path_of, split_url, upstream_url};

/// Forwards the request as decided: the origin's response to come (a promise), or a 502 when the
/// request could not even be sent. With request logging on, the log line is written when the
/// origin's status is known (one continuation); without, the origin's promise is passed on.
pub fn respond(
    req: &web_sys::Request,
    url: &str,
    cfg: &Rc<EdgeConfig>,
    policy: Option<&Active>,
    verdict: &Verdict,
) -> JsValue {
    let pending = forward(req, url, cfg, policy, &verdict.decision);
    if !cfg.log_requests {
        return match pending {
            Ok(p) => caught(p).into(),
            Err(e) => bad_gateway(&e).into(),
        };
    }
    let line = log_line(req, url, verdict);
    let started = js_sys::Date::now();
    let log = move |status: u16| {
        let mut line = line;
        line["status"] = status.into();
        line["ms"] = (js_sys::Date::now() - started).into();
        console_log!("{line}");
    };
    match pending {
        Ok(p) => {
            let then = wasm_bindgen::closure::Closure::once_into_js(move |settled: JsValue| {
                match settled.dyn_into::<web_sys::Response>() {
                    Ok(resp) => {
                        log(resp.status());
                        JsValue::from(resp)
                    }
                    Err(e) => {
                        log(502);
                        JsValue::from(fetch_failed(&e))
                    }
                }
            });
            js::then_both(&p, &then).into()
        }
        Err(e) => {
            log(502);
            bad_gateway(&e).into()
        }
    }
}

/// The request's log line but for the origin's status and the time it took.
fn log_line(req: &web_sys::Request, url: &str, verdict: &Verdict) -> serde_json::Value {
    // The verdict's fields without `inject`: the log line has never carried it (the cohort says
    // whether the beta header was set).
    let mut line = serde_json::to_value(verdict).unwrap_or_default();
    if let Some(fields) = line.as_object_mut() {
        fields.remove("inject");
    }
    line["betaroute"] = "request".into();
    line["method"] = req.method().into();
    line["path"] = path_of(url).into();
    line
}

/// The origin's fetch, with failures turned into a 502.
fn caught(pending: js_sys::Promise) -> js_sys::Promise {
    UPSTREAM_FAILED.with(|f| pending.catch_map(f).unchecked_into())
}

type UpstreamFailed =
    wasm_bindgen::closure::Closure<dyn FnMut(JsValue) -> Result<JsValue, wasm_bindgen::JsError>>;

thread_local! {
    /// Turns a failed origin fetch into a 502 (made once per isolate: a closure per request
    /// would cost an allocation and a finalizer registration).
    static UPSTREAM_FAILED: UpstreamFailed = wasm_bindgen::closure::Closure::new(|e: JsValue| {
        Ok(fetch_failed(&e).into())
    });
}

/// The 502 for a rejected origin fetch (its rejection value says why), logged.
fn fetch_failed(e: &JsValue) -> web_sys::Response {
    let message = js::describe(e);
    bad_gateway(&UpstreamProblem::Rejected { message }.into())
}

/// The 502 for an origin that could not be reached, logged.
fn bad_gateway(problem: &EdgeError) -> web_sys::Response {
    console_error!(
        "{}",
        json!({"betaroute": "upstream", "level": "error", "problem": problem.to_string()})
    );
    Response::error("Bad Gateway: the origin could not be reached\n", 502)
        .map(web_sys::Response::from)
        .expect("a static response builds")
}

/// Header names as JavaScript strings, made once per configuration: passing a JS string into a
/// `Headers` call costs nothing, where a Rust `&str` is decoded from wasm memory on every call.
struct JsNames {
    /// `cfg.strip_spellings`, when there are few enough to delete by name.
    strip: Option<Vec<JsValue>>,
    forwarded_host: JsValue,
    forwarded_proto: JsValue,
}

fn js_names(cfg: &Rc<EdgeConfig>) -> Rc<JsNames> {
    thread_local! {
        // Keyed by the configuration it was made from (held, so its address is not reused).
        static NAMES: RefCell<Option<(Rc<EdgeConfig>, Rc<JsNames>)>> = const { RefCell::new(None) };
    }
    NAMES.with(|cell| {
        let mut cell = cell.borrow_mut();
        if let Some((_, names)) = cell.as_ref().filter(|(c, _)| Rc::ptr_eq(c, cfg)) {
            return names.clone();
        }
        let names = Rc::new(JsNames {
            strip: cfg
                .strip_spellings
                .as_ref()
                .map(|s| s.iter().map(|n| JsValue::from_str(n)).collect()),
            forwarded_host: JsValue::from_str("x-forwarded-host"),
            forwarded_proto: JsValue::from_str("x-forwarded-proto"),
        });
        *cell = Some((cfg.clone(), names.clone()));
        names
    })
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// `Headers`, with names passed as JavaScript strings.
    #[wasm_bindgen(js_name = Headers)]
    type JsHeaders;

    #[wasm_bindgen(method, catch, js_name = delete)]
    fn delete_name(this: &JsHeaders, name: &JsValue) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = set)]
    fn set_name(this: &JsHeaders, name: &JsValue, value: &str) -> Result<(), JsValue>;
}

/// Starts the origin fetch: same method, path, query, headers (minus routing headers, plus the
/// decision's) and body, streamed. Redirects are returned, not followed. The promise resolves to
/// the origin's response, untouched.
fn forward(
    incoming: &web_sys::Request,
    incoming_url: &str,
    cfg: &Rc<EdgeConfig>,
    policy: Option<&Active>,
    decision: &Decision,
) -> Result<js_sys::Promise, EdgeError> {
    let method = incoming.method();
    let headers = web_sys::Headers::new_with_headers(&incoming.headers())
        .map_err(|e| header_failed(HeaderAction::Copy, &e))?;
    let names = js_names(cfg);
    strip_routing_headers(&headers, names.strip.as_deref(), &cfg.strip)?;
    if let Some(p) = policy.filter(|p| !p.names.is_empty()) {
        // The policy's mapped headers are routing headers too, whether or not a token is here.
        strip_routing_headers(&headers, p.strip.as_deref(), &p.strip_policy)?;
    }
    // Always overwritten, never passed on from the client: the origin router may route on
    // X-Forwarded-Host from the edge (useForwardedHost), so a client must not be able to set it.
    // The value is the authority of the URL the edge was called with (what Cloudflare routed on).
    let (proto, authority, _) = split_url(incoming_url);
    let h: &JsHeaders = headers.unchecked_ref();
    let _ = h.set_name(&names.forwarded_host, authority);
    let _ = h.set_name(&names.forwarded_proto, proto);
    for (name, value) in &decision.inject {
        headers
            .set(name, value)
            .map_err(|e| header_failed(HeaderAction::Set { name: name.clone() }, &e))?;
    }
    if let Some(key) = &cfg.signer {
        let path = path_of(incoming_url);
        let req = signature::Request {
            method: &method,
            host: authority,
            path: if path.is_empty() { "/" } else { path },
        };
        sign(&headers, cfg, policy, key, &req)?;
    }
    let url = upstream_url(cfg.origin.as_deref(), incoming_url);
    fetch(&url, &method, &headers, incoming.body())
}

/// Deletes every client-sent header `policy` matches from the copy: by its `spellings` when
/// there are few, else by scanning the headers.
fn strip_routing_headers(
    headers: &web_sys::Headers,
    spellings: Option<&[JsValue]>,
    policy: &betaroute_core::HeaderPolicy,
) -> Result<(), EdgeError> {
    // The spelling a failed delete is logged with: a JS string's debug form, or the name.
    let removing = |name: String, e: &JsValue| header_failed(HeaderAction::Remove { name }, e);
    match spellings {
        // Headers ignore case: deleting each spelling is a few calls, where reading every name
        // back into wasm is several per header.
        Some(spellings) => {
            let h: &JsHeaders = headers.unchecked_ref();
            for name in spellings {
                h.delete_name(name)
                    .map_err(|e| removing(format!("{name:?}"), &e))?;
            }
        }
        None => {
            let present: Vec<String> = js_sys::try_iter(headers)
                .ok()
                .flatten()
                .into_iter()
                .flatten()
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| Reflect::get(&entry, &0.into()).ok()?.as_string())
                .collect();
            for name in present.iter().filter(|n| policy.is_routing_header(n)) {
                headers
                    .delete(name)
                    .map_err(|e| removing(name.clone(), &e))?;
            }
        }
    }
    Ok(())
}

/// Signs what the origin router will see: the routing headers as set now (or absent), the
/// method, the host it routes on (X-Forwarded-Host) and the path as forwarded.
fn sign(
    headers: &web_sys::Headers,
    cfg: &EdgeConfig,
    policy: Option<&Active>,
    key: &RoutingKey,
    req: &signature::Request,
) -> Result<(), EdgeError> {
    let mapped = policy.map_or(&[][..], |p| p.names.as_slice());
    let names: Vec<&str> = cfg
        .routing_names
        .iter()
        .chain(mapped)
        .map(String::as_str)
        .collect();
    let values: Vec<Option<String>> = names
        .iter()
        .map(|n| headers.get(n).ok().flatten())
        .collect();
    let pairs: Vec<(&str, Option<&str>)> = names
        .iter()
        .copied()
        .zip(values.iter().map(|v| v.as_deref()))
        .collect();
    let value = signature::sign(key, (js_sys::Date::now() / 1000.0) as u64, req, &pairs);
    headers
        .set(&cfg.signature_header, &value)
        .map_err(|e| header_failed(HeaderAction::SetSignature, &e))
}

/// The error for a header operation that threw `e` (kept in its debug form, as logged).
fn header_failed(action: HeaderAction, e: &JsValue) -> EdgeError {
    let message = format!("{e:?}");
    EdgeError::Header { action, message }
}

/// Fetches with an init of method, the headers, the body stream (never buffered) and redirect
/// "manual". Not `new Request(url, incoming)`: that also copies `cf` and the rest of the request
/// object: a JS pass-through worker written that way served 18% fewer requests per second in
/// workerd (measured).
fn fetch(
    url: &str,
    method: &str,
    headers: &web_sys::Headers,
    body: Option<web_sys::ReadableStream>,
) -> Result<js_sys::Promise, EdgeError> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_headers(headers);
    if let Some(body) = body {
        init.set_body(&body);
    }
    init.set_redirect(web_sys::RequestRedirect::Manual);
    js::fetch(&JsValue::from_str(url), &init).map_err(|e| {
        let (url, message) = (url.to_owned(), js::describe(&e));
        UpstreamProblem::Threw { url, message }.into()
    })
}
