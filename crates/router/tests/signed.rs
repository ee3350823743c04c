//! Signed routing decisions at the router: routing headers count only under a valid, fresh
//! signature from the edge. Real binary, real backends.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64ct::{Base64UrlUnpadded, Encoding};
use betaroute_core::signature::{sign, Request, RoutingKey};
use common::*;

const API: &str = "api.example.com";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn keys() -> (RoutingKey, RoutingKey, String) {
    let (a, b) = ([1u8; 32], [2u8; 32]);
    let jwks = format!(
        r#"{{"keys":[{{"kty":"oct","kid":"r1","k":"{}"}},{{"kty":"oct","kid":"r2","k":"{}"}}]}}"#,
        Base64UrlUnpadded::encode_string(&a),
        Base64UrlUnpadded::encode_string(&b)
    );
    (
        RoutingKey::new("r1", a.to_vec()).unwrap(),
        RoutingKey::new("r2", b.to_vec()).unwrap(),
        jwks,
    )
}

fn router(trust: &str, main: &Backend, beta: &Backend) -> Router {
    let (_, _, jwks) = keys();
    let dir = temp_dir();
    std::fs::write(dir.join("routing-keys.json"), jwks).unwrap();
    let static_toml = STATIC.replace(
        "[admin]",
        &format!(
            "[entryPoints.web.routingHeaders]\nkeysFile = \"{}\"\n{trust}\nmaxAge = \"30s\"\nclockSkew = \"5s\"\n[admin]",
            dir.join("routing-keys.json").display()
        ),
    );
    Router::start_with(&static_toml, &beta_main_config(&main.url(), &beta.url()))
}

/// Headers of a request the edge would send for a beta user, signed with `key` at `t` for `path`.
fn signed(key: &RoutingKey, t: u64, path: &str) -> Vec<(&'static str, String)> {
    let sig = sign(
        key,
        t,
        &Request {
            method: "GET",
            host: API,
            path,
        },
        &[("x-rikstv-beta", Some("true"))],
    );
    vec![
        ("X-RiksTV-Beta", "true".to_owned()),
        ("X-BetaRoute-Signature", sig),
    ]
}

async fn landing(
    r: &Router,
    path: &str,
    headers: &[(&'static str, String)],
) -> (String, serde_json::Value) {
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = get(r.web, API, path, &h).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    (
        v["server"].as_str().unwrap().to_owned(),
        v["headers"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn only_signed_routing_headers_count() {
    let (main, beta) = (Backend::start("main").await, Backend::start("beta").await);
    let r = router("", &main, &beta);
    let (k1, k2, _) = keys();

    // Forged straight to the router, in several spellings: main, and the headers never reach a backend.
    for name in ["X-RiksTV-Beta", "x-rikstv-beta", "X_RiksTV_Beta"] {
        let (server, headers) = landing(&r, "/", &[(name, "true".to_owned())]).await;
        assert_eq!(server, "main", "{name}");
        assert!(
            headers.get("x-rikstv-beta").is_none() && headers.get("x_rikstv_beta").is_none(),
            "{headers}"
        );
    }

    // What the edge sends: beta; the signature header is consumed, not forwarded.
    let (server, headers) = landing(&r, "/v1/items", &signed(&k1, now(), "/v1/items")).await;
    assert_eq!(server, "beta");
    assert_eq!(headers["x-rikstv-beta"], "true");
    assert!(headers.get("x-betaroute-signature").is_none());

    // Key rotation: a signature by the second key is as good.
    assert_eq!(
        landing(&r, "/v1/items", &signed(&k2, now(), "/v1/items"))
            .await
            .0,
        "beta"
    );

    // Replayed on another path, expired, from an unknown key, or tampered: main.
    assert_eq!(
        landing(&r, "/admin", &signed(&k1, now(), "/v1/items"))
            .await
            .0,
        "main"
    );
    assert_eq!(
        landing(&r, "/v1/items", &signed(&k1, now() - 120, "/v1/items"))
            .await
            .0,
        "main"
    );
    let stranger = RoutingKey::new("r9", vec![9; 32]).unwrap();
    assert_eq!(
        landing(&r, "/v1/items", &signed(&stranger, now(), "/v1/items"))
            .await
            .0,
        "main"
    );
    let mut tampered = signed(&k1, now(), "/v1/items");
    tampered[1].1 = tampered[1].1.replace("mac=", "mac=AAAA");
    assert_eq!(landing(&r, "/v1/items", &tampered).await.0, "main");
    // A signature that vouches for the header's absence does not cover a header added later.
    let absent = sign(
        &k1,
        now(),
        &Request {
            method: "GET",
            host: API,
            path: "/x",
        },
        &[("x-rikstv-beta", None)],
    );
    assert_eq!(
        landing(
            &r,
            "/x",
            &[
                ("X-RiksTV-Beta", "true".to_owned()),
                ("X-BetaRoute-Signature", absent)
            ]
        )
        .await
        .0,
        "main"
    );

    let m = r.admin_get("/metrics").await;
    for reason in ["missing", "bad_mac", "expired", "unknown_kid"] {
        assert!(
            m.contains(&format!(
                "betaroute_signature_rejected_total{{entrypoint=\"web\",reason=\"{reason}\"}}"
            )),
            "{reason}: {m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn strip_mode_ignores_even_valid_signatures_and_any_mode_trusts() {
    let (main, beta) = (Backend::start("main").await, Backend::start("beta").await);
    let (k1, _, _) = keys();
    let r = router("trust = \"strip\"", &main, &beta);
    assert_eq!(landing(&r, "/a", &signed(&k1, now(), "/a")).await.0, "main");
    drop(r);
    let r = router("trust = \"any\"", &main, &beta);
    assert_eq!(
        landing(&r, "/a", &[("X-RiksTV-Beta", "true".to_owned())])
            .await
            .0,
        "beta"
    );
}
