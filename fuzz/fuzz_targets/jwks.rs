//! Key sets: any document parses to a key set or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(set) = betaroute_core::KeySet::from_json(text) {
        for k in &set.keys {
            let _ = k.material.to_jwk_members();
        }
    }
    let _ = betaroute_core::signature::RoutingKey::from_jwks(text);
});
