//! The proxy's one error type: why the router could not start, and why a request could not be
//! forwarded (with the answer the client gets).

use std::fmt;

use http::StatusCode;

use crate::config::ConfigErrors;

#[derive(Debug)]
pub enum ProxyError {
    /// The configuration does not load.
    Config(ConfigErrors),
    /// An address could not be listened on (in use, not allowed).
    Bind {
        what: String,
        address: String,
        source: std::io::Error,
    },
    /// The runtime or a thread could not be started.
    Runtime(String),
    /// A request's service has no server that can take it now.
    NoServer,
    /// The backend refused or dropped the connection before answering.
    Connect,
    /// The backend did not send its response headers in time.
    Timeout,
    /// The backend's answer was invalid or cut short.
    Upstream,
    /// The client's body could not be read to the end (kept for `retry` or `buffering`).
    BadRequestBody,
    /// The client's body is over `buffering`'s `maxRequestBodyBytes`.
    RequestTooLarge,
}

impl ProxyError {
    /// The status a client gets for a request that failed this way.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoServer => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Connect | ProxyError::Upstream => StatusCode::BAD_GATEWAY,
            ProxyError::BadRequestBody => StatusCode::BAD_REQUEST,
            ProxyError::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body a client gets for a request that failed this way.
    pub fn body(&self) -> &'static str {
        match self {
            ProxyError::NoServer => "no available server\n",
            ProxyError::Timeout => "Gateway Timeout: the backend did not answer in time\n",
            ProxyError::Connect => "Bad Gateway: the backend refused the connection\n",
            ProxyError::Upstream => "Bad Gateway: the backend's answer was invalid or cut short\n",
            ProxyError::BadRequestBody => "Bad Request: the request body could not be read\n",
            ProxyError::RequestTooLarge => "Request Entity Too Large",
            _ => "Internal Server Error\n",
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::Config(e) => write!(f, "{e}"),
            ProxyError::Bind {
                what,
                address,
                source,
            } => write!(f, "{what}: cannot listen on {address}: {source}"),
            ProxyError::Runtime(m) => f.write_str(m),
            other => f.write_str(other.body().trim_end()),
        }
    }
}

impl std::error::Error for ProxyError {}

impl From<ConfigErrors> for ProxyError {
    fn from(e: ConfigErrors) -> Self {
        ProxyError::Config(e)
    }
}
