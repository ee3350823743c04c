//! Traefik's `constraints` option for Consul Catalog, Nomad and ECS: an expression over a
//! service's tags that decides whether the service gets any route.
//!
//! ```
//! use betaroute_router::provider::constraints::Constraints;
//!
//! let only_public = Constraints::parse("Tag(`public`) && !TagRegex(`^env=dev`)")?;
//! assert!(only_public.matches(&["public".to_string(), "env=prod".to_string()]));
//! assert!(!only_public.matches(&["public".to_string(), "env=dev1".to_string()]));
//! # Ok::<(), betaroute_router::provider::constraints::ConstraintError>(())
//! ```
//!
//! Traefik (`pkg/provider/constraints/constraints_tags.go`) parses the expression with Go's
//! own expression parser (through `vulcand/predicate`), so the accepted syntax is Go's:
//! `Tag("a")`, `TagRegex("a=.*")`, `!`, `&&` (binding tighter than `||`), parentheses,
//! strings in double quotes (Go escapes) or backquotes, spaces and newlines where Go allows
//! them. `TagRegex` is Go's `regexp.MatchString`: RE2 syntax, unanchored. The empty
//! expression matches every service.
//!
//! # Design choices
//! - The whole expression is checked when it is parsed, where Traefik finds some mistakes
//!   only when it first matches a service; the messages name the problem and its byte offset.
//! - An invalid `TagRegex` pattern matches no tag, as in Traefik (which compiles it at each
//!   match and reads a failure as "no match"); [`Constraints::invalid_patterns`] lists them so
//!   the caller can warn.

use std::fmt;

use regex::Regex;

use crate::config::template::{go_regex, go_unquote};

/// A parsed constraint expression; the default, like an empty one, keeps every service.
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    expr: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for ConstraintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "constraints: {} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for ConstraintError {}

impl Constraints {
    pub fn parse(expr: &str) -> Result<Constraints, ConstraintError> {
        if expr.is_empty() {
            return Ok(Constraints { expr: None });
        }
        let tokens = lex(expr)?;
        let syntax = Parser { tokens, cur: 0 }.parse_all()?;
        match evaluate_node(&syntax)? {
            Val::Matcher(expr) => Ok(Constraints { expr: Some(expr) }),
            other => Err(error(
                syntax.pos(),
                format!(
                    "the expression must be a Tag or TagRegex matcher, not {}",
                    other.describe()
                ),
            )),
        }
    }

    /// Whether a service with these tags is kept.
    pub fn matches(&self, tags: &[String]) -> bool {
        self.expr.as_ref().is_none_or(|expr| expr.matches(tags))
    }

    /// Whether the expression is empty, and so keeps every service.
    pub fn is_empty(&self) -> bool {
        self.expr.is_none()
    }

    /// `TagRegex` patterns that do not compile, with why: they match no tag.
    pub fn invalid_patterns(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(expr) = &self.expr {
            expr.collect_invalid(&mut out);
        }
        out
    }
}

#[derive(Debug, Clone)]
enum Expr {
    Tag(String),
    TagRegex {
        pattern: String,
        compiled: Result<Regex, String>,
    },
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    fn matches(&self, tags: &[String]) -> bool {
        match self {
            Expr::Tag(name) => tags.iter().any(|tag| tag == name),
            Expr::TagRegex { compiled, .. } => compiled
                .as_ref()
                .is_ok_and(|re| tags.iter().any(|tag| re.is_match(tag))),
            Expr::Not(a) => !a.matches(tags),
            Expr::And(a, b) => a.matches(tags) && b.matches(tags),
            Expr::Or(a, b) => a.matches(tags) || b.matches(tags),
        }
    }

    fn collect_invalid(&self, out: &mut Vec<(String, String)>) {
        match self {
            Expr::Tag(_) => {}
            Expr::TagRegex { pattern, compiled } => {
                if let Err(e) = compiled {
                    out.push((pattern.clone(), e.clone()));
                }
            }
            Expr::Not(a) => a.collect_invalid(out),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.collect_invalid(out);
                b.collect_invalid(out);
            }
        }
    }
}

