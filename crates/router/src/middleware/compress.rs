//! `compress`: the response body in zstd, brotli or gzip, as the client accepts (Traefik's
//! `pkg/middlewares/compress`).
//!
//! What is decided here, from heads only: whether the request gets a compressing handler and
//! with which encoding ([`Compress::choose`]), and whether a response may be compressed
//! ([`Compress::compresses`]). The proxy then holds the body back until `minResponseBodyBytes`
//! are there (or the body ends, then it goes as it is) and streams the rest through an
//! [`Encoder`].

use std::io::Write;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};

/// The codecs Traefik offers, by their `Content-Encoding` token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Zstd,
    Brotli,
    Gzip,
}

impl Encoding {
    pub fn parse(s: &str) -> Option<Encoding> {
        match s {
            "zstd" => Some(Encoding::Zstd),
            "br" => Some(Encoding::Brotli),
            "gzip" => Some(Encoding::Gzip),
            _ => None,
        }
    }

    pub fn token(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

/// Traefik's default `encodings`, in its order of preference on equal weights.
pub const DEFAULT_ENCODINGS: [Encoding; 3] = [Encoding::Gzip, Encoding::Brotli, Encoding::Zstd];
/// Traefik's default `minResponseBodyBytes`.
pub const DEFAULT_MIN_SIZE: usize = 1024;

/// A media type as Go's `mime.ParseMediaType` gives it: lower-case, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub essence: String,
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// `type/subtype; k=v; ...` (a quoted value unquoted); `None` where Go reports an error.
    pub fn parse(s: &str) -> Option<MediaType> {
        let mut parts = s.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        let token = |t: &str| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
        };
        match essence.split_once('/') {
            Some((t, st)) if token(t) && token(st) => {}
            None if token(&essence) => {}
            _ => return None,
        }
        let mut params = Vec::new();
        for p in parts {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let (k, v) = p.split_once('=')?;
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            let v = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(q) => q.replace("\\\"", "\"").replace("\\\\", "\\"),
                None if token(v) => v.to_owned(),
                None => return None,
            };
            if !token(&k) || params.iter().any(|(seen, _)| *seen == k) {
                return None;
            }
            params.push((k, v));
        }
        Some(MediaType { essence, params })
    }

    /// Traefik's `parsedContentType.equals`: the same type, and when this one names parameters,
    /// exactly those.
    fn matches(&self, other: &MediaType) -> bool {
        self.essence == other.essence
            && (self.params.is_empty()
                || (self.params.len() == other.params.len()
                    && self
                        .params
                        .iter()
                        .all(|(k, v)| other.params.iter().any(|(k2, v2)| k == k2 && v == v2))))
    }
}

#[derive(Debug, Clone)]
pub struct Compress {
    /// `application/grpc` and the configured `excludedContentTypes` (media types only: Traefik
    /// keeps no parameters of them).
    pub excludes: Vec<MediaType>,
    pub includes: Vec<MediaType>,
    pub min_size: usize,
    pub encodings: Vec<Encoding>,
    pub default_encoding: Option<Encoding>,
}

impl Compress {
    /// The encoding of the compressing handler this request gets; `None`: the request goes on
    /// untouched (a HEAD, an excluded request Content-Type, nothing acceptable, identity).
    pub fn choose(&self, method: &Method, headers: &HeaderMap) -> Option<Encoding> {
        if method == Method::HEAD {
            return None;
        }
        let request_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(MediaType::parse);
        if let Some(t) = request_type {
            if self.excludes.iter().any(|e| e.essence == t.essence) {
                return None;
            }
        }
        let values: Vec<&[u8]> = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        if values.is_empty() {
            return self.default_encoding;
        }
        if values.len() == 1 && values[0].is_empty() {
            return None;
        }
        self.negotiate(&values)
    }

