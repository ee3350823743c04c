//! The rollout policy in force for a request: the value of key `policy` in the KV namespace
//! bound as `BETAROUTE_POLICY` when there is one, else `ROLLOUT_POLICY`, else none (the token's
//! claim alone decides).
//!
//! A KV value is used for `POLICY_CACHE_SECONDS` (default 5) before KV is read again, on top of
//! KV's own edge caching (about 60 s). While a read is under way, concurrent requests await the
//! same read. A read that fails, or a value that is not a valid policy, keeps the last good
//! policy and is logged; a deleted key falls back to `ROLLOUT_POLICY`.

use std::cell::RefCell;
use std::rc::Rc;

use betaroute_core::rollout::pattern::Pattern;
use betaroute_core::rollout::rule::Op;
use betaroute_core::{HeaderPolicy, Policy};
use js_sys::Reflect;
use serde_json::json;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{console_error, console_log, Env};

use crate::config::{EdgeConfig, KV_SOURCE, POLICY_BINDING, POLICY_KEY};
use crate::error::{EdgeError, PolicyProblem};
use crate::js;

/// A policy in force, with what the request path needs from it made once.
pub struct Active {
    pub policy: Rc<Policy>,
    /// `kv` or `inline`.
    pub source: &'static str,
    /// Its mapped header names, which are stripped from clients and signed.
    pub names: Vec<String>,
    /// Every lowercase spelling of those names (`_` for `-`), as JavaScript strings; `None` when
    /// too many to delete one by one (the request's headers are scanned instead).
    pub strip: Option<Vec<JsValue>>,
    pub strip_policy: HeaderPolicy,
    /// The `RegExp` of each rule with a `regex` (by rule index): core's normalized ECMAScript
    /// spelling of the RE2 pattern (`rollout::pattern`).
    regexes: Vec<Option<js_sys::RegExp>>,
}

impl Active {
    fn new(policy: Rc<Policy>, source: &'static str) -> Result<Rc<Active>, EdgeError> {
        let names: Vec<String> = policy.header_names().map(str::to_owned).collect();
        let strip_policy = HeaderPolicy::new(&names);
        let strip = strip_policy
            .spellings(64)
            .map(|s| s.iter().map(|n| JsValue::from_str(n)).collect());
        let mut regexes = Vec::with_capacity(policy.rules.len());
        for r in &policy.rules {
            regexes.push(match &r.op {
                Op::Regex(re) => {
                    Some(
                        regexp(&re.pattern).map_err(|message| PolicyProblem::Invalid {
                            source,
                            message: format!("rule {:?}: {message}", r.name),
                        })?,
                    )
                }
                _ => None,
            });
        }
        Ok(Rc::new(Active {
            policy,
            source,
            names,
            strip,
            strip_policy,
            regexes,
        }))
    }

    /// Whether rule `index`'s pattern matches `text`.
    pub fn regex_matches(&self, index: usize, text: &str) -> bool {
        self.regexes
            .get(index)
            .and_then(Option::as_ref)
            .is_some_and(|re| re.test(text))
    }
}

/// `new RegExp(js, flags)`, or what the runtime said when it refused the pattern.
fn regexp(p: &Pattern) -> Result<js_sys::RegExp, String> {
    let ctor: js_sys::Function = Reflect::get(&js_sys::global(), &"RegExp".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or("no RegExp")?;
    let args = js_sys::Array::of2(&JsValue::from_str(&p.js), &JsValue::from_str(p.js_flags));
    Reflect::construct(&ctor, &args)
        .map(JsCast::unchecked_into)
        .map_err(|e| {
            format!(
                "pattern {:?} is refused by the runtime: {}",
                p.source,
                js::describe(&e)
            )
        })
}

/// The KV side of the state.
enum KvValue {
    /// Never read (or the configuration changed since).
    Unread,
    /// Read: the key is absent, or no value was ever good.
    Absent,
    Good(Rc<Active>),
}

struct Held {
    /// The configuration generation this state belongs to.
    generation: u64,
    inline: Option<Rc<Active>>,
    kv: KvValue,
    /// The KV text last parsed, so an unchanged value is not parsed (or logged) again.
    kv_text: Option<String>,
    read_at: f64,
    /// The read under way, shared by every request that finds the value stale.
    pending: Option<js_sys::Promise>,
}

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
    static BINDING: JsValue = JsValue::from_str(POLICY_BINDING);
}

/// What the request path can know without awaiting.
pub enum Lookup {
    /// The policy in force (none: the claim alone decides).
    Ready(Option<Rc<Active>>),
    /// KV must be read first: [`refresh`].
    Stale,
}

/// The policy in force, if nothing needs reading.
pub fn current(env: &Env, cfg: &EdgeConfig, generation: u64) -> Lookup {
    let has_kv = kv(env).is_some();
    HELD.with(|cell| {
        let mut cell = cell.borrow_mut();
        let held = held_for(&mut cell, cfg, generation);
        if !has_kv {
            return Lookup::Ready(held.inline.clone());
        }
        if matches!(held.kv, KvValue::Unread)
            || js_sys::Date::now() - held.read_at >= cfg.policy_cache_ms
        {
            return Lookup::Stale;
        }
        Lookup::Ready(effective(held))
    })
}

