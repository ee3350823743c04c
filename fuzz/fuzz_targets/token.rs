//! Tokens: any string through the whole verification path (size limit, parsing, key selection,
//! the shape checks of RSA and ECDSA signatures and the native checks, claims) gives a verdict
//! that serializes, never a panic.
#![no_main]

use betaroute_core::verdict::Verdict;
use betaroute_core::{BetaPolicy, KeySet, Verifier, VerifyPolicy};
use libfuzzer_sys::fuzz_target;

/// An HMAC key, an RSA key and a P-256 key (public halves), by kid k1, r1 and e1.
const KEYS: &str = r#"{"keys":[{"kty":"oct","kid":"k1","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"},{"kty": "RSA", "n": "0NEkSBn75_lpgA8SrXXWMSibqJ1oXjwv0aY15ZYjP14BOaMMWbrcHecKShxwwoA8NFPqpxHtzkROF80Kn-O9HxgGlhpyNCfOOf5BOji5nd2AbUXEhBOP5shGF7JYsrdPHSAFOE5HhVqJ01ThehcfpCOSKwogCIjaxomfoN6iMBf2lBkDMpticfqPpIGTa0sY_69nLmgkTlPLt4E_qVNmjXAEImZs3qYIDg46ybXnSmJoVF9XAPdIXVN7hgcKWZfWFxJRY8toDGxtipHSu0K3oaAlLnVRoj6Mzl9hlot4iO47aaY-U54srwqeNg4VPLrtMyuOCk7OG0AIQRgtvWoerQ", "e": "AQAB", "kid": "r1", "alg": "RS256", "use": "sig"},{"kty": "EC", "crv": "P-256", "x": "9wUeR8uYmgT0N1vPjym01DUpDS0S5SvPSQkRvUuJcwc", "y": "4JTNMyd8_HYsYTCQ_BgC9v9Qxp1eHYSxd7wvGbVlXQM", "kid": "e1", "alg": "ES256", "use": "sig"}]}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let v = Verifier::new(KeySet::from_json(KEYS).unwrap(), VerifyPolicy::default());
    let outcome = v.verify_native(token, 1_700_000_000.0);
    let verdict = Verdict::of(outcome.as_ref(), &BetaPolicy::default());
    let _ = serde_json::to_string(&verdict).unwrap();
    let _ = betaroute_core::source::find(Some(token), Some(token), Some("session"));
});