    /// Traefik's `getCompressionEncoding`: the highest weight wins; on equal weights the order of
    /// `encodings`, then identity, with `*` first of all (it means the preferred encoding).
    fn negotiate(&self, values: &[&[u8]]) -> Option<Encoding> {
        #[derive(Clone, Copy, PartialEq)]
        enum Token {
            Any,
            Identity,
            One(Encoding),
        }
        let rank = |t: Token| match t {
            Token::Any => -1,
            Token::Identity => self.encodings.len() as i64,
            Token::One(e) => self
                .encodings
                .iter()
                .position(|x| *x == e)
                .map_or(i64::MAX, |i| i as i64),
        };
        let mut best: Option<(Token, f64)> = None;
        for line in values {
            // Go: `strings.ReplaceAll(line, " ", "")`, split on commas, `name;q=w`.
            let line: String = String::from_utf8_lossy(line).replace(' ', "");
            for item in line.split(',') {
                let (name, rest) = item.split_once(';').unwrap_or((item, ""));
                let token = match name {
                    "*" => Token::Any,
                    "identity" => Token::Identity,
                    n => match Encoding::parse(n).filter(|e| self.encodings.contains(e)) {
                        Some(e) => Token::One(e),
                        None => continue,
                    },
                };
                let mut weight = 1.0;
                if let Some(q) = rest.strip_prefix("q=") {
                    // Go's ParseFloat failing gives 0, which drops the item.
                    let w = q.parse::<f64>().unwrap_or(0.0);
                    if w == 0.0 {
                        continue;
                    }
                    weight = w;
                }
                let better = match best {
                    None => true,
                    Some((b, bw)) => weight > bw || (weight == bw && rank(token) < rank(b)),
                };
                if better {
                    best = Some((token, weight));
                }
            }
        }
        match best?.0 {
            Token::Any => Some(self.default_encoding.unwrap_or(self.encodings[0])),
            Token::Identity => None,
            Token::One(e) => Some(e),
        }
    }

    /// Whether a response with this head may be compressed: not already encoded, not a range,
    /// with a body, its Content-Type (when it has one) parseable, included and not excluded.
    pub fn compresses(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || status == StatusCode::PARTIAL_CONTENT
            || headers.contains_key(header::CONTENT_RANGE)
        {
            return false;
        }
        if headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| !v.is_empty())
        {
            return false;
        }
        // Go's `Header.Get`: an empty Content-Type is none, and skips the type checks.
        let Some(ct) = headers.get(header::CONTENT_TYPE).filter(|v| !v.is_empty()) else {
            return true;
        };
        let Some(t) = ct.to_str().ok().and_then(MediaType::parse) else {
            return false;
        };
        if !self.includes.is_empty() && !self.includes.iter().any(|i| i.matches(&t)) {
            return false;
        }
        !self.excludes.iter().any(|e| e.matches(&t))
    }
}

