//! `buffering` (Traefik's `pkg/middlewares/buffering` on `vulcand/oxy/v2/buffer`): the request
//! read whole before it is sent (413 `Request Entity Too Large` over `maxRequestBodyBytes`,
//! decided from Content-Length before reading when it says so), sent with a Content-Length;
//! the response read whole before it is answered (500 `Internal Server Error` over
//! `maxResponseBodyBytes`). 0 is no limit. The proxy does the reading; betaroute keeps both
//! bodies in memory, so `memRequestBodyBytes` and `memResponseBodyBytes` (oxy's threshold for
//! spilling to a temporary file) change nothing but are checked as oxy checks them.

#[derive(Debug, Clone)]
pub struct Buffering {
    /// 0: no limit.
    pub max_request_body_bytes: u64,
    pub max_response_body_bytes: u64,
}

impl Buffering {
    /// Whether a request body of `len` bytes is over the limit.
    pub fn request_too_large(&self, len: u64) -> bool {
        self.max_request_body_bytes > 0 && len > self.max_request_body_bytes
    }

    pub fn response_too_large(&self, len: u64) -> bool {
        self.max_response_body_bytes > 0 && len > self.max_response_body_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_no_limit_and_the_limit_itself_fits() {
        let b = Buffering {
            max_request_body_bytes: 10,
            max_response_body_bytes: 0,
        };
        assert!(!b.request_too_large(10) && b.request_too_large(11));
        assert!(!b.response_too_large(u64::MAX));
    }
}
