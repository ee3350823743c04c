//! The configuration for a request's `env` object: its variables read and parsed only when the
//! object or its values change, numbered by a generation that keys the WebCrypto key cache.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Reflect;
use serde_json::json;
use wasm_bindgen::JsValue;
use worker::{console_error, Env};

use crate::config::{EdgeConfig, Vars, VAR_NAMES};
use crate::webcrypto;

/// The configuration in use, with the raw values it was parsed from and a generation number
/// that keys the WebCrypto key cache.
struct Loaded {
    /// The `env` object the values were read from. workerd passes the same object to every
    /// request of an isolate, so while it is the same, nothing needs reading again.
    env: JsValue,
    vars: Vars,
    generation: u64,
    config: Rc<EdgeConfig>,
}

thread_local! {
    static LOADED: RefCell<Option<Loaded>> = const { RefCell::new(None) };
}

/// The configuration for this request and its generation: parsed again only when a value
/// changed.
pub fn config(env: &Env) -> (Rc<EdgeConfig>, u64) {
    let env_value: &JsValue = env.as_ref();
    let same_env = LOADED.with(|cell| {
        cell.borrow()
            .as_ref()
            .filter(|l| js_sys::Object::is(&l.env, env_value))
            .map(|l| (l.config.clone(), l.generation))
    });
    if let Some(hit) = same_env {
        return hit;
    }
    let vars = Vars {
        values: VAR_NAMES.iter().map(|n| read_var(env, n)).collect(),
    };
    LOADED.with(|cell| {
        let mut loaded = cell.borrow_mut();
        if let Some(l) = loaded.as_mut().filter(|l| l.vars == vars) {
            // Another env object with the same values: keep the parsed configuration.
            l.env = env_value.clone();
            return (l.config.clone(), l.generation);
        }
        let generation = loaded.as_ref().map_or(1, |l| l.generation + 1);
        let config = parse(&vars, generation);
        *loaded = Some(Loaded {
            env: env_value.clone(),
            vars,
            generation,
            config: config.clone(),
        });
        (config, generation)
    })
}

/// Parses new values, logs their problems and drops the keys imported under older ones.
fn parse(vars: &Vars, generation: u64) -> Rc<EdgeConfig> {
    let config = Rc::new(EdgeConfig::parse(vars));
    for problem in &config.problems {
        console_error!(
            "{}",
            json!({"betaroute": "config", "level": "error", "problem": problem})
        );
    }
    webcrypto::forget_keys_before(webcrypto::key_generation(generation, 0));
    config
}

/// Reads a variable or secret as a string. A `[vars]` entry written as a TOML table reaches the
/// worker as an object: it is turned back into JSON so `JWT_KEYS` may be written either way.
fn read_var(env: &Env, name: &str) -> Option<String> {
    let v = Reflect::get(env, &JsValue::from_str(name)).ok()?;
    if let Some(s) = v.as_string() {
        return Some(s);
    }
    if v.is_object() {
        return js_sys::JSON::stringify(&v).ok().map(String::from);
    }
    None
}