/// A streaming encoder: bytes in, compressed bytes out, flushed when the proxy has nothing more
/// to send for now (so a stream of events reaches the client as it comes).
pub enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// The levels of Traefik's codecs: gzhttp's default gzip level (5), brotli's default
    /// quality (6, window 22), zstd's default (3).
    pub fn new(e: Encoding) -> Encoder {
        match e {
            Encoding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(5),
            )),
            Encoding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                6,
                22,
            ))),
            Encoding::Zstd => Encoder::Zstd(
                zstd::stream::write::Encoder::new(Vec::new(), 3)
                    .expect("zstd's default level is valid"),
            ),
        }
    }

    fn out(&mut self) -> &mut Vec<u8> {
        match self {
            Encoder::Gzip(w) => w.get_mut(),
            Encoder::Brotli(w) => w.get_mut(),
            Encoder::Zstd(w) => w.get_mut(),
        }
    }

    fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(self.out()))
    }

    /// Compresses `data`; returns what the codec has produced so far.
    pub fn write(&mut self, data: &[u8]) -> Bytes {
        // Writing into a Vec cannot fail.
        let _ = match self {
            Encoder::Gzip(w) => w.write_all(data),
            Encoder::Brotli(w) => w.write_all(data),
            Encoder::Zstd(w) => w.write_all(data),
        };
        self.take()
    }

    /// Everything written so far, decodable by the client now.
    pub fn flush(&mut self) -> Bytes {
        let _ = match self {
            Encoder::Gzip(w) => w.flush(),
            Encoder::Brotli(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
        };
        self.take()
    }

    /// The end of the stream.
    pub fn finish(self) -> Bytes {
        let out = match self {
            Encoder::Gzip(w) => w.finish().unwrap_or_default(),
            Encoder::Brotli(w) => w.into_inner(),
            Encoder::Zstd(w) => w.finish().unwrap_or_default(),
        };
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn compress(encodings: &[Encoding], default: Option<Encoding>) -> Compress {
        Compress {
            excludes: vec![MediaType::parse("application/grpc").unwrap()],
            includes: vec![],
            min_size: DEFAULT_MIN_SIZE,
            encodings: encodings.to_vec(),
            default_encoding: default,
        }
    }

    fn accept(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn negotiation_follows_weights_then_the_configured_order() {
        let c = compress(&DEFAULT_ENCODINGS, None);
        let get = |v: &[&str]| c.choose(&Method::GET, &accept(v)).map(Encoding::token);
        assert_eq!(get(&["gzip, br, zstd"]), Some("gzip"));
        assert_eq!(get(&["zstd, br"]), Some("br"));
        assert_eq!(get(&["gzip;q=0.5, zstd"]), Some("zstd"));
        assert_eq!(get(&["*"]), Some("gzip"));
        assert_eq!(get(&["identity"]), None);
        assert_eq!(get(&["gzip;q=0"]), None);
        assert_eq!(get(&[""]), None);
        assert_eq!(get(&["compress, deflate"]), None);
        assert_eq!(get(&[]), None, "no Accept-Encoding and no default");
        assert_eq!(get(&["br;q=0.9", "zstd"]), Some("zstd"), "several headers");
        assert_eq!(c.choose(&Method::HEAD, &accept(&["gzip"])), None);
        let d = compress(&[Encoding::Zstd, Encoding::Gzip], Some(Encoding::Gzip));
        assert_eq!(d.choose(&Method::GET, &accept(&[])), Some(Encoding::Gzip));
        assert_eq!(
            d.choose(&Method::GET, &accept(&["*"])),
            Some(Encoding::Gzip)
        );
        assert_eq!(
            d.choose(&Method::GET, &accept(&["br"])),
            None,
            "br not configured"
        );
    }

    #[test]
    fn responses_already_encoded_ranged_or_excluded_stay_as_they_are() {
        let mut c = compress(&DEFAULT_ENCODINGS, None);
        c.excludes.push(MediaType::parse("image/png").unwrap());
        let head = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_str(v).unwrap());
            }
            h
        };
        let ok = StatusCode::OK;
        assert!(c.compresses(ok, &head(&[])));
        assert!(c.compresses(ok, &head(&[("content-type", "text/html")])));
        assert!(!c.compresses(ok, &head(&[("content-encoding", "br")])));
        assert!(!c.compresses(ok, &head(&[("content-type", "Image/PNG; x=1")])));
        assert!(!c.compresses(ok, &head(&[("content-type", "application/grpc")])));
        assert!(!c.compresses(ok, &head(&[("content-type", "text/html; bad")])));
        assert!(!c.compresses(ok, &head(&[("content-range", "bytes 0-1/10")])));
        assert!(!c.compresses(StatusCode::NO_CONTENT, &head(&[])));
        c.includes = vec![MediaType::parse("text/plain; charset=utf-8").unwrap()];
        assert!(c.compresses(ok, &head(&[("content-type", "text/plain; charset=utf-8")])));
        assert!(!c.compresses(ok, &head(&[("content-type", "text/plain")])));
        assert!(!c.compresses(ok, &head(&[("content-type", "text/html")])));
    }

    #[test]
    fn each_encoder_round_trips_and_flushes_decodable_bytes() {
        let text = "betaroute ".repeat(500);
        for e in DEFAULT_ENCODINGS {
            let mut enc = Encoder::new(e);
            let mut out = enc.write(&text.as_bytes()[..1000]).to_vec();
            out.extend_from_slice(&enc.flush());
            assert!(!out.is_empty(), "{e:?}: a flush gives the bytes so far");
            out.extend_from_slice(&enc.write(&text.as_bytes()[1000..]));
            out.extend_from_slice(&enc.finish());
            assert!(out.len() < text.len() / 10, "{e:?} compresses");
            let mut back = Vec::new();
            match e {
                Encoding::Gzip => {
                    flate2::read::GzDecoder::new(&out[..])
                        .read_to_end(&mut back)
                        .unwrap();
                }
                Encoding::Brotli => {
                    brotli::Decompressor::new(&out[..], 4096)
                        .read_to_end(&mut back)
                        .unwrap();
                }
                Encoding::Zstd => {
                    back = zstd::stream::decode_all(&out[..]).unwrap();
                }
            }
            assert_eq!(back, text.as_bytes(), "{e:?}");
        }
    }
}
