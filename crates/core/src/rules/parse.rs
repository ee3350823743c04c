//! Parser for Traefik v3 rules: `Host(`a`) && (PathPrefix(`/b`) || !Header("X", "y"))`.
//!
//! Traefik evaluates rules as Go expressions (vulcand/predicate over go/parser): `||` binds looser
//! than `&&`, `!` applies to the operand that follows, values are Go string literals (raw in
//! backticks, or interpreted in double quotes with Go escapes). Matcher names are accepted in the
//! casings Traefik registers: as written (`PathPrefix`), lower (`pathprefix`), upper
//! (`PATHPREFIX`) and title (`Pathprefix`). Errors carry the byte span of the problem.

use std::fmt;
use std::ops::Range;

/// A parsed rule, before matchers are compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Call(Call),
}

/// One matcher call: canonical name, arguments, and where it stands in the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: &'static str,
    pub args: Vec<String>,
    /// Span of the whole call (name to closing parenthesis).
    pub span: Range<usize>,
    /// Span of each argument literal.
    pub arg_spans: Vec<Range<usize>>,
}

/// The matchers of Traefik v3's HTTP syntax, with the argument counts each accepts.
pub const MATCHERS: [(&str, &[usize]); 11] = [
    ("ClientIP", &[1]),
    ("Method", &[1]),
    ("Host", &[1]),
    ("HostRegexp", &[1]),
    ("Path", &[1]),
    ("PathRegexp", &[1]),
    ("PathPrefix", &[1]),
    ("Header", &[2]),
    ("HeaderRegexp", &[2]),
    ("Query", &[1, 2]),
    ("QueryRegexp", &[1, 2]),
];

/// What is wrong with a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleErrorKind {
    Empty,
    UnexpectedChar(char),
    UnexpectedToken {
        found: String,
        expected: &'static str,
    },
    UnexpectedEnd {
        expected: &'static str,
    },
    UnterminatedString,
    BadEscape(String),
    UnknownMatcher(String),
    ArgCount {
        matcher: &'static str,
        got: usize,
        expected: &'static [usize],
    },
    EmptyArgument {
        matcher: &'static str,
    },
    /// A value the matcher cannot use (bad regexp, IP, path, host...).
    InvalidValue {
        matcher: &'static str,
        message: String,
    },
}

/// A rule error: its kind and the byte span in the rule it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub kind: RuleErrorKind,
    pub span: Range<usize>,
}

impl fmt::Display for RuleErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleErrorKind::Empty => f.write_str("the rule is empty"),
            RuleErrorKind::UnexpectedChar(c) => write!(f, "unexpected character {c:?}"),
            RuleErrorKind::UnexpectedToken { found, expected } => {
                write!(f, "expected {expected}, found {found}")
            }
            RuleErrorKind::UnexpectedEnd { expected } => {
                write!(f, "unexpected end of rule, expected {expected}")
            }
            RuleErrorKind::UnterminatedString => f.write_str("unterminated string literal"),
            RuleErrorKind::BadEscape(e) => {
                write!(f, "invalid escape sequence {e} in a double-quoted string")
            }
            RuleErrorKind::UnknownMatcher(m) => {
                write!(f, "unknown matcher {m:?} (expected one of ")?;
                for (i, (name, _)) in MATCHERS.iter().enumerate() {
                    write!(f, "{}{name}", if i == 0 { "" } else { ", " })?;
                }
                f.write_str(")")
            }
            RuleErrorKind::ArgCount {
                matcher,
                got,
                expected,
            } => {
                let want: Vec<String> = expected.iter().map(|n| n.to_string()).collect();
                write!(
                    f,
                    "{matcher} takes {} argument(s), got {got}",
                    want.join(" or ")
                )
            }
            RuleErrorKind::EmptyArgument { matcher } => {
                write!(f, "{matcher} has an empty argument")
            }
            RuleErrorKind::InvalidValue { matcher, message } => write!(f, "{matcher}: {message}"),
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at bytes {}..{}",
            self.kind, self.span.start, self.span.end
        )
    }
}

impl std::error::Error for RuleError {}

impl RuleError {
    pub fn new(kind: RuleErrorKind, span: Range<usize>) -> RuleError {
        RuleError { kind, span }
    }