fn error(offset: usize, message: impl Into<String>) -> ConstraintError {
    ConstraintError {
        offset,
        message: message.into(),
    }
}

// ------------------------------------------------------------------------------------------
// Lexer: the part of Go's scanner an expression uses.
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lit {
    Str,
    Int,
    Float,
    Imag,
    Char,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// A literal: its kind, and its value (decoded for strings, as written otherwise).
    Lit(Lit, String),
    /// An operator or punctuation: `&&`, `(`, `,`, ...
    Op(&'static str),
    /// A newline where Go inserts a semicolon, which ends the expression.
    Newline,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
}

impl Token {
    fn describe(&self) -> String {
        match &self.tok {
            Tok::Ident(name) => format!("identifier {name}"),
            Tok::Lit(Lit::Str, value) => format!("string {value:?}"),
            Tok::Lit(_, text) => format!("literal {text}"),
            Tok::Op(op) => format!("'{op}'"),
            Tok::Newline => "newline".to_string(),
            Tok::Eof => "EOF".to_string(),
        }
    }

    /// Whether Go inserts a semicolon at a newline after this token.
    fn ends_statement(&self) -> bool {
        matches!(self.tok, Tok::Ident(_) | Tok::Lit(..) | Tok::Op(")" | "]"))
    }
}

/// Longest first, so `&&` is not read as two `&`.
const OPERATORS: &[&str] = &[
    "&&", "||", "&^", "<<", ">>", "<-", "==", "!=", "<=", ">=", "!", "<", ">", "+", "-", "*", "/",
    "%", "&", "|", "^", "(", ")", ",", ".", "[", "]",
];

fn lex(input: &str) -> Result<Vec<Token>, ConstraintError> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut pos = 0;
    let newline = |tokens: &mut Vec<Token>, at: usize| {
        if tokens.last().is_some_and(Token::ends_statement) {
            tokens.push(Token {
                tok: Tok::Newline,
                pos: at,
            });
        }
    };
    while let Some(c) = input[pos..].chars().next() {
        let rest = &input[pos..];
        if c == '\n' {
            newline(&mut tokens, pos);
            pos += 1;
        } else if c.is_whitespace() {
            pos += c.len_utf8();
        } else if rest.starts_with("//") {
            // A line comment ends at the newline, which still counts.
            pos += rest.find('\n').unwrap_or(rest.len());
        } else if let Some(comment) = rest.strip_prefix("/*") {
            let end = comment
                .find("*/")
                .ok_or_else(|| error(pos, "comment not terminated"))?;
            if comment[..end].contains('\n') {
                newline(&mut tokens, pos);
            }
            pos += end + 4;
        } else {
            let (tok, len) = lex_token(rest, pos)?;
            tokens.push(Token { tok, pos });
            pos += len;
        }
    }
    tokens.push(Token {
        tok: Tok::Eof,
        pos: input.len(),
    });
    Ok(tokens)
}

/// One token at the start of `rest` (which starts at byte `pos`): it and its length.
fn lex_token(rest: &str, pos: usize) -> Result<(Tok, usize), ConstraintError> {
    let c = rest.chars().next().unwrap_or('\0');
    if c == '_' || c.is_alphabetic() {
        let len = rest
            .find(|c: char| !(c == '_' || c.is_alphanumeric()))
            .unwrap_or(rest.len());
        return Ok((Tok::Ident(rest[..len].to_string()), len));
    }
    if c.is_ascii_digit() || c == '.' && rest[1..].starts_with(|d: char| d.is_ascii_digit()) {
        return Ok(lex_number(rest));
    }
    match c {
        '"' => lex_string(rest, pos, '"'),
        '`' => lex_string(rest, pos, '`'),
        '\'' => {
            let len = rest[1..]
                .find('\'')
                .map(|end| end + 2)
                .ok_or_else(|| error(pos, "rune literal not terminated"))?;
            Ok((Tok::Lit(Lit::Char, rest[..len].to_string()), len))
        }
        _ => match OPERATORS.iter().find(|op| rest.starts_with(**op)) {
            Some(op) => Ok((Tok::Op(op), op.len())),
            None => Err(error(pos, format!("unexpected character {c:?}"))),
        },
    }
}

