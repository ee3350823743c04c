//! gRPC through the real router binary: real grpcio servers behind `h2c://` URLs and a real
//! grpcio client (`tests/grpc_peer.py`, PyPI's grpcio, installed by `scripts/install.sh`),
//! over HTTP/2 both sides. Unary, server streaming, client streaming (2 MiB) and a
//! bidirectional stream held open 90 s; status codes, details and trailing metadata intact;
//! the beta header routes to the beta backend.

mod common;

use std::process::Command;

use common::*;

fn config(main: &GrpcServer, beta: &GrpcServer) -> String {
    format!(
        r#"
http:
  routers:
    grpc-main: {{rule: "Host(`grpc.example.com`)", service: main}}
    grpc-beta: {{rule: "Host(`grpc.example.com`) && Header(`X-RiksTV-Beta`, `true`)", service: beta}}
  services:
    main: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
    beta: {{loadBalancer: {{servers: [{{url: "{}"}}]}}}}
"#,
        main.url(),
        beta.url()
    )
}

async fn client(r: &Router, scenario: &str, hold: &str) -> serde_json::Value {
    let target = r.web.to_string();
    let (scenario, hold) = (scenario.to_owned(), hold.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([
                GRPC_PEER,
                "client",
                &target,
                "grpc.example.com",
                &scenario,
                &hold,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client: {stdout}{}\nrouter: {}",
        String::from_utf8_lossy(&out.stderr),
        r.stderr()
    );
    serde_json::from_str(&stdout).unwrap()
}

#[tokio::test]
async fn unary_and_streaming_calls_with_their_status_and_trailers() {
    let (main, beta) = (GrpcServer::start("main"), GrpcServer::start("beta"));
    let st = patient_static();
    let r = Router::start_with(&st, &config(&main, &beta));
    let out = client(&r, "all", "0").await;
    assert_eq!(out["main"]["reply"], "main:hi:beta=");
    assert_eq!(out["main"]["code"], "OK");
    assert_eq!(out["main"]["trailing"]["x-served-by"], "main", "{out}");
    assert_eq!(
        out["beta"]["reply"], "beta:hi:beta=true",
        "the beta header routes to beta"
    );
    assert_eq!(out["deny"]["code"], "PERMISSION_DENIED", "{out}");
    assert_eq!(out["deny"]["details"], "not you");
    assert_eq!(out["deny"]["trailing"]["x-why"], "denied-by-main");
    assert_eq!(
        out["server_stream"],
        serde_json::json!(["main:0", "main:1", "main:2", "main:3", "main:4"])
    );
    assert_eq!(
        out["client_stream"],
        serde_json::json!({"server": "main", "messages": 32, "bytes": 2097152})
    );
    let m = r.admin_get("/metrics").await;
    assert!(
        m.contains(
            "router=\"grpc-beta@file\",service=\"beta@file\",cohort=\"beta\",code=\"2xx\"} 1"
        ),
        "{m}"
    );
}

/// Traefik cuts a quiet bidirectional stream at 60 s by default (traefik/traefik#10652);
/// betaroute has no idle or stream cut-off on a request whose response has started.
#[tokio::test]
async fn a_bidirectional_stream_stays_open_for_90_seconds() {
    let (main, beta) = (GrpcServer::start("main"), GrpcServer::start("beta"));
    let st = patient_static();
    let r = Router::start_with(&st, &config(&main, &beta));
    let out = client(&r, "hold", "90").await;
    assert_eq!(
        out["bidi"],
        serde_json::json!(["main:first", "main:last"]),
        "{out}"
    );
    assert!(out["held_seconds"].as_f64().unwrap() >= 90.0, "{out}");
}
