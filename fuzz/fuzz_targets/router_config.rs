//! Router configuration: any dynamic configuration text, as YAML and as TOML, through the router's
//! own loader and validator, gives a configuration or located errors, never a panic.
#![no_main]

use betaroute_router::config::load::parse_dynamic_str;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for yaml in [true, false] {
        if let Err(errors) = parse_dynamic_str("fuzz", text, yaml) {
            for e in &errors.0 {
                let _ = e.to_string();
            }
        }
    }
});