fn lex_number(rest: &str) -> (Tok, usize) {
    let bytes = rest.as_bytes();
    let hex = rest.len() > 1 && bytes[0] == b'0' && bytes[1].eq_ignore_ascii_case(&b'x');
    let mut len = 0;
    while len < bytes.len() {
        let b = bytes[len];
        let sign_after_exponent = matches!(b, b'+' | b'-')
            && len > 0
            && (matches!(bytes[len - 1], b'p' | b'P')
                || !hex && matches!(bytes[len - 1], b'e' | b'E'));
        if !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || sign_after_exponent) {
            break;
        }
        len += 1;
    }
    let text = &rest[..len];
    let kind = if text.ends_with('i') {
        Lit::Imag
    } else if text.contains('.') || text.contains(['p', 'P']) || !hex && text.contains(['e', 'E']) {
        Lit::Float
    } else {
        Lit::Int
    };
    (Tok::Lit(kind, text.to_string()), len)
}

fn lex_string(rest: &str, pos: usize, quote: char) -> Result<(Tok, usize), ConstraintError> {
    let mut escaped = false;
    for (i, c) in rest.char_indices().skip(1) {
        match c {
            '\n' if quote == '"' => break,
            '\\' if quote == '"' && !escaped => {
                escaped = true;
                continue;
            }
            c if c == quote && !escaped => {
                let len = i + 1;
                let value = go_unquote(&rest[..len])
                    .map_err(|e| error(pos, format!("bad string literal: {e}")))?;
                return Ok((Tok::Lit(Lit::Str, value), len));
            }
            _ => {}
        }
        escaped = false;
    }
    let kind = if quote == '"' { "string" } else { "raw string" };
    Err(error(pos, format!("{kind} literal not terminated")))
}

