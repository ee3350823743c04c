//! Response bodies: the backend's, streamed; one of the router's own; or either of those through
//! `compress`'s encoder or `grpcWeb`'s framing. An enum rather than a boxed body, so a route
//! without those pays no allocation for them.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::Full;

use super::pool::PooledBody;
use crate::middleware::compress::Encoder;

pub enum Body {
    Backend(PooledBody),
    Own(Full<Bytes>),
    Encoded(Box<Encoded>),
    /// Bytes read ahead (to decide on the head), then the rest.
    Prefixed(Option<Bytes>, Box<Body>),
    /// `grpcWeb`: the body re-framed for a gRPC-Web client.
    GrpcWeb(Box<super::grpc_web::WebResponse>),
}

impl Body {
    pub fn own(b: impl Into<Bytes>) -> Body {
        Body::Own(Full::new(b.into()))
    }

    /// Keeps `thing` until the backend's body is done (an `inFlightReq` slot); a body of the
    /// router's own is done at once.
    pub fn hold(&mut self, thing: Box<dyn Send + Sync>) {
        match self {
            Body::Backend(b) => b.hold(thing),
            Body::Own(_) => {}
            Body::Encoded(e) => e.inner.hold(thing),
            Body::Prefixed(_, b) => b.hold(thing),
            Body::GrpcWeb(w) => w.inner_mut().hold(thing),
        }
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Body::Backend(b) => Pin::new(b).poll_frame(cx),
            Body::Own(b) => Pin::new(b).poll_frame(cx).map_err(|never| match never {}),
            Body::Encoded(e) => Pin::new(&mut **e).poll_frame(cx),
            Body::Prefixed(first, rest) => match first.take() {
                Some(d) => Poll::Ready(Some(Ok(Frame::data(d)))),
                None => Pin::new(&mut **rest).poll_frame(cx),
            },
            Body::GrpcWeb(w) => w.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Backend(b) => b.is_end_stream(),
            Body::Own(b) => b.is_end_stream(),
            Body::Encoded(e) => e.done,
            Body::Prefixed(first, rest) => first.is_none() && rest.is_end_stream(),
            Body::GrpcWeb(w) => w.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Backend(b) => b.size_hint(),
            Body::Own(b) => b.size_hint(),
            Body::Encoded(_) => SizeHint::default(),
            Body::GrpcWeb(w) => w.size_hint(),
            Body::Prefixed(first, rest) => {
                let extra = first.as_ref().map_or(0, |f| f.len() as u64);
                let h = rest.size_hint();
                let mut out = SizeHint::new();
                out.set_lower(h.lower() + extra);
                if let Some(u) = h.upper() {
                    out.set_upper(u + extra);
                }
                out
            }
        }
    }
}

/// A body compressed as it streams: the bytes held back while deciding, then the rest. The
/// encoder is flushed whenever the inner body has nothing ready, so what the backend sent is
/// never held back waiting for more.
pub struct Encoded {
    inner: Body,
    prefix: Option<Bytes>,
    encoder: Option<Encoder>,
    /// Bytes went into the encoder since its last flush.
    dirty: bool,
    trailers: Option<http::HeaderMap>,
    done: bool,
}

impl Encoded {
    pub fn new(encoder: Encoder, prefix: Bytes, inner: Body) -> Encoded {
        Encoded {
            inner,
            prefix: (!prefix.is_empty()).then_some(prefix),
            encoder: Some(encoder),
            dirty: false,
            trailers: None,
            done: false,
        }
    }

    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        loop {
            if self.done {
                return Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            let Some(enc) = self.encoder.as_mut() else {
                self.done = true;
                continue;
            };
            if let Some(p) = self.prefix.take() {
                self.dirty = true;
                let out = enc.write(&p);
                if !out.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                continue;
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => {
                    if self.dirty {
                        self.dirty = false;
                        let out = enc.flush();
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        self.dirty = true;
                        let out = enc.write(&data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(frame) => {
                        if let Ok(t) = frame.into_trailers() {
                            self.trailers = Some(t);
                        }
                    }
                },
                Poll::Ready(None) => {
                    let out = self.encoder.take().map(Encoder::finish).unwrap_or_default();
                    self.done = true;
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
            }
        }
    }
}
