//! Regular expressions of rollout rules: Go/RE2 syntax, checked here once for the edge and the
//! router, and translated into an ECMAScript pattern (with the `u` flag) that matches exactly
//! the same strings.
//!
//! The router matches with `regex-lite` on the pattern as written; the edge matches with the
//! runtime's `RegExp` on the translation (a Rust engine would add 22 KB to the edge's wasm, whose
//! bundle is capped at 200 KB gzip). Only whether a pattern matches matters, never where or what
//! it captures, so two patterns that accept the same language agree: greediness and capture
//! groups need no care. What the two syntaxes read differently is translated to one meaning:
//! - `.` (any character but `\n`) becomes `[^\n]`, `(?s)`'s `.` becomes `[^]`;
//! - the Perl classes are ASCII in RE2 (`\d` `[0-9]`, `\w` `[0-9A-Za-z_]`, `\s` `[\t\n\f\r ]`),
//!   Unicode-aware (`\s`) in ECMAScript: they are spelled out;
//! - POSIX classes (`[[:alpha:]]`), `\A`, `\z`, `\Q...\E`, `\x{...}` and named groups
//!   (`(?P<n>...)`) become their ECMAScript spelling;
//! - every literal character outside a class is written as an escape or itself, so nothing
//!   RE2 reads as a literal is read as syntax (a lone `{` is an error under `u`).
//!
//! Refused by name (the policy is invalid on both sides): Unicode classes (`\p{..}`), flags
//! other than a leading `(?i)` / `(?s)` (`m`, `U`, flags in the middle), `\C`, and negated Perl
//! classes inside a class (`[\D]`). Invalid RE2 (unbalanced groups, a repetition of nothing,
//! counts above 1000, back references, look-around) is refused as RE2 refuses it.

use std::fmt::Write;

/// A checked pattern and its two normalized spellings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// As written (RE2 syntax).
    pub source: String,
    /// The ECMAScript source, for `new RegExp(js, js_flags)` at the edge.
    pub js: String,
    /// Always `u`: `(?i)` is translated, never left to an engine's flag (see [`Pattern::parse`]).
    pub js_flags: &'static str,
    /// The same pattern for Rust's regex syntax (the router's `regex-lite`): what the ECMAScript
    /// source says, spelled for the other engine, so both read one normalized pattern.
    pub rust: String,
}

/// RE2's limit on a repetition count.
const MAX_REPEAT: u32 = 1000;

/// The most atoms a pattern may have once its repetitions are expanded (`(a{100}){100}` has
/// 10,000). Engines refuse patterns past their own size limits, and not at the same point: a
/// bound here, below both, keeps the edge and the router agreeing on which patterns are valid.
const MAX_SIZE: u64 = 10_000;

impl Pattern {
    /// Checks and translates a pattern.
    ///
    /// `(?i)` is written out as classes (`k` becomes `[kK]`): the engines fold case differently
    /// (ECMAScript's `iu` folds Unicode, so `k` matches the Kelvin sign; regex-lite folds ASCII
    /// only), so neither is asked to. It folds ASCII letters; a case-insensitive pattern with a
    /// character outside ASCII is refused by name rather than matched differently from RE2,
    /// which folds Unicode.
    pub fn parse(source: &str) -> Result<Pattern, String> {
        let js = translate(source, true)?;
        let rust = translate(source, false)?;
        Ok(Pattern {
            source: source.to_owned(),
            js,
            js_flags: "u",
            rust,
        })
    }
}

