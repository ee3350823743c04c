//! HTTP/2 by `Upgrade: h2c` (RFC 7540 3.2; deprecated by RFC 9113 3.1, still what `curl
//! --http2` and `nghttp -u` send to `http://` URLs, and what Traefik's h2c handler accepts): the
//! server answers `101 Switching Protocols`, and the request that asked becomes stream 1 of the
//! HTTP/2 connection, answered there.
//!
//! hyper's HTTP/2 server cannot be handed a request as stream 1, so the upgrading request is
//! written as the HEADERS frame the client would have sent on stream 1 (HPACK literals, no
//! table state) and slipped into the connection's bytes right after the client's preface and
//! first SETTINGS frame: the server then reads an ordinary stream 1 and answers it where the
//! client expects. Requests with a body are not upgraded (answered in HTTP/1.1, which RFC 7540
//! allows a server to do), nor are those whose headers would need more than one frame.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// The HTTP/2 connection preface (RFC 9113 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// HTTP/2's default SETTINGS_MAX_FRAME_SIZE: the HEADERS frame must fit in it.
const MAX_FRAME: usize = 16_384;

/// Headers that do not become HTTP/2 fields (RFC 9113 8.2.2), and the upgrade's own.
fn dropped(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "upgrade"
            | "http2-settings"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "host"
    )
}

/// Whether `parts` asks to upgrade to h2c as RFC 7540 3.2 says (`Upgrade: h2c`, `Connection`
/// naming `Upgrade` and `HTTP2-Settings`, one `HTTP2-Settings`) and can be: no body.
pub fn wanted(parts: &Parts) -> bool {
    let h = &parts.headers;
    let tokens = |name: header::HeaderName| -> Vec<String> {
        h.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect()
    };
    let connection = tokens(header::CONNECTION);
    let asks = tokens(header::UPGRADE).iter().any(|t| t == "h2c")
        && connection.iter().any(|t| t == "upgrade")
        && connection.iter().any(|t| t == "http2-settings")
        && h.get_all("http2-settings").iter().count() == 1;
    let bodiless = !h.contains_key(header::TRANSFER_ENCODING)
        && h.get(header::CONTENT_LENGTH)
            .is_none_or(|v| v.as_bytes() == b"0");
    parts.version == http::Version::HTTP_11 && parts.method != Method::CONNECT && asks && bodiless
}

/// The HEADERS frame (END_STREAM, END_HEADERS) of stream 1 that says what `parts` says; `None`
/// when it does not fit one frame.
pub fn stream_one(parts: &Parts) -> Option<Bytes> {
    let mut block = BytesMut::new();
    let authority = parts
        .headers
        .get(header::HOST)
        .map(HeaderValue::as_bytes)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().as_bytes()))
        .unwrap_or(b"");
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    literal(&mut block, b":method", parts.method.as_str().as_bytes());
    literal(&mut block, b":scheme", b"http");
    literal(&mut block, b":path", path.as_bytes());
    literal(&mut block, b":authority", authority);
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if dropped(n) || (n == "te" && !value.as_bytes().eq_ignore_ascii_case(b"trailers")) {
            continue;
        }
        literal(&mut block, n.as_bytes(), value.as_bytes());
    }
    if block.len() > MAX_FRAME {
        return None;
    }
    let mut frame = BytesMut::with_capacity(9 + block.len());
    frame.put_uint(block.len() as u64, 3);
    frame.put_u8(0x1); // HEADERS
    frame.put_u8(0x1 | 0x4); // END_STREAM | END_HEADERS
    frame.put_u32(1); // stream 1
    frame.extend_from_slice(&block);
    Some(frame.freeze())
}

/// An HPACK literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2).
fn literal(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_u8(0x00);
    string(out, name);
    string(out, value);
}

fn string(out: &mut BytesMut, s: &[u8]) {
    integer(out, s.len(), 7, 0x00);
    out.extend_from_slice(s);
}