    /// The rule on one line and a caret line under the span, for terminals:
    /// ```text
    /// Host(`a`) && Pth(`/`)
    ///              ^^^
    /// ```
    pub fn caret(&self, rule: &str) -> String {
        // Columns count characters, not bytes, so the caret lands under multi-byte text too.
        let start = rule
            .get(..self.span.start)
            .map_or(self.span.start, |s| s.chars().count());
        let len = rule
            .get(self.span.clone())
            .map_or(1, |s| s.chars().count())
            .max(1);
        let line: String = rule
            .chars()
            .map(|c| {
                if c == '\n' || c == '\r' || c == '\t' {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        format!("{line}\n{}{}", " ".repeat(start), "^".repeat(len))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Not,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("{s:?}"),
        Tok::Str(_) => "a string".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::And => "\"&&\"".into(),
        Tok::Or => "\"||\"".into(),
        Tok::Not => "\"!\"".into(),
    }
}

fn lex(rule: &str) -> Result<Vec<(Tok, Range<usize>)>, RuleError> {
    let bytes = rule.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => (out.push((Tok::LParen, i..i + 1)), i += 1).1,
            b')' => (out.push((Tok::RParen, i..i + 1)), i += 1).1,
            b',' => (out.push((Tok::Comma, i..i + 1)), i += 1).1,
            b'!' => (out.push((Tok::Not, i..i + 1)), i += 1).1,
            b'&' | b'|' => {
                if bytes.get(i + 1) != Some(&c) {
                    return Err(RuleError::new(
                        RuleErrorKind::UnexpectedChar(c as char),
                        i..i + 1,
                    ));
                }
                out.push((if c == b'&' { Tok::And } else { Tok::Or }, i..i + 2));
                i += 2;
            }
            b'`' => {
                let end = rule[i + 1..].find('`').ok_or_else(|| {
                    RuleError::new(RuleErrorKind::UnterminatedString, i..rule.len())
                })?;
                // Go drops carriage returns from raw strings.
                let value = rule[i + 1..i + 1 + end].replace('\r', "");
                i += end + 2;
                out.push((Tok::Str(value), start..i));
            }
            b'"' => {
                let (value, len) = interpreted(&rule[i..], i)?;
                i += len;
                out.push((Tok::Str(value), start..i));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push((Tok::Ident(rule[start..i].to_owned()), start..i));
            }
            _ => {
                let ch = rule[i..].chars().next().unwrap_or('?');
                return Err(RuleError::new(
                    RuleErrorKind::UnexpectedChar(ch),
                    i..i + ch.len_utf8(),
                ));
            }
        }
    }
    Ok(out)
}

/// Decodes a Go interpreted string literal starting at `s[0] == '"'`. Returns the value and the
/// literal's length in bytes. `base` is the literal's offset in the rule, for error spans.
fn interpreted(s: &str, base: usize) -> Result<(String, usize), RuleError> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                // An escape cut short by the end of the rule must not point past it (found by
                // fuzzing: `"\62` at the very end).
                let bad = |len: usize| {
                    let end = (i + len).min(s.len());
                    RuleError::new(
                        RuleErrorKind::BadEscape(s.get(i..end).unwrap_or("\\").to_owned()),
                        base + i..base + end,
                    )
                };
                match e {
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0C'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'v' => out.push('\x0B'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    'x' | 'u' | 'U' | '0'..='7' => {
                        let (digits, radix) = match e {
                            'x' => (2, 16),
                            'u' => (4, 16),
                            'U' => (8, 16),
                            _ => (2, 8), // one octal digit already read
                        };
                        let mut text = if radix == 8 {
                            e.to_string()
                        } else {
                            String::new()
                        };
                        for _ in 0..digits {
                            match chars.next() {
                                Some((_, d)) if d.is_digit(radix) => text.push(d),
                                _ => return Err(bad(2 + text.len())),
                            }
                        }
                        let v = u32::from_str_radix(&text, radix).map_err(|_| bad(2 + digits))?;
                        match e {
                            // \x and octal escapes are bytes; only ASCII bytes can stand alone in
                            // a Rust string, which covers every realistic rule.
                            'x' | '0'..='7' if v < 0x80 => out.push(v as u8 as char),
                            'u' | 'U' => {
                                out.push(char::from_u32(v).ok_or_else(|| bad(2 + digits))?)
                            }
                            _ => return Err(bad(2 + text.len())),
                        }
                    }
                    _ => return Err(bad(1 + e.len_utf8())),
                }
            }
            c => out.push(c),
        }
    }
    Err(RuleError::new(
        RuleErrorKind::UnterminatedString,
        base..base + s.find('\n').unwrap_or(s.len()),
    ))
}

