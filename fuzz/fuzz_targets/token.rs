//! Tokens: any string through the whole verification path (size limit, parsing, key selection,
//! HMAC check, claims) gives a verdict, never a panic.
#![no_main]

use betaroute_core::{BetaPolicy, KeySet, Verifier, VerifyPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let keys = KeySet::from_json(r#"{"keys":[{"kty":"oct","kid":"k1","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}]}"#).unwrap();
    let v = Verifier::new(keys, VerifyPolicy::default());
    let outcome = v.verify_native(token, 1_700_000_000.0);
    let _ = betaroute_core::verify::decide(outcome.as_ref(), &BetaPolicy::default());
    let _ = betaroute_core::source::find(Some(token), Some(token), Some("session"));
});
