//! Router configuration: any text, as YAML and as TOML, through the router's own readers of
//! dynamic and static configuration, gives a configuration or located errors, never a panic.
#![no_main]

use betaroute_router::config::static_config::parse_static_str;
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
        if let Err(errors) = parse_static_str("fuzz", text, format) {
            for e in &errors.0 {
                let _ = e.to_string();
            }
        }
    }
});
