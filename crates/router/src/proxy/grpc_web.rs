//! `grpcWeb`'s bodies (the middleware's logic is `crate::middleware::grpc_web`): a `-text`
//! request body base64-decoded on its way to the backend, and the backend's response body
//! re-framed for the client (its bytes as they come, base64-encoded for `-text`, then the
//! trailer frame), both as they stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;

use super::body::Body;
use crate::middleware::grpc_web::{encode_text, trailer_frame, Base64Decoder, Format};

/// A request body's error on its way to a backend (the client's, or bad base64).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A `-text` client's body, decoded.
pub struct TextRequest {
    inner: Incoming,
    decoder: Base64Decoder,
    done: bool,
}

impl TextRequest {
    pub fn new(inner: Incoming) -> TextRequest {
        TextRequest {
            inner,
            decoder: Base64Decoder::default(),
            done: false,
        }
    }

    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.done = true;
                    return match self.decoder.finish() {
                        Ok(()) => Poll::Ready(None),
                        Err(e) => Poll::Ready(Some(Err(e.into()))),
                    };
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(text) => {
                        let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
                        if let Err(e) = self.decoder.feed(&text, &mut out) {
                            self.done = true;
                            return Poll::Ready(Some(Err(e.into())));
                        }
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                        }
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
            }
        }
    }

    pub fn is_end_stream(&self) -> bool {
        self.done || (self.inner.is_end_stream() && self.decoder.is_empty())
    }
}

/// The backend's response as a gRPC-Web client reads it.
pub struct WebResponse {
    inner: Body,
    format: Format,
    /// The names the response head carries: not repeated in the trailer frame.
    head: Vec<HeaderName>,
    trailers: Option<HeaderMap>,
    done: bool,
}

impl WebResponse {
    pub fn new(inner: Body, format: Format, head: Vec<HeaderName>) -> WebResponse {
        WebResponse {
            inner,
            format,
            head,
            trailers: None,
            done: false,
        }
    }

    pub fn inner_mut(&mut self) -> &mut Body {
        &mut self.inner
    }

    fn encode(&self, data: Bytes) -> Bytes {
        match self.format {
            Format::Binary => data,
            Format::Text => Bytes::from(encode_text(&data)),
        }
    }

    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.is_empty() => {}
                    Ok(data) => return Poll::Ready(Some(Ok(Frame::data(self.encode(data))))),
                    Err(frame) => {
                        if let Ok(t) = frame.into_trailers() {
                            match &mut self.trailers {
                                Some(all) => all.extend(t),
                                None => self.trailers = Some(t),
                            }
                        }
                    }
                },
                Poll::Ready(None) => {
                    self.done = true;
                    let frame = trailer_frame(self.trailers.as_ref(), &self.head);
                    return Poll::Ready(Some(Ok(Frame::data(self.encode(Bytes::from(frame))))));
                }
            }
        }
    }

    pub fn is_end_stream(&self) -> bool {
        self.done
    }

    pub fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
