//! `buffering` (Traefik's `pkg/middlewares/buffering` on `vulcand/oxy/v2/buffer`): the request
//! read whole before it is sent (413 `Request Entity Too Large` over `maxRequestBodyBytes`,
//! decided from Content-Length before reading when it says so), sent with a Content-Length;
//! the response read whole before it is answered (500 `Internal Server Error` over
//! `maxResponseBodyBytes`). 0 is no limit. The proxy does the reading; betaroute keeps both
//! bodies in memory, so `memRequestBodyBytes` and `memResponseBodyBytes` (oxy's threshold for
//! spilling to a temporary file) change nothing but are checked as oxy checks them.
//!
//! `retryExpression` ([`RetryExpr`], oxy's predicate language over `Attempts()`,
//! `ResponseCode()`, `IsNetworkError()` and `RequestMethod()`): after each try, while it
//! holds, the kept request is sent again at once (no backoff), to the next server the load
//! balancer gives; at most 11 tries, as oxy stops consulting it after the tenth.

use http::Method;

use super::predicate::{self, Function, Lit, Returns};

#[derive(Debug, Clone)]
pub struct Buffering {
    /// 0: no limit.
    pub max_request_body_bytes: u64,
    pub max_response_body_bytes: u64,
    pub retry: Option<RetryExpr>,
}

/// oxy's `DefaultMaxRetryAttempts`: past this try the expression is not asked.
pub const MAX_RETRY_ATTEMPTS: u32 = 10;

/// What `retryExpression` may ask about a try.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryFunc {
    /// The response is 502 or 504 (the proxy's answer to an unreachable backend, or the
    /// backend's own).
    IsNetworkError,
    Attempts,
    ResponseCode,
    RequestMethod,
}

impl Function for RetryFunc {
    fn call(name: &str, args: &[Lit]) -> Result<(RetryFunc, Returns), String> {
        let f = match name {
            "IsNetworkError" => (RetryFunc::IsNetworkError, Returns::Predicate),
            "Attempts" => (RetryFunc::Attempts, Returns::Int),
            "ResponseCode" => (RetryFunc::ResponseCode, Returns::Int),
            "RequestMethod" => (RetryFunc::RequestMethod, Returns::Str),
            _ => return Err(format!("unsupported function: {name}")),
        };
        if !args.is_empty() {
            return Err(format!("{name}: takes no arguments, got {}", args.len()));
        }
        Ok(f)
    }
}

pub type RetryExpr = predicate::Expr<RetryFunc>;

/// One try, as the expression sees it.
pub struct Try<'a> {
    /// 1 for the first.
    pub attempt: u32,
    pub code: u16,
    pub method: &'a Method,
}

impl predicate::Expr<RetryFunc> {
    pub fn holds(&self, t: &Try) -> bool {
        match self {
            RetryExpr::And(a, b) => a.holds(t) && b.holds(t),
            RetryExpr::Or(a, b) => a.holds(t) || b.holds(t),
            RetryExpr::Is(RetryFunc::IsNetworkError) => t.code == 502 || t.code == 504,
            RetryExpr::Is(_) => false,
            RetryExpr::Cmp(RetryFunc::RequestMethod, op, Lit::Str(m)) => {
                op.holds(t.method.as_str(), m.as_str())
            }
            RetryExpr::Cmp(RetryFunc::Attempts, op, Lit::Int(n)) => {
                op.holds(i64::from(t.attempt), *n)
            }
            RetryExpr::Cmp(RetryFunc::ResponseCode, op, Lit::Int(n)) => {
                op.holds(i64::from(t.code), *n)
            }
            RetryExpr::Cmp(..) => false,
        }
    }
}

impl Buffering {
    /// Whether a request body of `len` bytes is over the limit.
    pub fn request_too_large(&self, len: u64) -> bool {
        self.max_request_body_bytes > 0 && len > self.max_request_body_bytes
    }

    pub fn response_too_large(&self, len: u64) -> bool {
        self.max_response_body_bytes > 0 && len > self.max_response_body_bytes
    }

    /// Whether the request is sent again after this try.
    pub fn again(&self, t: &Try) -> bool {
        t.attempt <= MAX_RETRY_ATTEMPTS && self.retry.as_ref().is_some_and(|e| e.holds(t))
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
            retry: None,
        };
        assert!(!b.request_too_large(10) && b.request_too_large(11));
        assert!(!b.response_too_large(u64::MAX));
    }

    #[test]
    fn the_retry_expression_sees_the_try() {
        let b = Buffering {
            max_request_body_bytes: 0,
            max_response_body_bytes: 0,
            retry: Some(RetryExpr::parse("IsNetworkError() && Attempts() <= 2").unwrap()),
        };
        let t = |attempt, code| Try {
            attempt,
            code,
            method: &Method::GET,
        };
        assert!(b.again(&t(1, 502)) && b.again(&t(2, 504)));
        assert!(!b.again(&t(3, 502)), "the third try is delivered");
        assert!(!b.again(&t(1, 503)));
        let always = Buffering {
            retry: Some(
                RetryExpr::parse("RequestMethod() == \"GET\" && ResponseCode() >= 500").unwrap(),
            ),
            ..b
        };
        assert!(
            always.again(&t(10, 500)) && !always.again(&t(11, 500)),
            "at most 11 tries"
        );
        let post = Try {
            attempt: 1,
            code: 500,
            method: &Method::POST,
        };
        assert!(!always.again(&post));
    }
}
