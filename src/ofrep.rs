//! The beta flag from the flag service, through the OpenFeature Remote Evaluation Protocol:
//! `POST {OFREP_URL}/ofrep/v1/evaluate/flags/{OFREP_FLAG}` with the verified subject as
//! `targetingKey` and the verified claims as the evaluation context. What flagd, Flipt, GO
//! Feature Flag and other OpenFeature providers serve.
//!
//! Answers are kept per subject for `OFREP_CACHE_SECONDS` (unless the service says `cacheable:
//! false`), at most `OFREP_CACHE_SIZE` of them: when full, expired answers go first, then all.
//! No answer (a timeout, an error status, a body without a boolean `value`) means `None`: the
//! policy and the token decide, never a 5xx. After a failure the service is left alone for
//! `OFREP_RETRY_SECONDS` (or its `Retry-After`), so a service that is down costs one timeout
//! per isolate per interval, not one per request.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Map, Value};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::{console_error, AbortController, Delay};

use crate::config::OfrepSettings;
use crate::error::{EdgeError, OfrepProblem};
use crate::js::describe;

struct State {
    /// The settings the answers were given under: other settings start afresh.
    settings: OfrepSettings,
    answers: HashMap<String, (bool, f64)>,
    /// Until when the service is not asked (after a failure).
    resting_until: f64,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn with_state<T>(settings: &OfrepSettings, f: impl FnOnce(&mut State) -> T) -> T {
    STATE.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|s| s.settings != *settings) {
            *cell = Some(State {
                settings: settings.clone(),
                answers: HashMap::new(),
                resting_until: 0.0,
            });
        }
        f(cell.as_mut().expect("just set"))
    })
}

/// The flag service's answer for `subject`: kept, asked, or `None` when there is none to use.
pub async fn flag(
    settings: &OfrepSettings,
    subject: &str,
    claims: &Map<String, Value>,
) -> Option<bool> {
    let now = js_sys::Date::now();
    let kept = with_state(settings, |s| {
        if now < s.resting_until {
            return Some(None);
        }
        s.answers
            .get(subject)
            .filter(|(_, until)| now < *until)
            .map(|(v, _)| Some(*v))
    });
    if let Some(answer) = kept {
        return answer;
    }
    match ask(settings, subject, claims).await {
        Ok((value, cacheable)) => {
            if cacheable {
                with_state(settings, |s| {
                    if s.answers.len() >= s.settings.cache_size {
                        s.answers.retain(|_, (_, until)| now < *until);
                        if s.answers.len() >= s.settings.cache_size {
                            s.answers.clear();
                        }
                    }
                    let until = now + s.settings.cache_ms as f64;
                    s.answers.insert(subject.to_owned(), (value, until));
                });
            }
            Some(value)
        }
        Err((problem, retry_after_ms)) => {
            // A Retry-After is honoured up to ten minutes.
            let rest = retry_after_ms
                .unwrap_or(0.0)
                .min(600_000.0)
                .max(settings.retry_ms as f64);
            with_state(settings, |s| s.resting_until = js_sys::Date::now() + rest);
            console_error!(
                "{}",
                json!({"betaroute": "ofrep", "level": "error", "problem": EdgeError::from(problem).to_string(), "retry_in_ms": rest})
            );
            None
        }
    }
}

type Failure = (OfrepProblem, Option<f64>);

/// One evaluation: the boolean value and whether it may be kept; or why not, with the service's
/// `Retry-After` in milliseconds when it sent one.
async fn ask(
    settings: &OfrepSettings,
    subject: &str,
    claims: &Map<String, Value>,
) -> Result<(bool, bool), Failure> {
    let fail = |p: OfrepProblem| (p, None);
    let controller = AbortController::default();
    let signal = controller.signal();
    let timeout_ms = settings.timeout_ms;
    wasm_bindgen_futures::spawn_local(async move {
        Delay::from(Duration::from_millis(timeout_ms)).await;
        controller.abort();
    });
    let mut context = claims.clone();
    context.insert("targetingKey".into(), subject.into());
    let body = json!({ "context": context }).to_string();
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_signal(Some(&signal));
    init.set_body(&body.into());
    let headers = web_sys::Headers::new().map_err(|e| fail(failed(&e)))?;
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set("accept", "application/json");
    if let Some(t) = &settings.bearer {
        let _ = headers.set("authorization", &format!("Bearer {t}"));
    }
    if let Some(k) = &settings.api_key {
        let _ = headers.set("x-api-key", k);
    }
    init.set_headers(&headers);
    let url = format!(
        "{}/ofrep/v1/evaluate/flags/{}",
        settings.url,
        String::from(js_sys::encode_uri_component(&settings.flag))
    );
    let timed_out = |e: &wasm_bindgen::JsValue| {
        if signal.aborted() {
            OfrepProblem::Timeout { timeout_ms }
        } else {
            failed(e)
        }
    };
    let pending = crate::js::fetch(&url.into(), &init).map_err(|e| fail(failed(&e)))?;
    let resp: web_sys::Response = JsFuture::from(pending)
        .await
        .map_err(|e| fail(timed_out(&e)))?
        .unchecked_into();
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .ok()
        .flatten()
        .and_then(|v| retry_after_ms(&v));
    let text = match resp.text() {
        Ok(p) => JsFuture::from(p)
            .await
            .map_err(|e| fail(timed_out(&e)))?
            .as_string()
            .unwrap_or_default(),
        Err(e) => return Err(fail(failed(&e))),
    };
    let answer: Option<Value> = serde_json::from_str(&text).ok();
    if status != 200 {
        let code = answer
            .as_ref()
            .and_then(|a| a.get("errorCode"))
            .and_then(Value::as_str)
            .map(|c| c.chars().take(40).collect());
        return Err((OfrepProblem::Status { status, code }, retry_after));
    }
    let Some(Value::Object(answer)) = answer else {
        return Err(fail(OfrepProblem::Garbage {
            why: "the body is not a JSON object",
        }));
    };
    match answer.get("value") {
        Some(Value::Bool(v)) => Ok((*v, answer.get("cacheable") != Some(&Value::Bool(false)))),
        Some(_) => Err(fail(OfrepProblem::Garbage {
            why: "the flag's value is not a boolean",
        })),
        None => Err(fail(OfrepProblem::Garbage { why: "no value" })),
    }
}

fn failed(e: &wasm_bindgen::JsValue) -> OfrepProblem {
    OfrepProblem::Failed {
        message: describe(e),
    }
}

/// `Retry-After` (RFC 9110 10.2.3): seconds, or an HTTP date; in milliseconds from now.
fn retry_after_ms(v: &str) -> Option<f64> {
    if let Ok(secs) = v.trim().parse::<u32>() {
        return Some(f64::from(secs) * 1000.0);
    }
    let at = js_sys::Date::parse(v.trim());
    (at.is_finite()).then(|| (at - js_sys::Date::now()).max(0.0))
}