/// An HPACK integer with an N-bit prefix (RFC 7541 5.1).
fn integer(out: &mut BytesMut, mut n: usize, prefix: u8, flags: u8) {
    let max = (1usize << prefix) - 1;
    if n < max {
        out.put_u8(flags | n as u8);
        return;
    }
    out.put_u8(flags | max as u8);
    n -= max;
    while n >= 128 {
        out.put_u8((n % 128) as u8 | 0x80);
        n /= 128;
    }
    out.put_u8(n as u8);
}

/// The `101` that switches the connection.
pub fn switching<B>(empty: B) -> Response<B> {
    let mut r = Response::new(empty);
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
    r
}

/// Reads the client's preface and first frame (its SETTINGS) from the switched connection,
/// within `within`, and gives back a connection that reads them, then `frame`, then the rest.
pub async fn prepare<I>(mut io: I, frame: Bytes, within: Duration) -> Option<Prepended<I>>
where
    I: AsyncRead + Unpin,
{
    let read = async {
        let mut got = BytesMut::with_capacity(64);
        // Preface and the first frame's 9-byte header, then its payload.
        while got.len() < PREFACE.len() + 9 {
            if io.read_buf(&mut got).await.ok()? == 0 {
                return None;
            }
        }
        if &got[..PREFACE.len()] != PREFACE {
            return None;
        }
        let h = &got[PREFACE.len()..];
        let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
        let end = PREFACE.len() + 9 + len;
        while got.len() < end {
            if io.read_buf(&mut got).await.ok()? == 0 {
                return None;
            }
        }
        let rest = got.split_off(end);
        let mut first = got;
        first.extend_from_slice(&frame);
        first.extend_from_slice(&rest);
        Some(first.freeze())
    };
    let first = tokio::time::timeout(within, read).await.ok()??;
    Some(Prepended { first, io })
}

/// A connection whose first bytes are `first`, then its own.
pub struct Prepended<I> {
    first: Bytes,
    io: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Prepended<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.first.has_remaining() {
            let n = self.first.len().min(buf.remaining());
            buf.put_slice(&self.first[..n]);
            self.first.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

write_through!(Prepended);

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().uri("/a?b=1");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    const ASKS: [(&str, &str); 4] = [
        ("host", "api.example.com"),
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
        ("http2-settings", "AAMAAABkAARAAAAAAAIAAAAA"),
    ];

    #[test]
    fn only_a_complete_bodiless_upgrade_is_taken() {
        assert!(wanted(&parts(&ASKS)));
        assert!(!wanted(&parts(&ASKS[..3])), "no HTTP2-Settings");
        let mut with_body = ASKS.to_vec();
        with_body.push(("content-length", "5"));
        assert!(!wanted(&parts(&with_body)));
        let ws = [("connection", "Upgrade"), ("upgrade", "websocket")];
        assert!(!wanted(&parts(&ws)));
    }

    #[test]
    fn hpack_integers_follow_rfc_7541s_examples() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix.
        let mut b = BytesMut::new();
        integer(&mut b, 10, 5, 0);
        assert_eq!(&b[..], [0x0a]);
        let mut b = BytesMut::new();
        integer(&mut b, 1337, 5, 0);
        assert_eq!(&b[..], [0x1f, 0x9a, 0x0a]);
    }

    #[test]
    fn stream_one_carries_the_request_and_drops_the_upgrade_headers() {
        let mut h = ASKS.to_vec();
        h.push(("x-rikstv-beta", "true"));
        let f = stream_one(&parts(&h)).unwrap();
        assert_eq!(&f[3..9], [0x1, 0x5, 0, 0, 0, 1]);
        let block = &f[9..];
        let text = String::from_utf8_lossy(block);
        for want in [
            ":path",
            "/a?b=1",
            ":authority",
            "api.example.com",
            "x-rikstv-beta",
        ] {
            assert!(text.contains(want), "{text}");
        }
        for gone in ["http2-settings", "upgrade", "h2c"] {
            assert!(!text.contains(gone), "{text}");
        }
    }
}
