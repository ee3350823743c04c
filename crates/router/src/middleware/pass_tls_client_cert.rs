//! `passTLSClientCert`: the client's TLS certificate chain, or chosen fields of it, passed to
//! the backend in `X-Forwarded-Tls-Client-Cert` and `X-Forwarded-Tls-Client-Cert-Info`, as
//! Traefik's `pkg/middlewares/passtlsclientcert` writes them.
//!
//! Traefik reads the certificates through Go's `crypto/x509`, so the info header is written as
//! Go's parsed `x509.Certificate` gives its fields: a DN's single-valued attributes (CN, SN) are
//! the last of their kind, the others all of them in certificate order; dates are Unix seconds;
//! the serial number is a decimal big integer; SANs go DNS names, then e-mails, IPs, URIs.

use base64ct::{Base64, Encoding};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use x509_parser::asn1_rs::Tag;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    Oid, OID_DOMAIN_COMPONENT, OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME, OID_X509_LOCALITY_NAME,
    OID_X509_ORGANIZATIONAL_UNIT, OID_X509_ORGANIZATION_NAME, OID_X509_SERIALNUMBER,
    OID_X509_STATE_OR_PROVINCE_NAME,
};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use super::errors::query_escape;
use super::{Flow, Req};

/// The chain's certificates, each its PEM without the BEGIN/END lines and newlines.
pub const CERT: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert");
/// The selected fields of each certificate, query-escaped.
pub const CERT_INFO: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert-info");

/// The middleware's options (Traefik's `dynamic.PassTLSClientCert`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassTlsClientCert {
    /// `pem`: sets `X-Forwarded-Tls-Client-Cert`.
    pub pem: bool,
    /// `info`: sets `X-Forwarded-Tls-Client-Cert-Info`. Present (even empty) sets the header,
    /// as Traefik's non-nil `Info` does; absent sets nothing.
    pub info: Option<CertInfo>,
}

/// `info` (Traefik's `TLSClientCertificateInfo`). An absent `subject` or `issuer` selects
/// nothing, as an empty one does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertInfo {
    pub not_after: bool,
    pub not_before: bool,
    pub sans: bool,
    pub serial_number: bool,
    pub subject: DnFields,
    pub issuer: DnFields,
}

/// The attributes of a distinguished name to pass. The issuer has no `organizationalUnit`
/// option in Traefik, so its `organizational_unit` stays false.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnFields {
    pub country: bool,
    pub province: bool,
    pub locality: bool,
    pub organization: bool,
    pub organizational_unit: bool,
    pub common_name: bool,
    pub serial_number: bool,
    pub domain_component: bool,
}

impl PassTlsClientCert {
    /// Sets the configured headers from the connection's client chain and lets the request go
    /// on; a plain request, or a TLS one without a client certificate, gets neither.
    pub fn apply(&self, req: &mut Req) -> Flow {
        let chain = req
            .tls_conn
            .as_deref()
            .map_or(&[][..], |c| c.peer_certificates.as_slice());
        let headers = &mut req.parts.headers;
        if self.pem {
            let pem = chain.iter().map(|c| Base64::encode_string(c.as_ref()));
            set(headers, CERT, chain.is_empty(), join(pem));
        }
        if let Some(info) = &self.info {
            let fields = join(chain.iter().map(|c| info.describe(c.as_ref())));
            set(headers, CERT_INFO, chain.is_empty(), query_escape(&fields));
        }
        Flow::Next
    }
}

/// Traefik `Header.Set`s the header (replacing every value a client sent) when there is a
/// certificate and leaves it alone otherwise: its entry point has already deleted an untrusted
/// peer's copy (`forwardedheaders.XHeadersSet`; betaroute's `proxy::request::forwarded` does
/// the same). betaroute also removes the copy when there is no certificate, so that not even a
/// trusted peer can pass one off as this connection's certificate (a deliberate difference:
/// Traefik would forward a trusted peer's value there).
fn set(headers: &mut HeaderMap, name: HeaderName, none: bool, value: String) {
    headers.remove(&name);
    if none {
        return;
    }
    // Base64 and query-escaped text are always visible ASCII.
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(name, v);
    }
}

/// The certificates' values, comma-separated (Traefik's `certSeparator`).
fn join(values: impl Iterator<Item = String>) -> String {
    values.collect::<Vec<_>>().join(",")
}

impl CertInfo {
    /// One certificate's `Subject="..";Issuer="..";SerialNumber="..";NB="..";NA="..";SAN=".."`,
    /// each only when selected and, for the DNs and SANs, not empty. A certificate that does not
    /// parse (Go's handshake would have refused it) gives an empty entry.
    fn describe(&self, der: &[u8]) -> String {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            return String::new();
        };
        let mut fields = Vec::new();
        for (key, name, options) in [
            ("Subject", cert.subject(), &self.subject),
            ("Issuer", cert.issuer(), &self.issuer),
        ] {
            let dn = dn(name, options);
            if let Some(dn) = dn.strip_suffix(',') {
                fields.push(format!("{key}=\"{dn}\""));
            }
        }
        if self.serial_number {
            let serial = decimal(cert.raw_serial());
            fields.push(format!("SerialNumber=\"{serial}\""));
        }
        // Go writes `uint64(t.Unix())`: a date before 1970 wraps around, and so does this.
        let validity = cert.validity();
        if self.not_before {
            fields.push(format!("NB=\"{}\"", validity.not_before.timestamp() as u64));
        }
        if self.not_after {
            fields.push(format!("NA=\"{}\"", validity.not_after.timestamp() as u64));
        }
        if self.sans {
            let sans = sans(&cert);
            if !sans.is_empty() {
                fields.push(format!("SAN=\"{}\"", sans.join(",")));
            }
        }
        fields.join(";")
    }
}

