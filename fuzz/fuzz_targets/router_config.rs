//! Router configuration: any dynamic configuration text, as YAML and as TOML, through the router's
//! own loader and validator, gives a configuration or located errors, never a panic.
#![no_main]

use betaroute_router::config::{parse_dynamic_str, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for format in [Format::Yaml, Format::Toml] {
        if let Err(errors) = parse_dynamic_str("fuzz", text, format) {
            for e in &errors.0 {
                let _ = e.to_string();
            }
        }
    }
});
