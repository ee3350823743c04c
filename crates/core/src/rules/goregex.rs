//! Go (RE2) regular expressions on Rust's `regex` crate.
//!
//! The two dialects agree on nearly everything. Where they differ in ways Traefik users rely on,
//! the pattern is rewritten before compiling:
//! - Go reads a `{` that does not start a repetition (`{2}`, `{2,}`, `{2,5}`) as a literal;
//!   `regex` rejects it. Traefik v2 placeholders such as `/{path:(css|js)}` depend on this.
//! - Go's `\d`, `\w`, `\s` and `\b` are ASCII-only; `regex` makes them Unicode-aware.
//! - Go supports `\Q...\E` literal quoting; `regex` does not.

use regex::Regex;

/// Compiles a Go regular expression with Go's meaning.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&translate(pattern)).map_err(|e| match e {
        regex::Error::Syntax(s) => s
            .lines()
            .last()
            .unwrap_or("invalid regular expression")
            .trim()
            .to_owned(),
        other => other.to_string(),
    })
}

fn is_repetition(rest: &str) -> bool {
    // rest starts just after '{'
    let Some(end) = rest.find('}') else {
        return false;
    };
    let body = &rest[..end];
    let (a, b) = match body.split_once(',') {
        Some((a, b)) => (a, Some(b)),
        None => (body, None),
    };
    !a.is_empty()
        && a.bytes().all(|c| c.is_ascii_digit())
        && b.is_none_or(|b| b.bytes().all(|c| c.is_ascii_digit()))
}

pub fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut chars = pattern.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let Some((_, e)) = chars.next() else {
                    out.push('\\');
                    break;
                };
                match (e, in_class) {
                    ('Q', _) => {
                        // Literal text up to \E (or the end).
                        let rest = &pattern[i + 2..];
                        let (lit, skip) = match rest.find("\\E") {
                            Some(end) => (&rest[..end], end + 2),
                            None => (rest, rest.len()),
                        };
                        out.push_str(&regex::escape(lit));
                        for _ in 0..lit.chars().count() + (skip - lit.len()) {
                            chars.next();
                        }
                    }
                    ('d', false) => out.push_str("[0-9]"),
                    ('D', false) => out.push_str("[^0-9]"),
                    ('w', false) => out.push_str("[0-9A-Za-z_]"),
                    ('W', false) => out.push_str("[^0-9A-Za-z_]"),
                    ('s', false) => out.push_str("[\\t\\n\\x0C\\r ]"),
                    ('S', false) => out.push_str("[^\\t\\n\\x0C\\r ]"),
                    ('d', true) => out.push_str("0-9"),
                    ('w', true) => out.push_str("0-9A-Za-z_"),
                    ('s', true) => out.push_str("\\t\\n\\x0C\\r "),
                    ('b', false) => out.push_str("(?-u:\\b)"),
                    ('B', false) => out.push_str("(?-u:\\B)"),
                    (e, _) => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A ']' right after '[' or '[^' is a literal member.
                if let Some(&(_, '^')) = chars.peek() {
                    out.push('^');
                    chars.next();
                }
                if let Some(&(_, ']')) = chars.peek() {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '{' if !in_class && !is_repetition(&pattern[i + 1..]) => out.push_str("\\{"),
            '}' if !in_class => {
                // A '}' closing a repetition stays; a stray one is a literal in Go.
                let opened = out
                    .rfind('{')
                    .filter(|&p| p == 0 || !out[..p].ends_with('\\'));
                if opened.is_some_and(|p| !out[p..].contains('}')) {
                    out.push('}');
                } else {
                    out.push_str("\\}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_semantics() {
        let re = compile("/{path:(css|js)}").unwrap();
        assert!(re.is_match("/{path:css}") && !re.is_match("/css"));
        let re = compile(r"^a{2}b{1,}c{1,3}$").unwrap();
        assert!(re.is_match("aabccc") && !re.is_match("abccc"));
        assert!(
            !compile(r"^\d+$").unwrap().is_match("٣"),
            "Go's \\d is ASCII only"
        );
        assert!(compile(r"^\d+$").unwrap().is_match("123"));
        assert!(compile(r"^[\w.]+$").unwrap().is_match("a_b.c"));
        assert!(
            compile(r"\Qa.b\E$").unwrap().is_match("a.b")
                && !compile(r"\Qa.b\E$").unwrap().is_match("axb")
        );
        assert!(compile(r"^[]a]+$").unwrap().is_match("]a]"));
        assert!(compile("(css").is_err());
        assert!(compile(r"^\w+\b").unwrap().is_match("héllo"));
    }
}