/// Resolves a matcher name in any casing Traefik accepts.
fn matcher_name(ident: &str) -> Option<(&'static str, &'static [usize])> {
    MATCHERS.iter().copied().find(|(name, _)| {
        let lower = name.to_ascii_lowercase();
        let mut title = lower.clone();
        title[..1].make_ascii_uppercase();
        ident == *name || ident == lower || ident == name.to_ascii_uppercase() || ident == title
    })
}

struct Parser<'a> {
    toks: Vec<(Tok, Range<usize>)>,
    pos: usize,
    len: usize,
    _rule: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn next(&mut self, expected: &'static str) -> Result<(Tok, Range<usize>), RuleError> {
        let t = self.toks.get(self.pos).cloned().ok_or_else(|| {
            RuleError::new(
                RuleErrorKind::UnexpectedEnd { expected },
                self.len..self.len,
            )
        })?;
        self.pos += 1;
        Ok(t)
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        let expected = "a matcher, \"!\" or \"(\"";
        match self.next(expected)? {
            (Tok::Not, _) => Ok(Expr::Not(Box::new(self.unary()?))),
            (Tok::LParen, _) => {
                let inner = self.or()?;
                match self.next("\")\"")? {
                    (Tok::RParen, _) => Ok(inner),
                    (t, span) => Err(unexpected(&t, span, "\"&&\", \"||\" or \")\"")),
                }
            }
            (Tok::Ident(ident), name_span) => {
                let (name, _) = matcher_name(&ident).ok_or_else(|| {
                    RuleError::new(
                        RuleErrorKind::UnknownMatcher(ident.clone()),
                        name_span.clone(),
                    )
                })?;
                match self.next("\"(\"")? {
                    (Tok::LParen, _) => {}
                    (t, span) => return Err(unexpected(&t, span, "\"(\"")),
                }
                let mut args = Vec::new();
                let mut arg_spans = Vec::new();
                loop {
                    match self.next("a string or \")\"")? {
                        (Tok::RParen, end) => {
                            return Ok(Expr::Call(Call {
                                name,
                                args,
                                span: name_span.start..end.end,
                                arg_spans,
                            }));
                        }
                        (Tok::Str(s), span) => {
                            args.push(s);
                            arg_spans.push(span);
                            match self.next("\",\" or \")\"")? {
                                (Tok::Comma, _) => {}
                                (Tok::RParen, end) => {
                                    return Ok(Expr::Call(Call {
                                        name,
                                        args,
                                        span: name_span.start..end.end,
                                        arg_spans,
                                    }));
                                }
                                (t, span) => return Err(unexpected(&t, span, "\",\" or \")\"")),
                            }
                        }
                        (t, span) => {
                            return Err(unexpected(
                                &t,
                                span,
                                "a string in backticks or double quotes",
                            ))
                        }
                    }
                }
            }
            (t, span) => Err(unexpected(&t, span, expected)),
        }
    }
}

fn unexpected(t: &Tok, span: Range<usize>, expected: &'static str) -> RuleError {
    RuleError::new(
        RuleErrorKind::UnexpectedToken {
            found: describe(t),
            expected,
        },
        span,
    )
}

/// Parses a rule into an expression tree. Argument counts and values are checked when the rule is
/// compiled ([`super::Rule::compile`]), where each matcher knows what it needs.
pub fn parse(rule: &str) -> Result<Expr, RuleError> {
    let toks = lex(rule)?;
    if toks.is_empty() {
        return Err(RuleError::new(RuleErrorKind::Empty, 0..rule.len()));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        len: rule.len(),
        _rule: rule,
    };
    let expr = p.or()?;
    if let Some((t, span)) = p.toks.get(p.pos).cloned() {
        return Err(unexpected(
            &t,
            span,
            "\"&&\", \"||\" or the end of the rule",
        ));
    }
    Ok(expr)
}