/// The selected attributes of a DN in Traefik's order (DC, C, ST, L, O, OU, SN, CN), each
/// followed by a comma (the caller drops the last one, as Traefik's `TrimSuffix` does). Values
/// are written as they are, unescaped, as Traefik writes them.
fn dn(name: &X509Name, f: &DnFields) -> String {
    let attrs: Vec<(&Oid, String)> = name
        .iter_attributes()
        .filter_map(|a| Some((a.attr_type(), go_string(a)?)))
        .collect();
    let values = |oid: &Oid| -> Vec<&str> {
        attrs
            .iter()
            .filter(|(o, _)| *o == oid)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let mut out = String::new();
    // Traefik writes every DC from the raw attribute list, even an empty one.
    if f.domain_component {
        for v in values(&OID_DOMAIN_COMPONENT) {
            out.push_str(&format!("DC={v},"));
        }
    }
    let many = [
        (f.country, &OID_X509_COUNTRY_NAME, "C"),
        (f.province, &OID_X509_STATE_OR_PROVINCE_NAME, "ST"),
        (f.locality, &OID_X509_LOCALITY_NAME, "L"),
        (f.organization, &OID_X509_ORGANIZATION_NAME, "O"),
        (f.organizational_unit, &OID_X509_ORGANIZATIONAL_UNIT, "OU"),
    ];
    for (_, oid, key) in many.into_iter().filter(|(on, ..)| *on) {
        for v in values(oid).into_iter().filter(|v| !v.is_empty()) {
            out.push_str(&format!("{key}={v},"));
        }
    }
    // Go's `pkix.Name` keeps one SerialNumber and one CommonName: the last one written.
    let one = [
        (f.serial_number, &OID_X509_SERIALNUMBER, "SN"),
        (f.common_name, &OID_X509_COMMON_NAME, "CN"),
    ];
    for (_, oid, key) in one.into_iter().filter(|(on, ..)| *on) {
        if let Some(v) = values(oid).last().filter(|v| !v.is_empty()) {
            out.push_str(&format!("{key}={v},"));
        }
    }
    out
}

/// An attribute's value as Go's x509 parser decodes it (`parseASN1String`): T61String bytes
/// as Latin-1, BMPString as UTF-16 (one trailing NUL dropped). Go refuses a certificate with
/// any other string type; such an attribute is left out here.
fn go_string(a: &AttributeTypeAndValue) -> Option<String> {
    let data = a.attr_value().data;
    match a.attr_value().tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString => {
            std::str::from_utf8(data).ok().map(str::to_owned)
        }
        Tag::TeletexString => Some(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString if data.len() % 2 == 0 => {
            let data = data.strip_suffix(&[0, 0]).unwrap_or(data);
            let units = data.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            Some(
                char::decode_utf16(units)
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect(),
            )
        }
        _ => None,
    }
}

/// A DER INTEGER's content (two's complement, big-endian) in decimal, as Go's `big.Int`
/// writes it.
pub(crate) fn decimal(der: &[u8]) -> String {
    let negative = der.first().is_some_and(|b| b & 0x80 != 0);
    let mut mag = der.to_vec();
    if negative {
        // The magnitude of a negative number: invert and add one.
        let mut carry = true;
        for b in mag.iter_mut().rev() {
            (*b, carry) = (!*b).overflowing_add(u8::from(carry));
        }
    }
    let mut digits = Vec::new();
    while mag.iter().any(|&b| b != 0) {
        let mut rem = 0u32;
        for b in mag.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(char::from(b'0' + rem as u8));
    }
    if digits.is_empty() {
        digits.push('0');
    }
    if negative {
        digits.push('-');
    }
    digits.into_iter().rev().collect()
}

/// Go's `DNSNames`, then `EmailAddresses`, `IPAddresses`, `URIs`, each in certificate order.
pub(crate) fn sans(cert: &X509Certificate) -> Vec<String> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    let names = &ext.value.general_names;
    let of = |pick: fn(&GeneralName) -> Option<String>| names.iter().filter_map(pick);
    of(|n| match n {
        GeneralName::DNSName(s) => Some((*s).to_owned()),
        _ => None,
    })
    .chain(of(|n| match n {
        GeneralName::RFC822Name(s) => Some((*s).to_owned()),
        _ => None,
    }))
    .chain(of(|n| match n {
        GeneralName::IPAddress(b) => go_ip(b),
        _ => None,
    }))
    .chain(of(|n| match n {
        GeneralName::URI(s) => Some(go_uri(s)),
        _ => None,
    }))
    .collect()
}

/// Go's `net.IP.String`: an IPv4-mapped IPv6 address is written dotted. Go refuses an IP SAN
/// of another length.
fn go_ip(b: &[u8]) -> Option<String> {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        return Some(std::net::Ipv4Addr::from(v4).to_string());
    }
    let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?);
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => v6.to_string(),
    })
}

/// A URI SAN as Go's `url.Parse(..).String()` gives it back, as far as a well-formed URI goes:
/// the scheme lower-cased, the rest as written (Go would also re-escape a malformed one).
fn go_uri(s: &str) -> String {
    let scheme = s.split_once(':').map(|(scheme, _)| scheme).filter(|sc| {
        sc.starts_with(|c: char| c.is_ascii_alphabetic())
            && sc
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    match scheme {
        Some(sc) => format!("{}{}", sc.to_ascii_lowercase(), &s[sc.len()..]),
        None => s.to_owned(),
    }
}
