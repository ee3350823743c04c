//! Rules: parsing and compiling never panics; a compiled rule evaluates against a request built
//! from the same input without panicking; error spans always lie within the rule.
#![no_main]

use betaroute_core::rules::{Prepared, Rule, SimpleRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Rule::compile(text) {
        Ok(rule) => {
            // Split on a character boundary: the middle byte may fall inside a multi-byte
            // character, and the hosts and paths to fuzz are exactly the non-ASCII ones.
            let mid = (0..=text.len() / 2).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            let (path, host) = text.split_at(mid);
            let req = SimpleRequest {
                method: "GET".into(),
                authority: host.into(),
                path: format!("/{path}"),
                query: Some(text.into()),
                headers: vec![("x-rikstv-beta".into(), data.to_vec())],
                client_ip: None,
            };
            let _ = rule.matches(&Prepared::new(&req));
        }
        Err(e) => {
            assert!(e.span.start <= e.span.end && e.span.end <= text.len(), "span {:?} outside {}", e.span, text.len());
            let _ = e.caret(text);
        }
    }
});
