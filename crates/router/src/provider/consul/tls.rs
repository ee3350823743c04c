//! TLS to Consul (Traefik's `endpoint.tls`: `ca`, `cert`, `key`, `insecureSkipVerify`), with
//! rustls. Unset fields come from Consul's environment variables as with its Go client
//! (`CONSUL_CACERT`, `CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY`, `CONSUL_HTTP_SSL_VERIFY=false`).
//! Without a CA, the system's roots are trusted.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::client::{ConsulError, Env};
use crate::config::static_config::consul::ClientTls;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(what: &str, path: &std::path::Path, e: impl std::fmt::Display) -> ConsulError {
    ConsulError::Config(format!("tls {what} {}: {e}", path.display()))
}

/// The client configuration for `https://` endpoints (plain `http://` ones ignore it).
pub fn client_config(tls: Option<&ClientTls>, env: Env) -> Result<ClientConfig, ConsulError> {
    let given = tls.cloned().unwrap_or_default();
    let pick = |p: Option<PathBuf>, var: &str| p.or_else(|| env(var).map(PathBuf::from));
    let ca = pick(given.ca, "CONSUL_CACERT");
    let cert = pick(given.cert, "CONSUL_CLIENT_CERT");
    let key = pick(given.key, "CONSUL_CLIENT_KEY");
    let insecure = given.insecure_skip_verify
        || env("CONSUL_HTTP_SSL_VERIFY").is_some_and(|v| v == "false" || v == "0");
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConsulError::Config(format!("tls: {e}")))?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
    } else {
        let mut roots = RootCertStore::empty();
        match &ca {
            Some(path) => {
                for c in
                    CertificateDer::pem_file_iter(path).map_err(|e| config_error("ca", path, e))?
                {
                    let c = c.map_err(|e| config_error("ca", path, e))?;
                    roots.add(c).map_err(|e| config_error("ca", path, e))?;
                }
                if roots.is_empty() {
                    return Err(config_error("ca", path, "no certificate in it"));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for c in found.certs {
                    let _ = roots.add(c);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    Ok(match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
                .map_err(|e| config_error("cert", &cert, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| config_error("cert", &cert, e))?;
            let key_der =
                PrivateKeyDer::from_pem_file(&key).map_err(|e| config_error("key", &key, e))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| config_error("cert", &cert, e))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(ConsulError::Config("tls: cert and key go together".into())),
    })
}

/// `insecureSkipVerify`: any certificate is accepted (signatures are still checked, so the
/// handshake is sound; only the server's identity is not).
#[derive(Debug)]
pub(crate) struct AcceptAny(pub(crate) Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