/// The pattern for ECMAScript (`js`) or Rust's regex syntax.
fn translate(source: &str, js: bool) -> Result<String, String> {
    {
        let mut p = Parser {
            chars: source.chars().collect(),
            at: 0,
            out: String::with_capacity(source.len() + 8),
            dot_all: false,
            depth: 0,
            js,
            fold: false,
        };
        // Leading flags: `(?i)`, `(?s)`, `(?is)`.
        if p.peek_str("(?") {
            if let Some(end) = p.chars[p.at + 2..].iter().position(|&c| c == ')') {
                let flags: String = p.chars[p.at + 2..p.at + 2 + end].iter().collect();
                if !flags.is_empty() && flags.chars().all(|c| c.is_ascii_alphabetic()) {
                    for f in flags.chars() {
                        match f {
                            'i' => p.fold = true,
                            's' => p.dot_all = true,
                            other => {
                                return Err(format!(
                                    "flag {other:?} is not supported (only a leading (?i) or (?s))"
                                ))
                            }
                        }
                    }
                    p.at += 3 + end;
                }
            }
        }
        let size = p.alternation()?;
        if p.at < p.chars.len() {
            return Err("unexpected ) (no group to close)".into());
        }
        if size > MAX_SIZE {
            return Err(too_large());
        }
        Ok(p.out)
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    out: String,
    dot_all: bool,
    depth: usize,
    /// Writing ECMAScript (else Rust's regex syntax).
    js: bool,
    /// `(?i)`: ASCII letters match either case.
    fold: bool,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn peek_str(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.chars.get(self.at + i) == Some(&c))
    }

    /// `a|b|...` up to a `)` or the end; its size (atoms, repetitions expanded).
    fn alternation(&mut self) -> Result<u64, String> {
        let mut size = 0u64;
        loop {
            size = size.saturating_add(self.sequence()?);
            if size > MAX_SIZE {
                return Err(too_large());
            }
            if self.peek() == Some('|') {
                self.at += 1;
                self.out.push('|');
                continue;
            }
            return Ok(size);
        }
    }

    /// Atoms with their repetitions, up to `|`, `)` or the end; its size.
    fn sequence(&mut self) -> Result<u64, String> {
        // Whether the last atom can take a repetition (not after `^`, `$`, `\b`, a repetition),
        // and its size.
        let mut repeatable = false;
        let (mut size, mut last) = (0u64, 0u64);
        while let Some(c) = self.peek() {
            if size > MAX_SIZE {
                return Err(too_large());
            }
            match c {
                '|' => return Ok(size),
                ')' if self.depth > 0 => return Ok(size),
                ')' => return Err("unexpected ) (no group to close)".into()),
                '*' | '+' | '?' => {
                    if !repeatable {
                        return Err(format!("missing argument to repetition operator: {c}"));
                    }
                    self.at += 1;
                    self.out.push(c);
                    self.lazy();
                    size = size.saturating_add(last);
                    repeatable = false;
                }
                '{' => match self.counted()? {
                    Some((text, copies)) => {
                        if !repeatable {
                            return Err(format!("missing argument to repetition operator: {text}"));
                        }
                        self.out.push_str(&text);
                        self.lazy();
                        size = (size - last).saturating_add(last.saturating_mul(copies));
                        repeatable = false;
                    }
                    None => {
                        self.at += 1;
                        self.out.push_str("\\{");
                        (repeatable, last) = (true, 1);
                        size += 1;
                    }
                },
                _ => {
                    (repeatable, last) = self.atom()?;
                    size = size.saturating_add(last);
                }
            }
        }
        Ok(size)
    }

    /// A `?` after a repetition (lazy): the language is the same, kept as written.
    fn lazy(&mut self) {
        if self.peek() == Some('?') {
            self.at += 1;
            self.out.push('?');
        }
        // `a**` and friends: RE2 refuses them; the caller's next round reports it.
    }

    /// `{n}`, `{n,}`, `{n,m}` at the cursor: its text and how many copies of its atom it makes,
    /// or `None` when the `{` is a literal (as RE2 reads `{` that does not start a valid count).
    fn counted(&mut self) -> Result<Option<(String, u64)>, String> {
        let rest: String = self.chars[self.at..].iter().collect();
        let Some(end) = rest.find('}') else {
            return Ok(None);
        };
        let inner = &rest[1..end];
        let (lo, hi) = match inner.split_once(',') {
            None => (inner, Some(inner)),
            Some((lo, hi)) => (lo, (!hi.is_empty()).then_some(hi)),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(lo) || hi.is_some_and(|h| !digits(h)) {
            return Ok(None);
        }
        let n = |s: &str| s.parse::<u32>().unwrap_or(u32::MAX);
        if n(lo) > MAX_REPEAT || hi.is_some_and(|h| n(h) > MAX_REPEAT) {
            return Err(format!(
                "invalid repeat count: {{{inner}}} (at most {MAX_REPEAT})"
            ));
        }
        if hi.is_some_and(|h| n(h) < n(lo)) {
            return Err(format!("invalid repeat count: {{{inner}}}"));
        }
        self.at += inner.chars().count() + 2;
        let copies = u64::from(hi.map_or(n(lo) + 1, n).max(1));
        Ok(Some((format!("{{{inner}}}"), copies)))
    }

    /// One atom: whether a repetition may follow it, and its size.
    fn atom(&mut self) -> Result<(bool, u64), String> {
        let c = self.peek().expect("caller checked");
        self.at += 1;
        match c {
            '(' => Ok((true, self.group()?)),
            '[' => {
                self.class()?;
                Ok((true, 1))
            }
            '.' => {
                self.out.push_str(match (self.dot_all, self.js) {
                    (false, _) => "[^\\n]",
                    (true, true) => "[^]",
                    (true, false) => "(?s:.)",
                });
                Ok((true, 1))
            }
            '^' | '$' => {
                self.out.push(c);
                Ok((false, 0))
            }
            '\\' => self.escape(),
            c => {
                self.lit(c)?;
                Ok((true, 1))
            }
        }
    }

    /// A literal outside a class; under `(?i)` an ASCII letter becomes a class of both cases.
    fn lit(&mut self, c: char) -> Result<(), String> {
        if self.fold && c.is_ascii_alphabetic() {
            let _ = write!(
                self.out,
                "[{}{}]",
                c.to_ascii_lowercase(),
                c.to_ascii_uppercase()
            );
            return Ok(());
        }
        self.check_fold(c)?;
        literal(&mut self.out, c, self.js);
        Ok(())
    }

    /// Under `(?i)`, a character outside ASCII is refused (see [`Pattern::parse`]). Telling
    /// non-ASCII letters from other characters takes Unicode's case tables, 14 KB of the edge's
    /// wasm: every non-ASCII character is refused instead.
    fn check_fold(&self, c: char) -> Result<(), String> {
        if self.fold && !c.is_ascii() {
            return Err(format!("(?i) patterns are ASCII only here: {c:?} is not (write both cases in a class without (?i) instead)"));
        }
        Ok(())
    }

    /// One character of a class, or a range, with the other case of its ASCII letters under
    /// `(?i)`.
    fn class_range(&mut self, lo: char, hi: char) -> Result<(), String> {
        self.check_fold(lo)?;
        self.check_fold(hi)?;
        class_literal(&mut self.out, lo, self.js);
        if hi != lo {
            self.out.push('-');
            class_literal(&mut self.out, hi, self.js);
        }
        if self.fold {
            for (from, to, flip) in [('a', 'z', 'A'), ('A', 'Z', 'a')] {
                let (a, b) = (lo.max(from), hi.min(to));
                if a <= b {
                    let shift = |c: char| char::from(flip as u8 + (c as u8 - from as u8));
                    self.out.push(shift(a));
                    if b != a {
                        self.out.push('-');
                        self.out.push(shift(b));
                    }
                }
            }
        }
        Ok(())
    }

    /// A group, after its `(`; its size.
    fn group(&mut self) -> Result<u64, String> {
        if self.peek() == Some('?') {
            self.at += 1;
            match self.peek() {
                Some(':') => self.at += 1,
                Some('P') | Some('<') => {
                    if self.peek() == Some('P') {
                        self.at += 1;
                    }
                    if self.peek() == Some('=') {
                        return Err("back references (?P=name) are not supported by RE2".into());
                    }
                    if self.peek() != Some('<') {
                        return Err("invalid named capture".into());
                    }
                    self.at += 1;
                    let start = self.at;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        self.at += 1;
                    }
                    if self.at == start || self.peek() != Some('>') {
                        return Err("invalid named capture".into());
                    }
                    self.at += 1;
                }
                Some('=' | '!') => return Err("look-ahead is not supported by RE2".into()),
                _ => {
                    return Err(
                        "flags are supported only at the start of the pattern ((?i), (?s))".into(),
                    )
                }
            }
        }
        // A named group or a plain one: only the language matters, so both become `(?:`.
        self.out.push_str("(?:");
        self.depth += 1;
        let size = self.alternation()?;
        self.depth -= 1;
        if self.peek() != Some(')') {
            return Err("missing closing )".into());
        }
        self.at += 1;
        self.out.push(')');
        Ok(size.max(1))
    }

    /// An escape outside a class; whether a repetition may follow it.
    fn escape(&mut self) -> Result<(bool, u64), String> {
        let Some(c) = self.peek() else {
            return Err("trailing backslash at end of expression".into());
        };
        self.at += 1;
        match c {
            'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
                let (neg, set) = perl(c);
                let _ = write!(self.out, "[{}{set}]", if neg { "^" } else { "" });
                Ok((true, 1))
            }
            'b' | 'B' => {
                self.out.push('\\');
                self.out.push(c);
                Ok((false, 0))
            }
            'A' => {
                self.out.push('^');
                Ok((false, 0))
            }
            'z' => {
                self.out.push('$');
                Ok((false, 0))
            }
            'Q' => {
                // Literal text up to \E (or the end). A repetition after it repeats its last
                // character, in RE2 as in the translation.
                let start = self.at;
                while self.at < self.chars.len() && !self.peek_str("\\E") {
                    self.lit(self.chars[self.at])?;
                    self.at += 1;
                }
                let n = (self.at - start) as u64;
                if self.peek_str("\\E") {
                    self.at += 2;
                }
                if n == 0 {
                    return Err("an empty \\Q...\\E is not supported".into());
                }
                Ok((true, n))
            }
            _ => {
                let ch = self.escaped_char(c)?;
                self.lit(ch)?;
                Ok((true, 1))
            }
        }
    }

    /// The character an escape that stands for one character means (`\n`, `\x41`, `\.`...).
    fn escaped_char(&mut self, c: char) -> Result<char, String> {
        Ok(match c {
            'a' => '\u{7}',
            'f' => '\u{c}',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'v' => '\u{b}',
            'x' => self.hex()?,
            '0'..='7' => {
                // Octal: \0, \012 (RE2 reads up to three digits after a leading 0... or \1-\7
                // as back references, which it refuses).
                if c != '0' {
                    return Err(format!("back references (\\{c}) are not supported by RE2"));
                }
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && self.peek().is_some_and(|d| ('0'..='7').contains(&d)) {
                    v = v * 8 + self.peek().and_then(|d| d.to_digit(8)).unwrap_or(0);
                    self.at += 1;
                    n += 1;
                }
                char::from_u32(v).expect("an octal escape is a character")
            }
            'p' | 'P' => {
                return Err("Unicode classes (\\p) are not supported in rollout rules".into())
            }
            'C' => return Err("\\C (any byte) is not supported".into()),
            c if c.is_ascii_punctuation() => c,
            c => return Err(format!("invalid escape sequence: \\{c}")),
        })
    }

    /// `\xHH` or `\x{H...}`.
    fn hex(&mut self) -> Result<char, String> {
        let digits: String = if self.peek() == Some('{') {
            self.at += 1;
            let start = self.at;
            while self.peek().is_some_and(|c| c != '}') {
                self.at += 1;
            }
            if self.peek() != Some('}') {
                return Err("invalid escape sequence: \\x{ without }".into());
            }
            let d: String = self.chars[start..self.at].iter().collect();
            self.at += 1;
            d
        } else {
            let d: String = self.chars[self.at..(self.at + 2).min(self.chars.len())]
                .iter()
                .collect();
            self.at += d.chars().count();
            if d.chars().count() != 2 {
                return Err("invalid escape sequence: \\x needs two hex digits".into());
            }
            d
        };
        u32::from_str_radix(&digits, 16)
            .ok()
            .filter(|_| !digits.is_empty() && digits.len() <= 8)
            .and_then(char::from_u32)
            .ok_or_else(|| format!("invalid escape sequence: \\x{{{digits}}}"))
    }

    /// A bracketed class, after its `[`.
    fn class(&mut self) -> Result<(), String> {
        self.out.push('[');
        if self.peek() == Some('^') {
            self.at += 1;
            self.out.push('^');
        }
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return Err("missing closing ]".into());
            };
            if c == ']' && !first {
                self.at += 1;
                self.out.push(']');
                return Ok(());
            }
            first = false;
            if self.peek_str("[:") && self.posix()? {
                continue;
            }
            if c == '\\' && matches!(self.chars.get(self.at + 1), Some('d' | 'w' | 's')) {
                let (_, set) = perl(self.chars[self.at + 1]);
                self.out.push_str(set);
                self.at += 2;
                continue;
            }
            if c == '\\' && matches!(self.chars.get(self.at + 1), Some('D' | 'W' | 'S')) {
                return Err("negated Perl classes inside a class ([\\D]) are not supported".into());
            }
            let lo = self.class_char()?;
            if self.peek() == Some('-') && self.chars.get(self.at + 1).is_some_and(|&n| n != ']') {
                self.at += 1;
                let hi = self.class_char()?;
                if hi < lo {
                    return Err(format!("invalid character class range: {lo}-{hi}"));
                }
                self.class_range(lo, hi)?;
            } else {
                self.class_range(lo, lo)?;
            }
        }
    }

    /// One character of a class (a literal or an escape).
    fn class_char(&mut self) -> Result<char, String> {
        let c = self.peek().ok_or("missing closing ]")?;
        self.at += 1;
        if c != '\\' {
            return Ok(c);
        }
        let e = self.peek().ok_or("missing closing ]")?;
        self.at += 1;
        match e {
            'b' | 'B' | 'A' | 'z' | 'Q' => Err(format!("invalid escape in a class: \\{e}")),
            e => self.escaped_char(e),
        }
    }

    /// `[:name:]` inside a class: its ASCII ranges. `false` when no `:]` follows: then the `[`
    /// is a literal, as RE2 reads it.
    fn posix(&mut self) -> Result<bool, String> {
        let rest: String = self.chars[self.at + 2..].iter().collect();
        let Some(end) = rest.find(":]") else {
            return Ok(false);
        };
        let name = &rest[..end];
        let (neg, name) = match name.strip_prefix('^') {
            Some(n) => (true, n),
            None => (false, name),
        };
        if neg {
            return Err("negated POSIX classes ([[:^alpha:]]) are not supported".into());
        }
        let set = match name {
            "alnum" => "0-9A-Za-z",
            "alpha" => "A-Za-z",
            "ascii" => "\\x00-\\x7F",
            "blank" => "\\t ",
            "cntrl" => "\\x00-\\x1F\\x7F",
            "digit" => "0-9",
            "graph" => "!-~",
            "lower" | "upper" if self.fold => "A-Za-z",
            "lower" => "a-z",
            "print" => " -~",
            "punct" => "!-\\/:-@\\[-`{-~",
            "space" => "\\t\\n\\v\\f\\r ",
            "upper" => "A-Z",
            "word" => "0-9A-Za-z_",
            "xdigit" => "0-9A-Fa-f",
            other => return Err(format!("invalid character class range: [:{other}:]")),
        };
        self.out.push_str(set);
        self.at += 2 + rest[..end].chars().count() + 2;
        Ok(true)
    }
}

