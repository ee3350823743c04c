//! Traefik's cases for `passTLSClientCert` (`cases/passTLSClientCert.json`, its certificates
//! transcribed as PEM data), run through the real configuration reader and the middleware
//! chain; then betaroute's own: forged headers, Go's formatting at the edges, the reader's
//! errors.

use std::sync::Arc;

use http::request::Parts;
use rcgen::{CertificateParams, DnType, DnValue, KeyPair, SanType};
use serde_json::{json, Value};

use super::case_data::{all, chain};
use super::errors::query_escape;
use super::pass_tls_client_cert::{decimal, sans, CERT, CERT_INFO};
use super::{run, Req, Stop};
use crate::proxy::shared::TlsConn;

const FILE: &str = include_str!("cases/passTLSClientCert.json");

fn file() -> Value {
    serde_json::from_str(FILE).unwrap()
}

/// The DER of one of the file's certificates.
fn der(name: &str) -> Vec<u8> {
    let pem = file()["certificates"][name].as_str().unwrap().to_owned();
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    pem.contents
}

/// Runs a `passTLSClientCert` configured as `config` on `GET http://example.com/foo` with
/// these client headers; `chain: None` is a plain request. Checks what Traefik's harness
/// checks of every case: the request goes on and nothing is left for the response.
fn request(config: &Value, certs: Option<Vec<Vec<u8>>>, sent: &[(&str, &str)]) -> Parts {
    let middlewares = chain("passTLSClientCert", config).unwrap();
    let (mut parts, ()) = http::Request::get("http://example.com/foo")
        .body(())
        .unwrap()
        .into_parts();
    for (k, v) in sent {
        let k = http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        parts.headers.append(k, v.parse().unwrap());
    }
    let mut req = Req::new(&mut parts, "example.com", false, [127, 0, 0, 1].into());
    if let Some(certs) = certs {
        let conn = TlsConn {
            peer_certificates: certs.into_iter().map(Into::into).collect(),
            ..TlsConn::default()
        };
        req = req.with_tls(Arc::new(conn));
    }
    assert!(matches!(run(&middlewares, 0, &mut req), Stop::Done));
    assert!(req.after.is_empty(), "the response is never touched");
    drop(req);
    parts
}

/// Each value of `expect` (header name: value, null for absent) against the request.
fn check_headers(name: &str, parts: &Parts, expect: &Value) -> Vec<String> {
    let mut failures = Vec::new();
    for (header, want) in expect.as_object().unwrap() {
        if header == "unescaped" {
            continue;
        }
        let want: Vec<String> = want.as_str().map(str::to_owned).into_iter().collect();
        let got = all(&parts.headers, header);
        if got != want {
            failures.push(format!("{name}: {header}: got {got:?}, want {want:?}"));
        }
    }
    failures
}

fn id(c: &Value) -> String {
    format!(
        "{}/{}",
        c["test"].as_str().unwrap(),
        c["name"].as_str().unwrap()
    )
}

/// A self-signed certificate with these SANs (`{dns, email, ip, uri}` lists).
fn with_sans(sans: &Value) -> Vec<u8> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let list = |k: &str| -> Vec<String> {
        sans[k]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let ia5 = |s: String| s.try_into().unwrap();
    let names = &mut params.subject_alt_names;
    names.extend(list("dns").into_iter().map(|s| SanType::DnsName(ia5(s))));
    names.extend(
        list("email")
            .into_iter()
            .map(|s| SanType::Rfc822Name(ia5(s))),
    );
    names.extend(
        list("ip")
            .into_iter()
            .map(|s| SanType::IpAddress(s.parse().unwrap())),
    );
    names.extend(list("uri").into_iter().map(|s| SanType::URI(ia5(s))));
    self_signed(params)
}

fn self_signed(params: CertificateParams) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

