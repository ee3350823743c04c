//! `encodedCharacters` (Traefik v3.7 `pkg/middlewares/encodedcharacters`): a request whose
//! escaped path (Go's `URL.EscapedPath`) holds an encoded character not allowed gets 400 with no
//! body. Every option is false by default, so the middleware alone refuses encoded `/`, `\`,
//! NUL, `;`, `%`, `?` and `#`; a `%` with fewer than two characters after it is refused too.

use http::StatusCode;

use super::{Answer, Flow, Req};

#[derive(Debug, Clone, Default)]
pub struct EncodedCharacters {
    pub allow_slash: bool,
    pub allow_back_slash: bool,
    pub allow_null: bool,
    pub allow_semicolon: bool,
    pub allow_percent: bool,
    pub allow_question_mark: bool,
    pub allow_hash: bool,
}

impl EncodedCharacters {
    /// Whether `%XY` (case-insensitive hex, as Traefik lists both cases) is refused.
    fn denied(&self, hex: &[u8]) -> bool {
        let h = [hex[0].to_ascii_uppercase(), hex[1].to_ascii_uppercase()];
        match &h {
            b"2F" => !self.allow_slash,
            b"5C" => !self.allow_back_slash,
            b"00" => !self.allow_null,
            b"3B" => !self.allow_semicolon,
            b"25" => !self.allow_percent,
            b"3F" => !self.allow_question_mark,
            b"23" => !self.allow_hash,
            _ => false,
        }
    }

    /// Whether an escaped path passes.
    pub fn allows(&self, escaped: &str) -> bool {
        let b = escaped.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                if i + 2 >= b.len() {
                    return false;
                }
                if self.denied(&b[i + 1..i + 3]) {
                    return false;
                }
                i += 2;
            }
            i += 1;
        }
        true
    }

    pub fn apply(&self, req: &mut Req) -> Flow {
        let passes = match req.path() {
            Ok(p) => self.allows(&p.escaped()),
            Err(_) => false,
        };
        if passes {
            return Flow::Next;
        }
        Flow::Answer(Box::new(Answer {
            status: StatusCode::BAD_REQUEST,
            headers: Default::default(),
            body: bytes::Bytes::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Traefik's `TestEncodedCharacters` (traefik/traefik@fd5a576df2
    /// pkg/middlewares/encodedcharacters/encoded_characters_test.go): each character denied by
    /// default and allowed by its option.
    #[test]
    fn traefik_cases() {
        let all = EncodedCharacters::default();
        for (path, allow) in [
            (
                "/foo%2fbar",
                EncodedCharacters {
                    allow_slash: true,
                    ..all.clone()
                },
            ),
            (
                "/foo%5cbar",
                EncodedCharacters {
                    allow_back_slash: true,
                    ..all.clone()
                },
            ),
            (
                "/foo%00bar",
                EncodedCharacters {
                    allow_null: true,
                    ..all.clone()
                },
            ),
            (
                "/foo%3bbar",
                EncodedCharacters {
                    allow_semicolon: true,
                    ..all.clone()
                },
            ),
            (
                "/foo%25bar",
                EncodedCharacters {
                    allow_percent: true,
                    ..all.clone()
                },
            ),
            (
                "/foo%3fbar",
                EncodedCharacters {
                    allow_question_mark: true,
                    ..all.clone()
                },
            ),
            (
                "/foo%23bar",
                EncodedCharacters {
                    allow_hash: true,
                    ..all.clone()
                },
            ),
        ] {
            assert!(!all.allows(path), "{path} denied by default");
            assert!(allow.allows(path), "{path} allowed by its option");
            assert!(
                allow.allows(&path.to_uppercase().replace("/FOO", "/foo")),
                "{path} upper"
            );
        }
        assert!(all.allows("/foo%20bar"), "other escapes pass");
        assert!(!all.allows("/foo%2"), "a cut escape");
    }
}