/// The ASCII set of a Perl class, and whether it is negated.
fn perl(c: char) -> (bool, &'static str) {
    match c {
        'd' => (false, "0-9"),
        'D' => (true, "0-9"),
        'w' => (false, "0-9A-Za-z_"),
        'W' => (true, "0-9A-Za-z_"),
        's' => (false, "\\t\\n\\f\\r "),
        _ => (true, "\\t\\n\\f\\r "),
    }
}

fn too_large() -> String {
    format!("the pattern is too large (more than {MAX_SIZE} atoms with its repetitions expanded)")
}

/// A literal character outside a class, as both syntaxes read it literally.
fn literal(out: &mut String, c: char, js: bool) {
    if "\\^$.|?*+()[]{}".contains(c) {
        out.push('\\');
        out.push(c);
    } else {
        push_char(out, c, js);
    }
}

/// A literal character inside a class. Rust's syntax also reads `~~`, `&&` and `--` inside a
/// class as set operations (RE2 and ECMAScript without `v` read literals): escaped there.
fn class_literal(out: &mut String, c: char, js: bool) {
    if "\\]^-[".contains(c) || (!js && "~&".contains(c)) {
        out.push('\\');
        out.push(c);
    } else {
        push_char(out, c, js);
    }
}

/// Control, space-like and line-terminator characters as escapes (`\u{..}` in ECMAScript,
/// `\x{..}` in Rust's syntax, which would otherwise read `#` and spaces under `(?x)`), the
/// rest as themselves.
fn push_char(out: &mut String, c: char, js: bool) {
    if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
        let _ = write!(out, "\\{}{{{:x}}}", if js { 'u' } else { 'x' }, c as u32);
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(p: &str) -> String {
        Pattern::parse(p)
            .map(|p| p.js)
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn translations() {
        assert_eq!(js("@rikstv\\.no$"), "@rikstv\\.no$");
        assert_eq!(js("a.b"), "a[^\\n]b");
        assert_eq!(js("(?s)a.b"), "a[^]b");
        assert_eq!(js("\\d+\\s\\w*"), "[0-9]+[\\t\\n\\f\\r ][0-9A-Za-z_]*");
        assert_eq!(js("[\\d_]"), "[0-9_]");
        assert_eq!(js("[[:alpha:]]+"), "[A-Za-z]+");
        assert_eq!(js("(?P<user>ab)|c"), "(?:ab)|c");
        assert_eq!(js("a{2,3}?"), "a{2,3}?");
        assert_eq!(js("a{,3}"), "a\\{,3\\}");
        assert_eq!(js("x{"), "x\\{");
        assert_eq!(js("\\Qa.b\\E+"), "a\\.b+");
        assert_eq!(js("\\x{1F680}|\\x41"), "🚀|A");
        assert_eq!(js("\\Aab\\z"), "^ab$");
        assert_eq!(js("/"), "/");
        assert_eq!(Pattern::parse("(?s)a.\\n").unwrap().rust, "a(?s:.)\\x{a}");
        assert_eq!(js("(?i)aB1"), "[aA][bB]1");
        assert_eq!(js("(?i)[a-cX]"), "[a-cA-CXx]");
        assert_eq!(js("(?i)[[:lower:]]"), "[A-Za-z]");
        assert_eq!(Pattern::parse("(?i)abc").unwrap().js_flags, "u");
    }

    #[test]
    fn refusals() {
        for (p, why) in [
            ("(", "missing closing )"),
            ("a)", "unexpected )"),
            ("*a", "missing argument"),
            ("a**", "missing argument"),
            ("a{1001}", "invalid repeat count"),
            ("a{3,2}", "invalid repeat count"),
            ("[a", "missing closing ]"),
            ("[z-a]", "invalid character class range"),
            ("\\1", "back references"),
            ("(?=a)", "look-ahead"),
            ("a(?i)b", "only at the start"),
            ("(?m)^a", "flag 'm'"),
            ("\\pL", "Unicode classes"),
            ("[\\D]", "negated Perl classes"),
            ("\\", "trailing backslash"),
            ("\\q", "invalid escape"),
            ("[[:foo:]]", "invalid character class range"),
            ("[a--b]", "invalid character class range: a--"),
            ("(a{100}){101}", "too large"),
            ("((a{10}){10}){101}", "too large"),
            ("\\Q\\E*", "empty"),
            ("(?i)é", "ASCII only"),
            ("(?i)[à-ÿ]", "ASCII only"),
            ("(?i)[a-\\x{10FFFF}]", "ASCII only"),
        ] {
            let e = Pattern::parse(p).unwrap_err();
            assert!(e.contains(why), "{p}: {e}");
        }
    }

    #[cfg(feature = "regex-lite")]
    #[test]
    fn the_router_reads_what_the_pattern_means() {
        // (pattern, text, whether RE2 matches): regex-lite on the normalized pattern agrees.
        for (p, text, want) in [
            ("@rikstv\\.no$", "a@rikstv.no", true),
            ("@rikstv\\.no$", "a@rikstv.no\n", false),
            ("(?i)^A.b", "axb", true),
            ("^a.b", "a\nb", false),
            ("(?s)^a.b", "a\nb", true),
            ("[[:digit:]]{2,}", "x12", true),
            ("\\Qa+b\\E", "a+b", true),
            ("x{", "x{", true),
            ("a{,3}", "a{,3}", true),
            ("[\\w-]+$", "é", false),
            ("\\s", "\u{a0}", false),
            ("\\x{1F680}", "go 🚀", true),
            ("\\d", "٣", false),
            ("[~~]", "~", true),
            ("[a&&b]", "&", true),
            ("[--b]", "a", true),
            ("[--b]", "c", false),
            ("[[:]", ":", true),
            ("[[:]", "[", true),
            ("(a{100}){100}", "aa", false),
            ("(?i)k", "K", true),
            ("(?i)k", "\u{212a}", false),
            ("(?i)[^a]", "A", false),
            ("(?i)[W-Y]", "x", true),
            ("(?i)[W-Y]", "z", false),
        ] {
            let pat = Pattern::parse(p).unwrap();
            let re = regex_lite::Regex::new(&pat.rust)
                .unwrap_or_else(|e| panic!("{p} -> {}: {e}", pat.rust));
            assert_eq!(re.is_match(text), want, "{p} on {text:?} (as {})", pat.rust);
        }
    }
}