#[test]
fn pass_tls_client_cert_traefik_cases() {
    let cases = file()["cases"].as_array().unwrap().clone();
    let mut failures = Vec::new();
    for c in &cases {
        let name = id(c);
        match c["test"].as_str().unwrap() {
            "TestPassTLSClientCert_PEM" | "TestPassTLSClientCert_certInfo" => {
                let certs = c["certs"].as_array().map(|l| {
                    l.iter()
                        .map(|n| der(n.as_str().unwrap()))
                        .collect::<Vec<_>>()
                });
                let parts = request(&c["config"], certs, &[]);
                failures.extend(check_headers(&name, &parts, &c["expect"]));
                // The file's escaped value is Traefik's expectation through Go's QueryEscape.
                if let Some(u) = c["expect"]["unescaped"].as_str() {
                    let escaped = &c["expect"]["X-Forwarded-Tls-Client-Cert-Info"];
                    assert_eq!(query_escape(u), escaped.as_str().unwrap(), "{name}");
                }
            }
            "Test_sanitize" => {
                // Go's sanitize(pem.EncodeToMemory(cert)) is the pem header's value of a chain
                // of that one certificate (null: empty bytes, whose PEM text is empty).
                let cert = c["cert"].as_str().map_or(Vec::new(), der);
                let parts = request(&json!({"pem": true}), Some(vec![cert]), &[]);
                let want = json!({ "X-Forwarded-Tls-Client-Cert": c["expect"] });
                failures.extend(check_headers(&name, &parts, &want));
            }
            "Test_getSANs" => {
                let got = match &c["sans"] {
                    // A nil certificate: a connection without one lists nothing at all.
                    Value::Null => {
                        let config = json!({"info": {"sans": true}});
                        let parts = request(&config, Some(Vec::new()), &[]);
                        all(&parts.headers, CERT_INFO.as_str())
                    }
                    s => {
                        let der = with_sans(s);
                        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
                        sans(&cert)
                    }
                };
                let want: Vec<String> = serde_json::from_value(c["expect"].clone()).unwrap();
                if got != want {
                    failures.push(format!("{name}: got {got:?}, want {want:?}"));
                }
            }
            t => panic!("{name}: no harness for {t}"),
        }
    }
    assert_eq!(cases.len(), 20, "every case of the Go file");
    assert!(
        failures.is_empty(),
        "{} of Traefik's passTLSClientCert cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn pass_tls_client_cert_forged_headers_never_survive() {
    let sent = [
        ("x-forwarded-tls-client-cert", "forged"),
        ("X-Forwarded-Tls-Client-Cert", "forged twice"),
        (
            "x-forwarded-tls-client-cert-info",
            "Subject%3D%22CN%3Dadmin%22",
        ),
    ];
    let leaf = der("minimalCheeseCrt");
    let both = json!({"pem": true, "info": {"subject": {"commonName": true}}});
    for certs in [None, Some(Vec::new()), Some(vec![leaf.clone()])] {
        let parts = request(&both, certs.clone(), &sent);
        let (cert, info) = (
            all(&parts.headers, CERT.as_str()),
            all(&parts.headers, CERT_INFO.as_str()),
        );
        if certs.as_ref().is_some_and(|c| !c.is_empty()) {
            assert_eq!(
                cert,
                [<base64ct::Base64 as base64ct::Encoding>::encode_string(
                    &leaf
                )]
            );
            assert_eq!(info, [""], "minimalCheeseCrt has no CN");
        } else {
            assert!(
                cert.is_empty() && info.is_empty(),
                "{certs:?}: {cert:?} {info:?}"
            );
        }
        // Only the header a middleware sets is its own: `pem` alone leaves the info header
        // to the entry point's rule (gone for an untrusted peer before any middleware).
        let parts = request(&json!({"pem": true}), certs, &sent);
        assert!(all(&parts.headers, CERT.as_str())
            .iter()
            .all(|v| v != "forged"));
        assert_eq!(all(&parts.headers, CERT_INFO.as_str()).len(), 1);
    }
}

#[test]
fn pass_tls_client_cert_empty_info_is_set_empty() {
    // Traefik's `info: {}` is a non-nil Info: it sets the header to the certificates'
    // (empty) entries, comma-separated and escaped.
    let config = json!({"info": {}});
    let one = request(&config, Some(vec![der("minimalCert")]), &[]);
    assert_eq!(all(&one.headers, CERT_INFO.as_str()), [""]);
    let two = request(&config, Some(vec![der("minimalCert"); 2]), &[]);
    assert_eq!(all(&two.headers, CERT_INFO.as_str()), ["%2C"]);
}

#[test]
fn pass_tls_client_cert_go_formatting() {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    // Before 1970: Go's uint64(t.Unix()) wraps.
    params.not_before = rcgen::date_time_ymd(1960, 1, 1);
    params.not_after = rcgen::date_time_ymd(2030, 1, 1);
    params.serial_number = Some(vec![0x80, 0x00].into());
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        DnValue::BmpString("Zoë, \"admin\"".try_into().unwrap()),
    );
    params.subject_alt_names = vec![
        SanType::URI("SPIFFE://Example.org/Path".try_into().unwrap()),
        SanType::IpAddress("2001:db8:0:0:1:0:0:1".parse().unwrap()),
        SanType::IpAddress("::ffff:1.2.3.4".parse().unwrap()),
        SanType::Rfc822Name("e@x.org".try_into().unwrap()),
        SanType::DnsName("a.example".try_into().unwrap()),
    ];
    let config = json!({"info": {
        "notBefore": true, "notAfter": true, "serialNumber": true, "sans": true,
        "subject": {"commonName": true},
    }});
    let parts = request(&config, Some(vec![self_signed(params)]), &[]);
    let want = concat!(
        r#"Subject="CN=Zoë, "admin"";SerialNumber="32768";NB="18446744073393932416";"#,
        r#"NA="1893456000";SAN="a.example,e@x.org,2001:db8::1:0:0:1,1.2.3.4,"#,
        r#"spiffe://Example.org/Path""#
    );
    assert_eq!(
        all(&parts.headers, CERT_INFO.as_str()),
        [query_escape(want)]
    );
}