/// Reads KV (or awaits the read under way), then answers the policy in force.
pub async fn refresh(env: &Env, cfg: &EdgeConfig, generation: u64) -> Option<Rc<Active>> {
    let Some(store) = kv(env) else {
        return HELD.with(|c| {
            held_for(&mut c.borrow_mut(), cfg, generation)
                .inline
                .clone()
        });
    };
    let promise = HELD.with(|cell| {
        let mut cell = cell.borrow_mut();
        let held = held_for(&mut cell, cfg, generation);
        if let Some(p) = &held.pending {
            return Ok(p.clone());
        }
        let p = start_read(&store)?;
        held.pending = Some(p.clone());
        Ok::<_, String>(p)
    });
    let outcome = match promise {
        Ok(p) => {
            let result = JsFuture::from(p.clone()).await;
            Some((p, result))
        }
        Err(message) => {
            log_problem(&PolicyProblem::KvFailed { message }.into());
            None
        }
    };
    HELD.with(|cell| {
        let mut cell = cell.borrow_mut();
        let held = held_for(&mut cell, cfg, generation);
        match outcome {
            // The first request to see the read settle records it; the others find it done.
            Some((p, result))
                if held
                    .pending
                    .as_ref()
                    .is_some_and(|h| js_sys::Object::is(h, &p)) =>
            {
                held.pending = None;
                held.read_at = js_sys::Date::now();
                record(held, cfg, result);
            }
            Some(_) => {}
            None => held.read_at = js_sys::Date::now(),
        }
        effective(held)
    })
}

/// The policy in force: the KV value when one is good, else the inline one.
fn effective(held: &Held) -> Option<Rc<Active>> {
    match &held.kv {
        KvValue::Good(a) => Some(a.clone()),
        _ => held.inline.clone(),
    }
}

/// The state for this configuration, started afresh when the configuration changed.
fn held_for<'a>(cell: &'a mut Option<Held>, cfg: &EdgeConfig, generation: u64) -> &'a mut Held {
    if cell.as_ref().is_none_or(|h| h.generation != generation) {
        *cell = Some(Held {
            generation,
            inline: cfg.inline_policy.as_ref().and_then(|p| {
                Active::new(p.clone(), "inline")
                    .map_err(|e| log_problem(&e))
                    .ok()
            }),
            kv: KvValue::Unread,
            kv_text: None,
            read_at: 0.0,
            pending: None,
        });
    }
    cell.as_mut().expect("just set")
}

/// Records a settled KV read: a new good policy, an absent key, or a problem (logged; the last
/// good policy stays).
fn record(held: &mut Held, cfg: &EdgeConfig, result: Result<JsValue, JsValue>) {
    let value = match result {
        Ok(v) => v,
        Err(e) => {
            let message = js::describe(&e);
            log_problem(&PolicyProblem::KvFailed { message }.into());
            if matches!(held.kv, KvValue::Unread) {
                held.kv = KvValue::Absent;
            }
            return;
        }
    };
    let Some(text) = value.as_string() else {
        if !matches!(held.kv, KvValue::Absent) || held.kv_text.is_some() {
            console_log!(
                "{}",
                json!({"betaroute": "policy", "level": "info", "source": "kv", "policy": null, "note": "no policy in KV: ROLLOUT_POLICY (or the token's claim alone) decides"})
            );
        }
        held.kv = KvValue::Absent;
        held.kv_text = None;
        return;
    };
    if held.kv_text.as_deref() == Some(text.as_str()) && !matches!(held.kv, KvValue::Unread) {
        return;
    }
    match cfg
        .policy_from(KV_SOURCE, &text)
        .and_then(|p| Active::new(Rc::new(p), "kv"))
    {
        Ok(a) => {
            console_log!(
                "{}",
                json!({"betaroute": "policy", "level": "info", "source": "kv", "policy": summary(&a.policy)})
            );
            held.kv = KvValue::Good(a);
        }
        Err(e) => {
            log_problem(&e);
            if matches!(held.kv, KvValue::Unread) {
                held.kv = KvValue::Absent;
            }
        }
    }
    held.kv_text = Some(text);
}

/// What a log line says of a policy: its switches and sizes, never its subjects.
pub fn summary(p: &Policy) -> serde_json::Value {
    json!({
        "beta": if p.beta_on { "on" } else { "off" },
        "percent": p.percent,
        "holdback": p.holdback,
        "allow": p.allow.len(),
        "deny": p.deny.len(),
        "rules": p.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "headers": p.header_names().collect::<Vec<_>>(),
        "subject": p.subject.as_str(),
    })
}

fn log_problem(e: &EdgeError) {
    console_error!(
        "{}",
        json!({"betaroute": "policy", "level": "error", "problem": e.to_string()})
    );
}

/// The KV namespace binding, if the worker has one.
fn kv(env: &Env) -> Option<JsValue> {
    let v = BINDING.with(|name| Reflect::get(env, name).ok())?;
    (v.is_object()).then_some(v)
}

/// Starts `namespace.get("policy")`: a promise of the text, or null when the key is absent.
fn start_read(store: &JsValue) -> Result<js_sys::Promise, String> {
    let get: js_sys::Function = Reflect::get(store, &"get".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or("the BETAROUTE_POLICY binding has no get(): is it a KV namespace?")?;
    get.call1(store, &JsValue::from_str(POLICY_KEY))
        .map_err(|e| js::describe(&e))?
        .dyn_into()
        .map_err(|_| "get() did not return a promise".to_owned())
}
