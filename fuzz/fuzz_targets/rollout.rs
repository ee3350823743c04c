//! Rollout policies and their patterns. The first line is a rule pattern: checking it never
//! panics, and a pattern core accepts is one the router's engine (regex-lite, on the normalized
//! spelling) accepts too, so a policy valid at the edge is valid at the router. The rest is a
//! policy document: parsing never panics, an error's position lies within the text, a valid
//! policy survives its canonical form unchanged, and deciding for claims made from the input
//! never panics.
#![no_main]

use betaroute_core::rollout::pattern::Pattern;
use betaroute_core::{BetaPolicy, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(p) = Pattern::parse(first) {
        let re = regex_lite::Regex::new(&p.rust)
            .unwrap_or_else(|e| panic!("core accepts {first:?} but regex-lite refuses {:?}: {e}", p.rust));
        let _ = re.is_match(rest);
    }
    match Policy::parse(rest) {
        Ok(policy) => {
            let canonical = policy.to_json();
            let again = Policy::parse(&canonical.to_string())
                .unwrap_or_else(|e| panic!("canonical form {canonical} does not parse: {e}"));
            assert_eq!(again.to_json(), canonical);
            let claims = match serde_json::from_str::<serde_json::Value>(first) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => serde_json::json!({ "sub": first, "email": rest }).as_object().unwrap().clone(),
            };
            let d = policy.decide(&claims, &BetaPolicy::default());
            let _ = serde_json::to_string(&d);
        }
        Err(e) => {
            let lines = rest.split('\n').count().max(1);
            assert!(e.line <= lines, "line {} of {lines}: {e}", e.line);
        }
    }
});