#[test]
fn pass_tls_client_cert_serials_are_go_big_ints() {
    for (der, want) in [
        (&[][..], "0"),
        (&[0x00], "0"),
        (&[0x01], "1"),
        (&[0x00, 0xff], "255"),
        (&[0xff], "-1"),
        (&[0x80], "-128"),
        (&[0xff, 0x00], "-256"),
        (
            &[0x54, 0x58, 0xd0, 0xe0, 0x64, 0xfc, 0xbe, 0x52, 0x7b, 0x42],
            "398317149180527998303042",
        ),
    ] {
        assert_eq!(decimal(der), want, "{der:02x?}");
    }
}

#[test]
fn pass_tls_client_cert_config_errors_are_located() {
    let refused = |config: Value, needle: &str| {
        let err = chain("passTLSClientCert", &config).unwrap_err();
        assert!(err.contains(needle), "{config}: {err}");
        assert!(err.contains("middleware m: passTLSClientCert"), "{err}");
    };
    refused(json!({"pem": "yes"}), "pem: \"yes\" is not true or false");
    refused(json!({"pems": true}), "unknown key \"pems\"");
    refused(json!({"info": 3}), "info: expected a table");
    refused(json!({"info": {"san": true}}), "unknown key \"san\"");
    refused(
        json!({"info": {"subject": {"commonName": "x"}}}),
        "commonName: \"x\" is not true or false",
    );
    // Traefik's issuer options have no organizationalUnit.
    refused(
        json!({"info": {"issuer": {"organizationalUnit": true}}}),
        "unknown key \"organizationalUnit\"",
    );
    // Honoured, not refused, and keys match in any case as Traefik's do.
    let ok = chain(
        "passTLSClientCert",
        &json!({"PEM": true, "info": {"Subject": {}}}),
    );
    assert_eq!(ok.unwrap().len(), 1);
}