// ------------------------------------------------------------------------------------------
// Parser: Go's expression grammar, as go/parser.ParseExpr reads it.
// ------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Syntax {
    Ident(usize, String),
    Lit(usize, Lit, String),
    Call {
        pos: usize,
        fun: Box<Syntax>,
        args: Vec<Syntax>,
    },
    Selector(usize, Box<Syntax>, String),
    Index(usize),
    Paren(usize, Box<Syntax>),
    Unary(usize, &'static str, Box<Syntax>),
    Binary(usize, &'static str, Box<Syntax>, Box<Syntax>),
}

impl Syntax {
    fn pos(&self) -> usize {
        match self {
            Syntax::Ident(pos, _)
            | Syntax::Lit(pos, ..)
            | Syntax::Call { pos, .. }
            | Syntax::Selector(pos, ..)
            | Syntax::Index(pos)
            | Syntax::Paren(pos, _)
            | Syntax::Unary(pos, ..)
            | Syntax::Binary(pos, ..) => *pos,
        }
    }
}

/// Go's binary operator precedences.
fn precedence(op: &str) -> Option<u8> {
    Some(match op {
        "||" => 1,
        "&&" => 2,
        "==" | "!=" | "<" | "<=" | ">" | ">=" => 3,
        "+" | "-" | "|" | "^" => 4,
        "*" | "/" | "%" | "<<" | ">>" | "&" | "&^" => 5,
        _ => return None,
    })
}

/// Deepest nesting of parentheses and unary operators accepted, to bound the recursion.
const MAX_DEPTH: usize = 100;

struct Parser {
    tokens: Vec<Token>,
    cur: usize,
}

type PResult<T> = Result<T, ConstraintError>;

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.cur.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        self.cur += 1;
        token
    }

    fn expect(&mut self, op: &'static str) -> PResult<Token> {
        let token = self.next();
        if token.tok != Tok::Op(op) {
            return Err(error(
                token.pos,
                format!("expected '{op}', found {}", token.describe()),
            ));
        }
        Ok(token)
    }

    /// The expression, then at most the newline Go inserts at its end, then EOF.
    fn parse_all(mut self) -> PResult<Syntax> {
        let syntax = self.binary(1, 0)?;
        let after_newline = self.peek().tok == Tok::Newline;
        if after_newline {
            self.next();
        }
        let token = self.next();
        if token.tok == Tok::Eof {
            return Ok(syntax);
        }
        let message = if after_newline {
            // Go ends an expression at a newline after an operand: `&&` must end the line.
            format!(
                "the expression ends at the newline before {}; put operators at line ends",
                token.describe()
            )
        } else {
            format!("expected end of expression, found {}", token.describe())
        };
        Err(error(token.pos, message))
    }

    fn binary(&mut self, min_prec: u8, depth: usize) -> PResult<Syntax> {
        let mut left = self.unary(depth)?;
        loop {
            let Tok::Op(op) = self.peek().tok else {
                return Ok(left);
            };
            let Some(prec) = precedence(op).filter(|p| *p >= min_prec) else {
                return Ok(left);
            };
            let pos = self.next().pos;
            let right = self.binary(prec + 1, depth)?;
            left = Syntax::Binary(pos, op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self, depth: usize) -> PResult<Syntax> {
        if depth > MAX_DEPTH {
            return Err(error(self.peek().pos, "expression nested too deeply"));
        }
        match self.peek().tok {
            Tok::Op(op @ ("!" | "-" | "+" | "^" | "*" | "&" | "<-")) => {
                let pos = self.next().pos;
                let operand = self.unary(depth + 1)?;
                Ok(Syntax::Unary(pos, op, Box::new(operand)))
            }
            _ => self.primary(depth),
        }
    }

    fn primary(&mut self, depth: usize) -> PResult<Syntax> {
        let token = self.next();
        let mut node = match token.tok {
            Tok::Ident(name) => Syntax::Ident(token.pos, name),
            Tok::Lit(kind, value) => Syntax::Lit(token.pos, kind, value),
            Tok::Op("(") => {
                let inner = self.binary(1, depth + 1)?;
                self.expect(")")?;
                Syntax::Paren(token.pos, Box::new(inner))
            }
            _ => {
                return Err(error(
                    token.pos,
                    format!("expected operand, found {}", token.describe()),
                ))
            }
        };
        loop {
            match self.peek().tok {
                Tok::Op(".") => {
                    // A selector starts where its operand does, so `a.Tag(` is at `a`.
                    let pos = node.pos();
                    self.next();
                    let name = self.next();
                    let Tok::Ident(name) = name.tok else {
                        return Err(error(
                            name.pos,
                            format!("expected selector, found {}", name.describe()),
                        ));
                    };
                    node = Syntax::Selector(pos, Box::new(node), name);
                }
                Tok::Op("(") => {
                    let pos = node.pos();
                    self.next();
                    let args = self.arguments(depth)?;
                    node = Syntax::Call {
                        pos,
                        fun: Box::new(node),
                        args,
                    };
                }
                Tok::Op("[") => {
                    let pos = self.next().pos;
                    self.binary(1, depth + 1)?;
                    self.expect("]")?;
                    node = Syntax::Index(pos);
                }
                _ => return Ok(node),
            }
        }
    }

    /// A call's arguments after its `(`: expressions separated by commas, a trailing comma
    /// allowed, up to the `)`.
    fn arguments(&mut self, depth: usize) -> PResult<Vec<Syntax>> {
        let mut args = Vec::new();
        while self.peek().tok != Tok::Op(")") {
            args.push(self.binary(1, depth + 1)?);
            if self.peek().tok != Tok::Op(",") {
                break;
            }
            self.next();
        }
        let close = self.next();
        if close.tok != Tok::Op(")") {
            return Err(error(
                close.pos,
                format!("expected ')' in argument list, found {}", close.describe()),
            ));
        }
        Ok(args)
    }
}

// ------------------------------------------------------------------------------------------
// Evaluation into matchers, as vulcand/predicate does with Traefik's definitions.
// ------------------------------------------------------------------------------------------

const MATCHERS: &str = "Tag, TagRegex";

enum Val {
    Matcher(Expr),
    Str(String),
    Number(String),
}

impl Val {
    fn describe(&self) -> String {
        match self {
            Val::Matcher(_) => "a matcher".to_string(),
            Val::Str(s) => format!("the string {s:?}"),
            Val::Number(n) => format!("the number {n}"),
        }
    }
}

/// An operand of `!`, `&&` and `||`: a matcher, or a literal that will be refused.
fn evaluate_node(node: &Syntax) -> PResult<Val> {
    match node {
        Syntax::Binary(pos, op, x, y) => {
            let (x_pos, y_pos) = (x.pos(), y.pos());
            let (x, y) = (evaluate_node(x)?, evaluate_node(y)?);
            let join: fn(Box<Expr>, Box<Expr>) -> Expr = match *op {
                "&&" => Expr::And,
                "||" => Expr::Or,
                _ => return Err(error(*pos, format!("{op} is not supported"))),
            };
            Ok(Val::Matcher(join(
                Box::new(matcher_operand(x, x_pos, op)?),
                Box::new(matcher_operand(y, y_pos, op)?),
            )))
        }
        Syntax::Paren(_, inner) => evaluate_node(inner),
        Syntax::Unary(pos, op, x) => {
            if *op != "!" {
                return Err(error(*pos, format!("{op} is not supported")));
            }
            let x_pos = x.pos();
            let operand = matcher_operand(evaluate_node(x)?, x_pos, op)?;
            Ok(Val::Matcher(Expr::Not(Box::new(operand))))
        }
        other => evaluate_expr(other),
    }
}

fn matcher_operand(val: Val, pos: usize, op: &str) -> PResult<Expr> {
    match val {
        Val::Matcher(expr) => Ok(expr),
        other => Err(error(
            pos,
            format!(
                "the operands of {op} must be matchers, not {}",
                other.describe()
            ),
        )),
    }
}

/// A value: a literal, or a matcher call.
fn evaluate_expr(node: &Syntax) -> PResult<Val> {
    match node {
        Syntax::Lit(_, Lit::Str, value) => Ok(Val::Str(value.clone())),
        Syntax::Lit(_, Lit::Int | Lit::Float, text) => Ok(Val::Number(text.clone())),
        Syntax::Lit(pos, kind, _) => Err(error(
            *pos,
            format!("unsupported function argument type: {kind:?}"),
        )),
        Syntax::Ident(pos, name) => Err(error(*pos, format!("{name} is not defined"))),
        Syntax::Selector(pos, ..) => Err(error(
            *pos,
            format!("{} is not defined", selector_name(node).unwrap_or_default()),
        )),
        Syntax::Index(pos) => Err(error(*pos, "properties are not supported")),
        Syntax::Call { pos, fun, args } => evaluate_call(*pos, fun, args),
        Syntax::Paren(pos, _) | Syntax::Unary(pos, ..) | Syntax::Binary(pos, ..) => Err(error(
            *pos,
            "an argument must be a string literal, not an expression",
        )),
    }
}

fn selector_name(node: &Syntax) -> Option<String> {
    match node {
        Syntax::Ident(_, name) => Some(name.clone()),
        Syntax::Selector(_, x, name) => Some(format!("{}.{name}", selector_name(x)?)),
        _ => None,
    }
}

fn evaluate_call(pos: usize, fun: &Syntax, args: &[Syntax]) -> PResult<Val> {
    let Some(name) = selector_name(fun) else {
        return Err(error(pos, "expected a matcher name before '('"));
    };
    if name != "Tag" && name != "TagRegex" {
        return Err(error(
            pos,
            format!("unsupported function: {name} (valid: {MATCHERS})"),
        ));
    }
    let values = args
        .iter()
        .map(evaluate_expr)
        .collect::<PResult<Vec<Val>>>()?;
    let value = match values.as_slice() {
        [Val::Str(value)] => value.clone(),
        [other] => {
            return Err(error(
                args[0].pos(),
                format!("{name} takes a string, not {}", other.describe()),
            ))
        }
        _ => {
            return Err(error(
                pos,
                format!(
                    "{name} takes exactly one string argument, got {}",
                    values.len()
                ),
            ))
        }
    };
    Ok(Val::Matcher(if name == "Tag" {
        Expr::Tag(value)
    } else {
        Expr::TagRegex {
            compiled: go_regex(&value),
            pattern: value,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(items: &[&str]) -> Vec<String> {
        items.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn traefik_match_tags_table() {
        // pkg/provider/constraints/constraints_tags_test.go, TestMatchTags.
        let hello_world = tags(&["hello", "world"]);
        let cases: &[(&str, &[String], Option<bool>)] = &[
            (r#"Tag("world")"#, &hello_world, Some(true)),
            (r#"Tag("worlds")"#, &hello_world, Some(false)),
            (r#"!Tag("world")"#, &hello_world, Some(false)),
            (r#"Tag("hello") && Tag("world")"#, &hello_world, Some(true)),
            (
                r#"Tag("hello") && Tag("worlds")"#,
                &hello_world,
                Some(false),
            ),
            (
                r#"Tag("hello") && !Tag("world")"#,
                &hello_world,
                Some(false),
            ),
            (r#"Tag("hello") || Tag( "world")"#, &hello_world, Some(true)),
            (
                r#"Tag( "worlds") || Tag("hello")"#,
                &hello_world,
                Some(true),
            ),
            (r#"Tag("hello") || !Tag("world")"#, &hello_world, Some(true)),
            ("Tag()", &hello_world, None),
            (r#"Foo("hello")"#, &hello_world, None),
            (r#"Tag("hello")"#, &[], Some(false)),
            ("", &[], Some(true)),
            (r#"TagRegex("hel\\w+")"#, &hello_world, Some(true)),
            (r#"TagRegex("hell\\w+s")"#, &hello_world, Some(false)),
            (r#"!TagRegex("hel\\w+")"#, &hello_world, Some(false)),
        ];
        for (expr, tags, want) in cases {
            let got = Constraints::parse(expr).map(|c| c.matches(tags));
            match want {
                Some(want) => assert_eq!(got, Ok(*want), "{expr}"),
                None => assert!(got.is_err(), "{expr}: {got:?}"),
            }
        }
    }

    #[test]
    fn go_expression_syntax() {
        let a = tags(&["a", "env=prod", "a.tag.name=foo"]);
        let cases: &[(&str, bool)] = &[
            ("Tag(`a.tag.name=foo`)", true),
            ("!Tag(`a.tag.name=foo`)", false),
            ("Tag(`a`) && Tag(`env=prod`)", true),
            // && binds tighter than ||.
            ("Tag(`a`) || Tag(`b`) && Tag(`c`)", true),
            ("(Tag(`a`) || Tag(`b`)) && Tag(`c`)", false),
            ("!!Tag(`a`)", true),
            ("!(Tag(`a`) && Tag(`b`))", true),
            ("Tag(\"\\x61\")", true),
            ("Tag(`a`,)", true),
            // Unanchored, as Go's regexp.MatchString.
            ("TagRegex(`nv=pr`)", true),
            ("TagRegex(`^env=(prod|dev)$`)", true),
            ("TagRegex(`^nv`)", false),
            // Newlines where Go allows them, and comments.
            ("Tag(`a`) &&\n  Tag(`env=prod`)\n", true),
            ("Tag(`a`) /* the a tag */ || Tag(`b`) // or b", true),
            // An invalid pattern matches nothing, as in Traefik.
            ("TagRegex(`(`)", false),
            ("!TagRegex(`(`)", true),
        ];
        for (expr, want) in cases {
            let constraints = Constraints::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(constraints.matches(&a), *want, "{expr}");
        }
        let constraints = Constraints::parse("TagRegex(`(`) || Tag(`x`)").unwrap();
        assert_eq!(constraints.invalid_patterns().len(), 1);
        assert!(Constraints::parse("").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_problem_and_its_offset() {
        let cases: &[(&str, usize, &str)] = &[
            ("Tag()", 0, "Tag takes exactly one string argument, got 0"),
            (
                r#"Tag("a", "b")"#,
                0,
                "Tag takes exactly one string argument, got 2",
            ),
            ("Tag(1)", 4, "Tag takes a string, not the number 1"),
            (
                r#"Foo("hello")"#,
                0,
                "unsupported function: Foo (valid: Tag, TagRegex)",
            ),
            (
                "Label(`a=b`)",
                0,
                "unsupported function: Label (valid: Tag, TagRegex)",
            ),
            ("x || a.Tag(`b`)", 0, "x is not defined"),
            (
                "Tag(`a`) || a.Tag(`b`)",
                12,
                "unsupported function: a.Tag (valid: Tag, TagRegex)",
            ),
            ("Tag(`a`) == Tag(`b`)", 9, "== is not supported"),
            ("-Tag(`a`)", 0, "- is not supported"),
            (
                "`a`",
                0,
                r#"the expression must be a Tag or TagRegex matcher, not the string "a""#,
            ),
            (
                "Tag(`a`) && `b`",
                12,
                r#"the operands of && must be matchers, not the string "b""#,
            ),
            (
                "!`b`",
                1,
                r#"the operands of ! must be matchers, not the string "b""#,
            ),
            ("Tag('a')", 4, "unsupported function argument type: Char"),
            (
                "Tag((`a`))",
                4,
                "an argument must be a string literal, not an expression",
            ),
            ("Tag(`a`)[0]", 8, "properties are not supported"),
            ("Tag(`a`", 7, "expected ')' in argument list, found EOF"),
            ("Tag(`a`) &&", 11, "expected operand, found EOF"),
            ("   ", 3, "expected operand, found EOF"),
            (
                "Tag(`a`)\n&& Tag(`b`)",
                9,
                "the expression ends at the newline before '&&'; put operators at line ends",
            ),
            (
                "Tag(`a`) Tag(`b`)",
                9,
                "expected end of expression, found identifier Tag",
            ),
            ("Tag(`a", 4, "raw string literal not terminated"),
            ("Tag(\"a)", 4, "string literal not terminated"),
            ("Tag(\"\\q\")", 4, "bad string literal: invalid syntax"),
            ("Tag(`a`) # x", 9, "unexpected character '#'"),
            ("Tag(`a`) /* x", 9, "comment not terminated"),
        ];
        for (expr, offset, message) in cases {
            let err = Constraints::parse(expr).unwrap_err();
            assert_eq!(
                (err.offset, err.message.as_str()),
                (*offset, *message),
                "{expr}"
            );
        }
        assert_eq!(
            Constraints::parse("Foo()").unwrap_err().to_string(),
            "constraints: unsupported function: Foo (valid: Tag, TagRegex) (at byte 0)"
        );
        let deep = "!".repeat(500) + "Tag(`a`)";
        assert!(Constraints::parse(&deep).is_err());
    }
}
