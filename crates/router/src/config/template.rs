//! Go's `text/template`, as Traefik runs it: a provider's `defaultRule` (for example
//! ``Host(`{{ normalize .Name }}`)``) over the model `{Name string, Labels map[string]string}`,
//! and, in the file provider, whole configuration files. The functions are Go's built-ins,
//! the Sprig functions Traefik configurations use, and Traefik's `normalize`.
//!
//! ```
//! use std::collections::BTreeMap;
//! use betaroute_router::config::template::{Data, Template};
//!
//! let rule = Template::parse("Host(`{{ normalize .Name }}.{{ index .Labels \"domain\" }}`)")?;
//! let labels = BTreeMap::from([("domain".to_string(), Data::Str("example.com".into()))]);
//! let model = Data::Struct(vec![
//!     ("Name".into(), Data::Str("dev/api".into())),
//!     ("Labels".into(), Data::Map(labels)),
//! ]);
//! assert_eq!(rule.execute(&model)?, "Host(`dev-api.example.com`)");
//! # Ok::<(), betaroute_router::config::template::TemplateError>(())
//! ```
//!
//! # Design choices
//! - Parsing follows Go's lexer and parser token by token, so the same text is accepted or
//!   refused with the same message; every error also carries the byte offset of the token or
//!   node it is about.
//! - A function name is resolved when the template is parsed, as Go does: an unknown name,
//!   including a Sprig function betaroute does not implement, is refused before anything runs.
//! - Values keep the Go types that change results: `int` (literals, `len`, `atoi`) is distinct
//!   from `int64` (Sprig arithmetic), so `repeat (add 1 2) "x"` fails as it does in Go; a
//!   [`Data::Map`] whose values are all strings is a `map[string]string` (Labels), whose missing
//!   key is `<no value>` as a field and `""` through `index`, and which Sprig's dictionary
//!   functions refuse, as Go's type check does.
//! - The environment is read through [`Options::with_env`], so `env` and `expandenv` are
//!   deterministic under test.
//! - Execution has limits Go does not have: output size, template call depth, nesting depth
//!   and list sizes, so a runaway template fails with an error instead of exhausting memory or
//!   the stack.
//!
//! # Missing features, with reasons
//! - Methods, function values and `call` on them: data here has no methods. `call` parses and
//!   fails when run, as it does in Go on a value that is not a function.
//! - Complex numbers: they appear in no configuration; a complex literal is a parse error.
//! - Custom delimiters and `missingkey` options: Traefik sets neither.
//! - `printf`'s `%#v`, `%p`, `%[n]` argument indexes and `*` widths: no configuration needs them.
//! - Sprig's other functions (dates, crypto, semver, random, network, paths, ...): refused by
//!   name at parse time, never silently empty.
//! - Bytes that are not UTF-8 (Go strings may hold them): `\x` escapes must form UTF-8, and
//!   Sprig functions that cut strings at a byte offset replace a split character with U+FFFD.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use regex::Regex;

// ------------------------------------------------------------------------------------------
// Public API
// ------------------------------------------------------------------------------------------

/// The data a template runs over, with Go's distinction between a struct (fixed fields; an
/// unknown field is an error) and a map (any key; a missing key is "no value").
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Nil,
    Bool(bool),
    /// A Go `int`.
    Int(i64),
    Float(f64),
    Str(String),
    /// A Go slice: `[]string` when every element is a string, `[]interface {}` otherwise.
    List(Vec<Data>),
    /// A Go map with string keys: `map[string]string` when every value is a string (or the map
    /// is empty), `map[string]interface {}` otherwise.
    Map(BTreeMap<String, Data>),
    /// A Go struct value: its fields in declaration order.
    Struct(Vec<(String, Data)>),
}

impl From<&serde_json::Value> for Data {
    /// JSON as Go's `encoding/json` decodes it into `interface{}`, except that integers stay
    /// integers (Go would make them `float64`).
    fn from(value: &serde_json::Value) -> Data {
        match value {
            serde_json::Value::Null => Data::Nil,
            serde_json::Value::Bool(b) => Data::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Data::Int(i),
                None => Data::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Data::Str(s.clone()),
            serde_json::Value::Array(items) => Data::List(items.iter().map(Data::from).collect()),
            serde_json::Value::Object(map) => Data::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Data::from(v)))
                    .collect(),
            ),
        }
    }
}

type EnvFn = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Which Traefik caller the template is for: the two differ in the name and in `split`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// A provider's `defaultRule`: Sprig's `split` (a map `_0`, `_1`, ...).
    DefaultRule,
    /// The file provider, which replaces `split` with Go's `strings.Split(s, sep)`.
    File,
}

/// How a template is parsed and executed.
#[derive(Clone)]
pub struct Options {
    name: String,
    dialect: Dialect,
    env: Arc<EnvFn>,
}

impl Options {
    /// A provider's `defaultRule`, named `defaultRule` in messages as in Traefik.
    pub fn default_rule() -> Options {
        Options {
            name: "defaultRule".to_string(),
            dialect: Dialect::DefaultRule,
            env: Arc::new(|name| std::env::var(name).ok()),
        }
    }

    /// A file provider's configuration file, named after the file, where `split` is Go's
    /// `strings.Split(s, sep)` as Traefik installs it.
    pub fn file_provider(file_name: &str) -> Options {
        Options {
            name: file_name.to_string(),
            dialect: Dialect::File,
            ..Options::default_rule()
        }
    }

    /// Reads the environment (for `env` and `expandenv`) through `lookup` instead of the
    /// process environment; `None` is an unset variable, which Go reads as "".
    pub fn with_env(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Options {
        self.env = Arc::new(lookup);
        self
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::default_rule()
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("name", &self.name)
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

/// A parsed template: the main one and those it defines, ready to execute any number of times.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    trees: BTreeMap<String, Vec<Node>>,
    options: Options,
}

/// A parse or execution error: Go's message, and the byte offset in the template text of the
/// token or node it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template: {} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for TemplateError {}

impl Template {
    /// Parses `text` as a `defaultRule` ([`Options::default_rule`]).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        Template::parse_with(text, Options::default())
    }

    pub fn parse_with(text: &str, options: Options) -> Result<Template, TemplateError> {
        let mut parser = Parser::new(lex(text), options.dialect);
        let root = parser.parse_top()?;
        parser.add(&options.name, root, 0)?;
        Ok(Template {
            name: options.name.clone(),
            trees: parser.trees,
            options,
        })
    }

    /// The template's name, as it appears in execution errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the template over `data` (Go's dot and `$`) and returns what it printed.
    pub fn execute(&self, data: &Data) -> Result<String, TemplateError> {
        let dot = Value::from_data(data);
        let mut exec = Exec::new(self, dot.clone());
        let root = self.trees.get(&self.name).map_or(&[][..], |t| &t[..]);
        match exec.walk_list(&dot, root) {
            Ok(()) | Err(Flow::Break) | Err(Flow::Continue) => Ok(exec.out),
            Err(Flow::Fail(e)) => Err(e),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Lexer: Go's text/template/parse lexer, state for state.
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Error,
    Bool,
    /// A printable ASCII character inside an action, such as `,`.
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    Str,
    Text,
    Variable,
    // Keywords.
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl Tok {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            Tok::Block
                | Tok::Break
                | Tok::Continue
                | Tok::Dot
                | Tok::Define
                | Tok::Else
                | Tok::End
                | Tok::If
                | Tok::Nil
                | Tok::Range
                | Tok::Template
                | Tok::With
        )
    }
}

fn keyword(word: &str) -> Option<Tok> {
    Some(match word {
        "block" => Tok::Block,
        "break" => Tok::Break,
        "continue" => Tok::Continue,
        "define" => Tok::Define,
        "else" => Tok::Else,
        "end" => Tok::End,
        "if" => Tok::If,
        "nil" => Tok::Nil,
        "range" => Tok::Range,
        "template" => Tok::Template,
        "with" => Tok::With,
        _ => return None,
    })
}

#[derive(Debug, Clone)]
struct Item {
    tok: Tok,
    pos: usize,
    val: String,
}

impl Item {
    /// How Go's parser names a token in "unexpected X in Y".
    fn describe(&self) -> String {
        match self.tok {
            Tok::Eof => "EOF".to_string(),
            Tok::Error => self.val.clone(),
            t if t.is_keyword() => format!("<{}>", self.val),
            _ if self.val.chars().count() > 10 => {
                let head: String = self.val.chars().take(10).collect();
                format!("{}...", go_quote(&head))
            }
            _ => go_quote(&self.val),
        }
    }
}

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";

/// The lexer's states, as Go's state functions.
enum St {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    Inside,
    Space,
    Identifier,
    Field,
    Variable,
    Char,
    Number,
    Quote,
    RawQuote,
    Done,
}

struct Lexer<'s> {
    input: &'s str,
    pos: usize,
    start: usize,
    paren_depth: i32,
    action_start: usize,
    items: Vec<Item>,
}

/// Splits `input` into Go's items, ending with EOF or the first lexical error.
fn lex(input: &str) -> Vec<Item> {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        paren_depth: 0,
        action_start: 0,
        items: Vec::new(),
    };
    let mut state = St::Text;
    loop {
        state = match state {
            St::Text => l.text(),
            St::LeftDelim => l.left_delim(),
            St::Comment => l.comment(),
            St::RightDelim => l.right_delim(),
            St::Inside => l.inside_action(),
            St::Space => l.space(),
            St::Identifier => l.identifier(),
            St::Field => l.field_or_variable(Tok::Field),
            St::Variable => l.field_or_variable(Tok::Variable),
            St::Char => l.char_constant(),
            St::Number => l.number(),
            St::Quote => l.quote(),
            St::RawQuote => l.raw_quote(),
            St::Done => return l.items,
        };
    }
}

/// Go's trim markers: `{{- ` and ` -}}`, where the space may be any of " \t\r\n".
fn is_space_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_space(c: char) -> bool {
    c.is_ascii() && is_space_byte(c as u8)
}

fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space_byte(b[1])
}

fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space_byte(b[0]) && b[1] == b'-'
}

fn left_trim_length(s: &str) -> usize {
    s.len() - s.trim_start_matches(is_space).len()
}

/// Go's `isAlphaNumeric`: underscore, Unicode letters and decimal digits.
fn is_alphanumeric(c: char) -> bool {
    if c.is_ascii() {
        c == '_' || c.is_ascii_alphanumeric()
    } else {
        is_letter(c) || is_decimal_digit(c)
    }
}

impl<'s> Lexer<'s> {
    fn rest(&self) -> &'s str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn emit(&mut self, tok: Tok) {
        self.items.push(Item {
            tok,
            pos: self.start,
            val: self.input[self.start..self.pos].to_string(),
        });
        self.start = self.pos;
    }

    fn error(&mut self, pos: usize, message: String) -> St {
        self.items.push(Item {
            tok: Tok::Error,
            pos,
            val: message,
        });
        St::Done
    }

    fn text(&mut self) -> St {
        let Some(x) = self.rest().find(LEFT_DELIM) else {
            self.pos = self.input.len();
            if self.pos > self.start {
                self.emit(Tok::Text);
            }
            self.emit(Tok::Eof);
            return St::Done;
        };
        let delim = self.pos + x;
        let mut end = delim;
        if has_left_trim_marker(&self.input[delim + LEFT_DELIM.len()..]) {
            end = self.start
                + self.input[self.start..delim]
                    .trim_end_matches(is_space)
                    .len();
        }
        if end > self.start {
            self.pos = end;
            self.emit(Tok::Text);
        }
        self.pos = delim;
        self.start = delim;
        St::LeftDelim
    }

    fn left_delim(&mut self) -> St {
        self.action_start = self.pos;
        self.pos += LEFT_DELIM.len();
        let after_marker = if has_left_trim_marker(self.rest()) {
            2
        } else {
            0
        };
        if self.rest()[after_marker..].starts_with("/*") {
            self.pos += after_marker;
            self.start = self.pos;
            return St::Comment;
        }
        self.emit(Tok::LeftDelim);
        self.pos += after_marker;
        self.start = self.pos;
        self.paren_depth = 0;
        St::Inside
    }

    fn comment(&mut self) -> St {
        self.pos += 2;
        let Some(i) = self.rest().find("*/") else {
            return self.error(self.action_start, "unclosed comment".into());
        };
        self.pos += i + 2;
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.error(self.pos, "comment ends before closing delimiter".into());
        }
        if trim {
            self.pos += 2;
        }
        self.pos += RIGHT_DELIM.len();
        if trim {
            self.pos += left_trim_length(self.rest());
        }
        self.start = self.pos;
        St::Text
    }

    /// Whether the input is at `}}` or ` -}}`, and whether that is the trimming form.
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if rest.starts_with(RIGHT_DELIM) {
            (true, false)
        } else if has_right_trim_marker(rest) && rest[2..].starts_with(RIGHT_DELIM) {
            (true, true)
        } else {
            (false, false)
        }
    }

    fn right_delim(&mut self) -> St {
        let (_, trim) = self.at_right_delim();
        if trim {
            self.pos += 2;
            self.start = self.pos;
        }
        self.pos += RIGHT_DELIM.len();
        self.emit(Tok::RightDelim);
        if trim {
            self.pos += left_trim_length(self.rest());
            self.start = self.pos;
        }
        St::Text
    }

    fn inside_action(&mut self) -> St {
        if self.at_right_delim().0 {
            if self.paren_depth == 0 {
                return St::RightDelim;
            }
            return self.error(self.start, "unclosed left paren".into());
        }
        let Some(r) = self.next() else {
            return self.error(self.action_start, "unclosed action".into());
        };
        match r {
            c if is_space(c) => {
                // Put the space back: it may start a " -}}".
                self.pos -= 1;
                return St::Space;
            }
            '=' => self.emit(Tok::Assign),
            ':' => {
                if self.next() != Some('=') {
                    return self.error(self.start, "expected :=".into());
                }
                self.emit(Tok::Declare);
            }
            '|' => self.emit(Tok::Pipe),
            '"' => return St::Quote,
            '`' => return St::RawQuote,
            '$' => return St::Variable,
            '\'' => return St::Char,
            '.' => {
                // ".field", unless a digit follows: then '.' starts a number.
                match self.input.as_bytes().get(self.pos) {
                    Some(b) if !b.is_ascii_digit() => return St::Field,
                    _ => {
                        self.pos -= 1;
                        return St::Number;
                    }
                }
            }
            '+' | '-' | '0'..='9' => {
                self.pos -= 1;
                return St::Number;
            }
            c if is_alphanumeric(c) => {
                self.pos -= c.len_utf8();
                return St::Identifier;
            }
            '(' => {
                self.paren_depth += 1;
                self.emit(Tok::LeftParen);
            }
            ')' => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self.error(self.start, "unexpected right paren".into());
                }
                self.emit(Tok::RightParen);
            }
            c if c.is_ascii() && is_print(c) => self.emit(Tok::Char),
            c => {
                let message = format!("unrecognized character in action: {}", sharp_u(c));
                return self.error(self.start, message);
            }
        }
        St::Inside
    }

    fn space(&mut self) -> St {
        let mut spaces = 0;
        while self.peek().is_some_and(is_space) {
            self.next();
            spaces += 1;
        }
        // A " -}}" after the run: its space belongs to the trim marker.
        if has_right_trim_marker(&self.input[self.pos - 1..])
            && self.input[self.pos + 1..].starts_with(RIGHT_DELIM)
        {
            self.pos -= 1;
            if spaces == 1 {
                return St::RightDelim;
            }
        }
        self.emit(Tok::Space);
        St::Inside
    }

    fn identifier(&mut self) -> St {
        while self.peek().is_some_and(is_alphanumeric) {
            self.next();
        }
        if !self.at_terminator() {
            return self.bad_character();
        }
        let word = &self.input[self.start..self.pos];
        let tok = match keyword(word) {
            Some(k) => k,
            None if word == "true" || word == "false" => Tok::Bool,
            None => Tok::Identifier,
        };
        self.emit(tok);
        St::Inside
    }

    /// `.Field` or `$var`; the `.` or `$` has been read.
    fn field_or_variable(&mut self, tok: Tok) -> St {
        if self.at_terminator() {
            self.emit(if tok == Tok::Variable {
                Tok::Variable
            } else {
                Tok::Dot
            });
            return St::Inside;
        }
        while self.peek().is_some_and(is_alphanumeric) {
            self.next();
        }
        if !self.at_terminator() {
            return self.bad_character();
        }
        self.emit(tok);
        St::Inside
    }

    fn bad_character(&mut self) -> St {
        let c = self.peek().unwrap_or('\u{FFFD}');
        let message = format!("bad character {}", sharp_u(c));
        self.error(self.start, message)
    }

    /// Whether an identifier may end here: Go breaks `.X.Y` in two and refuses `$x+2`.
    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(c) => RIGHT_DELIM.starts_with(c),
        }
    }

    fn char_constant(&mut self) -> St {
        loop {
            match self.next() {
                Some('\\') if !matches!(self.next(), None | Some('\n')) => {}
                Some('\'') => break,
                Some('\\') | None | Some('\n') => {
                    return self.error(self.start, "unterminated character constant".into());
                }
                Some(_) => {}
            }
        }
        self.emit(Tok::CharConstant);
        St::Inside
    }

    fn number(&mut self) -> St {
        if !self.scan_number() {
            return self.bad_number();
        }
        if matches!(self.peek(), Some('+' | '-')) {
            // Complex: 1+2i, no spaces, ending in 'i'.
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                return self.bad_number();
            }
            self.emit(Tok::Complex);
        } else {
            self.emit(Tok::Number);
        }
        St::Inside
    }

    fn bad_number(&mut self) -> St {
        let text = go_quote(&self.input[self.start..self.pos]);
        self.error(self.start, format!("bad number syntax: {text}"))
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.next();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    /// Go's deliberately loose number scanner: the parser (strconv) has the last word.
    fn scan_number(&mut self) -> bool {
        const DECIMAL: &str = "0123456789_";
        const HEX: &str = "0123456789abcdefABCDEF_";
        self.accept("+-");
        let mut digits = DECIMAL;
        if self.accept("0") {
            if self.accept("xX") {
                digits = HEX;
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits == DECIMAL && self.accept("eE") {
            self.accept("+-");
            self.accept_run(DECIMAL);
        }
        if digits == HEX && self.accept("pP") {
            self.accept("+-");
            self.accept_run(DECIMAL);
        }
        self.accept("i");
        if self.peek().is_some_and(is_alphanumeric) {
            self.next();
            return false;
        }
        true
    }

    fn quote(&mut self) -> St {
        loop {
            match self.next() {
                Some('\\') if !matches!(self.next(), None | Some('\n')) => {}
                Some('"') => break,
                Some('\\') | None | Some('\n') => {
                    return self.error(self.start, "unterminated quoted string".into());
                }
                Some(_) => {}
            }
        }
        self.emit(Tok::Str);
        St::Inside
    }

    fn raw_quote(&mut self) -> St {
        loop {
            match self.next() {
                None => return self.error(self.start, "unterminated raw quoted string".into()),
                Some('`') => break,
                Some(_) => {}
            }
        }
        self.emit(Tok::RawString);
        St::Inside
    }
}

// ------------------------------------------------------------------------------------------
// Parse tree and parser: Go's text/template/parse, production for production.
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Control),
    With(Control),
    Range(Control),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
struct Control {
    pipe: Pipe,
    list: Vec<Node>,
    else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
struct Pipe {
    pos: usize,
    is_assign: bool,
    decl: Vec<String>,
    cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
struct Command {
    pos: usize,
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
enum Arg {
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    /// `(pipeline).Field` or `function.Field`.
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    /// `$x.Field`: `idents[0]` is the variable, with its `$`.
    Variable {
        pos: usize,
        idents: Vec<String>,
    },
    Function {
        pos: usize,
        def: &'static FuncDef,
    },
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number(usize, Box<Number>),
    Str {
        pos: usize,
        quoted: String,
        text: String,
    },
    Pipe(Box<Pipe>),
}

/// A numeric constant with every Go type it fits, as Go's NumberNode.
#[derive(Debug, Clone)]
struct Number {
    text: String,
    is_int: bool,
    is_uint: bool,
    is_float: bool,
    int: i64,
    float: f64,
}

/// What an item list ends with.
enum Piece {
    Node(Node),
    End(usize),
    Else(usize),
}

impl Piece {
    fn pos(&self) -> Option<usize> {
        match self {
            Piece::End(pos) | Piece::Else(pos) => Some(*pos),
            Piece::Node(_) => None,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Piece::End(_) => "{{end}}",
            Piece::Else(_) => "{{else}}",
            Piece::Node(_) => "node",
        }
    }
}

/// Deepest nesting of control structures and parentheses the parser accepts (Go allows
/// 10000 parentheses; this keeps execution's recursion well inside a thread's stack).
const MAX_PARSE_DEPTH: usize = 100;

type PResult<T> = Result<T, TemplateError>;

struct Parser {
    items: Vec<Item>,
    cur: usize,
    last_pos: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    dialect: Dialect,
    trees: BTreeMap<String, Vec<Node>>,
}

impl Parser {
    fn new(items: Vec<Item>, dialect: Dialect) -> Parser {
        Parser {
            items,
            cur: 0,
            last_pos: 0,
            vars: vec!["$".to_string()],
            range_depth: 0,
            depth: 0,
            dialect,
            trees: BTreeMap::new(),
        }
    }

    fn item(&mut self, i: usize) -> Item {
        let item = self.items[i.min(self.items.len() - 1)].clone();
        self.last_pos = item.pos;
        item
    }

    fn next(&mut self) -> Item {
        self.cur += 1;
        self.item(self.cur - 1)
    }

    fn peek(&mut self) -> Item {
        self.item(self.cur)
    }

    fn backup(&mut self) {
        self.cur -= 1;
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let item = self.next();
            if item.tok != Tok::Space {
                return item;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let item = self.next_non_space();
        self.backup();
        item
    }

    fn error_at<T>(&self, offset: usize, message: impl Into<String>) -> PResult<T> {
        Err(TemplateError {
            offset,
            message: message.into(),
        })
    }

    fn error<T>(&self, message: impl Into<String>) -> PResult<T> {
        self.error_at(self.last_pos, message)
    }

    fn unexpected<T>(&self, item: &Item, context: &str) -> PResult<T> {
        if item.tok == Tok::Error {
            return self.error_at(item.pos, item.val.clone());
        }
        self.error_at(
            item.pos,
            format!("unexpected {} in {context}", item.describe()),
        )
    }

    fn expect(&mut self, tok: Tok, context: &str) -> PResult<Item> {
        let item = self.next_non_space();
        if item.tok != tok {
            return self.unexpected(&item, context);
        }
        Ok(item)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return self.error("max expression depth exceeded");
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Records a template; an empty definition never replaces a non-empty one, and two
    /// non-empty definitions of one name are an error, as in Go.
    fn add(&mut self, name: &str, root: Vec<Node>, pos: usize) -> PResult<()> {
        match self.trees.get(name) {
            Some(existing) if !is_empty_tree(existing) => {
                if !is_empty_tree(&root) {
                    return self.error_at(
                        pos,
                        format!(
                            "template: multiple definition of template {}",
                            go_quote(name)
                        ),
                    );
                }
            }
            _ => {
                self.trees.insert(name.to_string(), root);
            }
        }
        Ok(())
    }

    /// The top level: an item list that also holds `{{define}}`s, up to EOF.
    fn parse_top(&mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        while self.peek().tok != Tok::Eof {
            if self.peek().tok == Tok::LeftDelim {
                let mark = self.cur;
                self.next();
                if self.next_non_space().tok == Tok::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.cur = mark;
            }
            match self.text_or_action()? {
                Piece::Node(node) => root.push(node),
                Piece::End(pos) => return self.error_at(pos, "unexpected {{end}}"),
                Piece::Else(pos) => return self.error_at(pos, "unexpected {{else}}"),
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let name_item = self.next_non_space();
        if !matches!(name_item.tok, Tok::Str | Tok::RawString) {
            return self.unexpected(&name_item, CONTEXT);
        }
        let name = self.unquote(&name_item)?;
        self.expect(Tok::RightDelim, CONTEXT)?;
        let root = self.nested_tree(CONTEXT)?;
        self.add(&name, root, name_item.pos)
    }

    /// The body of a `define` or `block`: a separate tree with its own variables.
    fn nested_tree(&mut self, context: &str) -> PResult<Vec<Node>> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        self.enter()?;
        let (root, end) = self.item_list()?;
        self.leave();
        self.vars = vars;
        self.range_depth = range_depth;
        match end {
            Piece::End(_) => Ok(root),
            other => self.error_at(
                other.pos().unwrap_or(self.last_pos),
                format!("unexpected {} in {context}", other.describe()),
            ),
        }
    }

    /// Text and actions up to an `{{end}}` or `{{else}}`, which is returned separately.
    fn item_list(&mut self) -> PResult<(Vec<Node>, Piece)> {
        let mut list = Vec::new();
        while self.peek_non_space().tok != Tok::Eof {
            match self.text_or_action()? {
                Piece::Node(node) => list.push(node),
                end => return Ok((list, end)),
            }
        }
        self.error("unexpected EOF")
    }

    fn text_or_action(&mut self) -> PResult<Piece> {
        let item = self.next_non_space();
        match item.tok {
            Tok::Text => Ok(Piece::Node(Node::Text(item.val))),
            Tok::LeftDelim => self.action(),
            _ => self.unexpected(&item, "input"),
        }
    }

    fn action(&mut self) -> PResult<Piece> {
        let item = self.next_non_space();
        let node = match item.tok {
            Tok::Block => self.block_control()?,
            Tok::Break => self.loop_control(Node::Break, "{{break}}")?,
            Tok::Continue => self.loop_control(Node::Continue, "{{continue}}")?,
            Tok::Else => return self.else_control(item.pos),
            Tok::End => {
                self.expect(Tok::RightDelim, "end")?;
                return Ok(Piece::End(item.pos));
            }
            Tok::If => Node::If(self.parse_control("if")?),
            Tok::Range => Node::Range(self.parse_control("range")?),
            Tok::Template => self.template_control()?,
            Tok::With => Node::With(self.parse_control("with")?),
            _ => {
                self.backup();
                Node::Action(self.pipeline("command", Tok::RightDelim)?)
            }
        };
        Ok(Piece::Node(node))
    }

    fn loop_control(&mut self, node: Node, context: &str) -> PResult<Node> {
        let item = self.next_non_space();
        if item.tok != Tok::RightDelim {
            return self.unexpected(&item, context);
        }
        if self.range_depth == 0 {
            return self.error(format!("{context} outside {{{{range}}}}"));
        }
        Ok(node)
    }

    fn else_control(&mut self, pos: usize) -> PResult<Piece> {
        // "{{else if" and "{{else with" leave the keyword for parse_control to read.
        let peek = self.peek_non_space();
        if matches!(peek.tok, Tok::If | Tok::With) {
            return Ok(Piece::Else(pos));
        }
        self.expect(Tok::RightDelim, "else")?;
        Ok(Piece::Else(pos))
    }

    fn parse_control(&mut self, context: &str) -> PResult<Control> {
        self.enter()?;
        let vars = self.vars.len();
        let pipe = self.pipeline(context, Tok::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let else_list = match next {
            Piece::Else(_) => Some(self.else_branch(context)?),
            _ => None,
        };
        self.vars.truncate(vars);
        self.leave();
        Ok(Control {
            pipe,
            list,
            else_list,
        })
    }

    /// `{{else}} ... {{end}}`, where `{{else if ...}}` stands for `{{else}}{{if ...}}`
    /// whose `{{end}}` is shared.
    fn else_branch(&mut self, context: &str) -> PResult<Vec<Node>> {
        let peek = self.peek().tok;
        if context == "if" && peek == Tok::If {
            self.next();
            return Ok(vec![Node::If(self.parse_control("if")?)]);
        }
        if context == "with" && peek == Tok::With {
            self.next();
            return Ok(vec![Node::With(self.parse_control("with")?)]);
        }
        let (list, next) = self.item_list()?;
        if !matches!(next, Piece::End(_)) {
            let pos = next.pos().unwrap_or(self.last_pos);
            return self.error_at(pos, format!("expected end; found {}", next.describe()));
        }
        Ok(list)
    }

    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let item = self.next_non_space();
        let name = self.template_name(&item, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, Tok::RightDelim)?;
        let root = self.nested_tree(CONTEXT)?;
        self.add(&name, root, item.pos)?;
        Ok(Node::Template {
            pos: item.pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let item = self.next_non_space();
        let name = self.template_name(&item, CONTEXT)?;
        let pipe = if self.next_non_space().tok == Tok::RightDelim {
            None
        } else {
            self.backup();
            Some(self.pipeline(CONTEXT, Tok::RightDelim)?)
        };
        Ok(Node::Template {
            pos: item.pos,
            name,
            pipe,
        })
    }

    fn template_name(&mut self, item: &Item, context: &str) -> PResult<String> {
        match item.tok {
            Tok::Str | Tok::RawString => self.unquote(item),
            _ => self.unexpected(item, context),
        }
    }

    fn unquote(&self, item: &Item) -> PResult<String> {
        go_unquote(&item.val).or_else(|message| self.error_at(item.pos, message))
    }

    /// Declarations (`$x :=`, `$x =`, `$i, $e :=` in a range) and then commands up to `end`.
    fn pipeline(&mut self, context: &str, end: Tok) -> PResult<Pipe> {
        let pos = self.peek_non_space().pos;
        let mut pipe = Pipe {
            pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        self.declarations(&mut pipe, context)?;
        loop {
            let item = self.next_non_space();
            if item.tok == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match item.tok {
                Tok::Bool
                | Tok::CharConstant
                | Tok::Complex
                | Tok::Dot
                | Tok::Field
                | Tok::Identifier
                | Tok::Number
                | Tok::Nil
                | Tok::RawString
                | Tok::Str
                | Tok::Variable
                | Tok::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&item, context),
            }
        }
    }

    fn declarations(&mut self, pipe: &mut Pipe, context: &str) -> PResult<()> {
        loop {
            let v = self.peek_non_space();
            if v.tok != Tok::Variable {
                return Ok(());
            }
            let at_variable = self.cur;
            self.next();
            let next = self.peek_non_space();
            match next.tok {
                Tok::Assign | Tok::Declare => {
                    pipe.is_assign = next.tok == Tok::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    return Ok(());
                }
                Tok::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().tok {
                            Tok::Variable | Tok::RightDelim | Tok::RightParen => continue,
                            _ => return self.error("range can only initialize variables"),
                        }
                    }
                    return self.error(format!("too many declarations in {context}"));
                }
                _ => {
                    // Not a declaration: "$x" is the first operand.
                    self.cur = at_variable;
                    return Ok(());
                }
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return self.error(format!("missing value for {context}"));
        }
        for (i, cmd) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                cmd.args[0],
                Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::Str { .. }
            ) {
                return self.error_at(
                    cmd.pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                );
            }
        }
        Ok(())
    }

    /// Space-separated operands up to a `|` (consumed) or a closing delimiter (left).
    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                args.push(operand);
            }
            let item = self.next();
            match item.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.backup(),
                Tok::Pipe => {}
                _ => return self.unexpected(&item, "operand"),
            }
            break;
        }
        if args.is_empty() {
            return self.error("empty command");
        }
        Ok(Command { pos, args })
    }

    /// A term followed by field accesses.
    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().tok != Tok::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().tok == Tok::Field {
            let field = self.next().val;
            fields.push(field[1..].to_string());
        }
        Ok(Some(match node {
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable { mut idents, .. } => {
                idents.extend(fields);
                Arg::Variable { pos, idents }
            }
            Arg::Bool(..) | Arg::Str { .. } | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                let term = go_quote(&node.to_string());
                return self.error_at(pos, format!("unexpected . after term {term}"));
            }
            other => Arg::Chain {
                pos,
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let item = self.next_non_space();
        let pos = item.pos;
        Ok(Some(match item.tok {
            Tok::Identifier => Arg::Function {
                pos,
                def: self.function(&item)?,
            },
            Tok::Dot => Arg::Dot(pos),
            Tok::Nil => Arg::Nil(pos),
            Tok::Variable => self.use_var(pos, &item.val)?,
            Tok::Field => Arg::Field {
                pos,
                idents: item.val[1..].split('.').map(str::to_string).collect(),
            },
            Tok::Bool => Arg::Bool(pos, item.val == "true"),
            Tok::CharConstant | Tok::Complex | Tok::Number => {
                let number = new_number(&item).or_else(|m| self.error_at(pos, m))?;
                Arg::Number(pos, Box::new(number))
            }
            Tok::LeftParen => {
                self.enter()?;
                let pipe = self.pipeline("parenthesized pipeline", Tok::RightParen)?;
                self.leave();
                Arg::Pipe(Box::new(pipe))
            }
            Tok::Str | Tok::RawString => Arg::Str {
                pos,
                text: self.unquote(&item)?,
                quoted: item.val,
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }

    fn function(&self, item: &Item) -> PResult<&'static FuncDef> {
        if let Some(def) = lookup_function(&item.val, self.dialect) {
            return Ok(def);
        }
        let mut message = format!("function {} not defined", go_quote(&item.val));
        if SPRIG_NOT_IMPLEMENTED.contains(&item.val.as_str()) {
            message.push_str(" (a Sprig function betaroute does not implement)");
        }
        self.error_at(item.pos, message)
    }

    fn use_var(&self, pos: usize, name: &str) -> PResult<Arg> {
        let idents: Vec<String> = name.split('.').map(str::to_string).collect();
        if !self.vars.contains(&idents[0]) {
            return self.error_at(pos, format!("undefined variable {}", go_quote(&idents[0])));
        }
        Ok(Arg::Variable { pos, idents })
    }
}

/// Whether a tree holds nothing but space: such a definition never replaces another.
fn is_empty_tree(nodes: &[Node]) -> bool {
    nodes.iter().all(|node| match node {
        Node::Text(text) => text.trim().is_empty(),
        _ => false,
    })
}

/// Go's NumberNode: every type a numeric constant fits.
fn new_number(item: &Item) -> Result<Number, String> {
    let text = item.val.as_str();
    let mut n = Number {
        text: text.to_string(),
        is_int: false,
        is_uint: false,
        is_float: false,
        int: 0,
        float: 0.0,
    };
    match item.tok {
        Tok::CharConstant => {
            let (c, tail) = unquote_char(&text[1..], '\'').map_err(|()| "invalid syntax")?;
            if tail != "'" {
                return Err(format!("malformed character constant: {text}"));
            }
            n.is_int = true;
            n.is_uint = true;
            n.is_float = true;
            n.int = i64::from(c);
            n.float = f64::from(c);
            return Ok(n);
        }
        Tok::Complex => return Err("complex numbers are not supported".to_string()),
        _ => {}
    }
    if text.ends_with('i') {
        return Err("complex numbers are not supported".to_string());
    }
    let unsigned = parse_go_uint(text);
    if unsigned.is_some() {
        n.is_uint = true;
    }
    if let Some(i) = parse_go_int(text) {
        n.is_int = true;
        n.int = i;
        if i == 0 {
            // -0 fits a uint too.
            n.is_uint = true;
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float = n.int as f64;
    } else if let Some(u) = unsigned {
        n.is_float = true;
        n.float = u as f64;
    } else if let Some(f) = parse_go_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", go_quote(text)));
        }
        n.is_float = true;
        n.float = f;
        // 2^63 and 2^64 are exact in f64: the ranges of int64 and uint64.
        const TWO_63: f64 = 9_223_372_036_854_775_808.0;
        if f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) {
            n.is_int = true;
            n.int = f as i64;
        }
        if f.fract() == 0.0 && (0.0..2.0 * TWO_63).contains(&f) {
            n.is_uint = true;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!("illegal number syntax: {}", go_quote(text)));
    }
    Ok(n)
}

// Go's String() of parse nodes, for "unexpected . after term" and execution error context.

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => idents.iter().try_for_each(|id| write!(f, ".{id}")),
            Arg::Chain { node, fields, .. } => {
                match **node {
                    Arg::Pipe(_) => write!(f, "({node})")?,
                    _ => write!(f, "{node}")?,
                }
                fields.iter().try_for_each(|id| write!(f, ".{id}"))
            }
            Arg::Variable { idents, .. } => write!(f, "{}", idents.join(".")),
            Arg::Function { def, .. } => write!(f, "{}", def.name),
            Arg::Dot(_) => write!(f, "."),
            Arg::Nil(_) => write!(f, "nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(_, n) => write!(f, "{}", n.text),
            Arg::Str { quoted, .. } => write!(f, "{quoted}"),
            Arg::Pipe(pipe) => write!(f, "{pipe}"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match arg {
                Arg::Pipe(pipe) => write!(f, "({pipe})")?,
                _ => write!(f, "{arg}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}

impl Arg {
    fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Function { pos, .. }
            | Arg::Str { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::Number(pos, _) => *pos,
            Arg::Pipe(pipe) => pipe.pos,
        }
    }
}

// ------------------------------------------------------------------------------------------
// Values: Data with the Go types that change results.
// ------------------------------------------------------------------------------------------

/// The element type of a slice or map, which decides its type name and its zero element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    Str,
    Int,
    Int64,
    Bool,
    Float,
    Any,
}

impl Elem {
    fn of_value(value: &Value) -> Elem {
        match value {
            Value::Str(_) => Elem::Str,
            Value::Int(_) => Elem::Int,
            Value::Int64(_) => Elem::Int64,
            Value::Bool(_) => Elem::Bool,
            Value::Float(_) => Elem::Float,
            _ => Elem::Any,
        }
    }

    /// The common scalar type of `values`, or `interface {}`; `empty` when there are none.
    fn common<'a>(mut values: impl Iterator<Item = &'a Value>, empty: Elem) -> Elem {
        let Some(first) = values.next() else {
            return empty;
        };
        let elem = Elem::of_value(first);
        if values.all(|v| Elem::of_value(v) == elem) {
            elem
        } else {
            Elem::Any
        }
    }

    fn go_name(self) -> &'static str {
        match self {
            Elem::Str => "string",
            Elem::Int => "int",
            Elem::Int64 => "int64",
            Elem::Bool => "bool",
            Elem::Float => "float64",
            Elem::Any => "interface {}",
        }
    }

    fn zero(self) -> Value {
        match self {
            Elem::Str => Value::Str(String::new()),
            Elem::Int => Value::Int(0),
            Elem::Int64 => Value::Int64(0),
            Elem::Bool => Value::Bool(false),
            Elem::Float => Value::Float(0.0),
            Elem::Any => Value::Nil,
        }
    }
}

type MapRef = Rc<RefCell<BTreeMap<String, Value>>>;

#[derive(Debug, Clone)]
enum Value {
    /// Go's nil interface and its invalid value ("no value").
    Nil,
    Bool(bool),
    Int(i64),
    Int64(i64),
    Float(f64),
    Str(String),
    List(Elem, Rc<Vec<Value>>),
    /// Shared and mutable, as Go maps are: Sprig's `set` changes the map in place.
    Map(Elem, MapRef),
    Struct(Rc<Vec<(String, Value)>>),
}

impl Value {
    fn from_data(data: &Data) -> Value {
        match data {
            Data::Nil => Value::Nil,
            Data::Bool(b) => Value::Bool(*b),
            Data::Int(i) => Value::Int(*i),
            Data::Float(f) => Value::Float(*f),
            Data::Str(s) => Value::Str(s.clone()),
            Data::List(items) => {
                let items: Vec<Value> = items.iter().map(Value::from_data).collect();
                Value::list(Elem::common(items.iter(), Elem::Any), items)
            }
            Data::Map(map) => {
                let map: BTreeMap<String, Value> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from_data(v)))
                    .collect();
                Value::map(Elem::common(map.values(), Elem::Str), map)
            }
            Data::Struct(fields) => Value::Struct(Rc::new(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from_data(v)))
                    .collect(),
            )),
        }
    }

    fn list(elem: Elem, items: Vec<Value>) -> Value {
        Value::List(elem, Rc::new(items))
    }

    fn strings(items: impl IntoIterator<Item = String>) -> Value {
        Value::list(Elem::Str, items.into_iter().map(Value::Str).collect())
    }

    fn map(elem: Elem, map: BTreeMap<String, Value>) -> Value {
        Value::Map(elem, Rc::new(RefCell::new(map)))
    }

    /// Go's type name, as reflect prints it.
    fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".to_string(),
            Value::List(elem, _) => format!("[]{}", elem.go_name()),
            Value::Map(elem, _) => format!("map[string]{}", elem.go_name()),
            Value::Struct(fields) if fields.is_empty() => "struct {}".to_string(),
            Value::Struct(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(name, v)| match v {
                        Value::Nil => format!("{name} interface {{}}"),
                        v => format!("{name} {}", v.type_name()),
                    })
                    .collect();
                format!("struct {{ {} }}", fields.join("; "))
            }
            scalar => Elem::of_value(scalar).go_name().to_string(),
        }
    }

    /// Go's reflect.Kind name, which Sprig's list errors print.
    fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::List(..) => "slice",
            Value::Map(..) => "map",
            Value::Struct(_) => "struct",
            scalar => Elem::of_value(scalar).go_name(),
        }
    }

    /// Go's truth: false, 0, nil and empty strings, slices and maps are false.
    fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(_, items) => !items.is_empty(),
            Value::Map(_, map) => !map.borrow().is_empty(),
            Value::Struct(_) => true,
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Value::Str(s) => s,
            _ => "",
        }
    }

    fn as_int(&self) -> i64 {
        match self {
            Value::Int(i) | Value::Int64(i) => *i,
            _ => 0,
        }
    }
}

// ------------------------------------------------------------------------------------------
// Execution: Go's exec.go over the parse tree.
// ------------------------------------------------------------------------------------------

/// The most a template may print: Go has no limit, but a runaway `range` should fail, not
/// exhaust memory.
const MAX_OUTPUT: usize = 64 << 20;
/// Go allows 100000 nested template calls; Rust's stack is smaller than a goroutine's.
const MAX_TEMPLATE_DEPTH: usize = 100;
/// Control structures and template calls nested at once during execution.
const MAX_EXEC_NESTING: usize = 300;
/// Iterations of one `range` over an integer, and elements of a list built by Sprig.
const MAX_ITERATIONS: i64 = 10_000_000;

/// How a walk ends early: `{{break}}`, `{{continue}}`, or an error.
enum Flow {
    Break,
    Continue,
    Fail(TemplateError),
}

type X<T> = Result<T, Flow>;

/// The node being evaluated, for the offset and `at <...>` of an error, as Go's `state.at`.
#[derive(Clone, Copy)]
enum At<'t> {
    Template(&'t Node),
    Pipe(&'t Pipe),
    Cmd(&'t Command),
    Arg(&'t Arg),
}

impl At<'_> {
    fn pos(self) -> usize {
        match self {
            At::Template(Node::Template { pos, .. }) => *pos,
            At::Template(_) => 0,
            At::Pipe(pipe) => pipe.pos,
            At::Cmd(cmd) => cmd.pos,
            At::Arg(arg) => arg.pos(),
        }
    }

    fn context(self) -> String {
        match self {
            At::Template(Node::Template { name, pipe, .. }) => match pipe {
                Some(pipe) => format!("{{{{template {} {pipe}}}}}", go_quote(name)),
                None => format!("{{{{template {}}}}}", go_quote(name)),
            },
            At::Template(_) => String::new(),
            At::Pipe(pipe) => pipe.to_string(),
            At::Cmd(cmd) => cmd.to_string(),
            At::Arg(arg) => arg.to_string(),
        }
    }
}

struct Exec<'t> {
    tmpl: &'t Template,
    /// The template being executed, which changes in `{{template}}`.
    name: &'t str,
    out: String,
    vars: Vec<(String, Value)>,
    depth: usize,
    nesting: usize,
    at: Option<At<'t>>,
}

impl<'t> Exec<'t> {
    fn new(tmpl: &'t Template, dot: Value) -> Exec<'t> {
        Exec {
            tmpl,
            name: &tmpl.name,
            out: String::new(),
            vars: vec![("$".to_string(), dot)],
            depth: 0,
            nesting: 0,
            at: None,
        }
    }

    fn fail(&self, message: impl Into<String>) -> Flow {
        let message = message.into();
        let name = go_quote(self.name);
        Flow::Fail(match self.at {
            Some(at) => TemplateError {
                offset: at.pos(),
                message: format!("executing {name} at <{}>: {message}", at.context()),
            },
            None => TemplateError { offset: 0, message },
        })
    }

    fn write(&mut self, text: &str) -> X<()> {
        if self.out.len() + text.len() > MAX_OUTPUT {
            return Err(self.fail(format!("output exceeds {} MiB", MAX_OUTPUT >> 20)));
        }
        self.out.push_str(text);
        Ok(())
    }

    fn walk_list(&mut self, dot: &Value, list: &'t [Node]) -> X<()> {
        list.iter().try_for_each(|node| self.walk(dot, node))
    }

    fn walk(&mut self, dot: &Value, node: &'t Node) -> X<()> {
        match node {
            Node::Text(text) => self.write(text),
            Node::Action(pipe) => {
                let value = self.eval_pipeline(dot, pipe)?;
                if !pipe.decl.is_empty() {
                    // An action that declares variables prints nothing.
                    return Ok(());
                }
                self.print_value(&value)
            }
            Node::Break => Err(Flow::Break),
            Node::Continue => Err(Flow::Continue),
            _ => self.walk_nested(dot, node),
        }
    }

    fn walk_nested(&mut self, dot: &Value, node: &'t Node) -> X<()> {
        self.nesting += 1;
        let result = if self.nesting > MAX_EXEC_NESTING {
            Err(self.fail(format!(
                "exceeded maximum nesting depth ({MAX_EXEC_NESTING})"
            )))
        } else {
            match node {
                Node::If(control) => self.walk_if_or_with(false, dot, control),
                Node::With(control) => self.walk_if_or_with(true, dot, control),
                Node::Range(control) => self.walk_range(dot, control),
                _ => self.walk_template(dot, node),
            }
        };
        self.nesting -= 1;
        result
    }

    /// Runs `body`, then drops the variables it declared: they live until `{{end}}`.
    fn scoped<T>(&mut self, body: impl FnOnce(&mut Self) -> X<T>) -> X<T> {
        let mark = self.vars.len();
        let result = body(self);
        self.vars.truncate(mark);
        result
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &Value, control: &'t Control) -> X<()> {
        self.scoped(|s| {
            let value = s.eval_pipeline(dot, &control.pipe)?;
            if value.is_true() {
                let dot = if with { &value } else { dot };
                s.walk_list(dot, &control.list)
            } else if let Some(else_list) = &control.else_list {
                s.walk_list(dot, else_list)
            } else {
                Ok(())
            }
        })
    }

    fn walk_range(&mut self, dot: &Value, control: &'t Control) -> X<()> {
        self.scoped(|s| {
            let value = s.eval_pipeline(dot, &control.pipe)?;
            let ran = s.range_over(control, &value)?;
            match (&control.else_list, ran) {
                (Some(else_list), false) => s.walk_list(dot, else_list),
                _ => Ok(()),
            }
        })
    }

    /// Iterates `value`, maps in key order; returns whether there was any element.
    fn range_over(&mut self, control: &'t Control, value: &Value) -> X<bool> {
        let mark = self.vars.len();
        match value {
            Value::List(_, items) => {
                for (i, elem) in items.iter().enumerate() {
                    if self.one_iteration(control, mark, Value::Int(i as i64), elem.clone())? {
                        break;
                    }
                }
                Ok(!items.is_empty())
            }
            Value::Map(_, map) => {
                // A snapshot, as Go sorts the keys first: the body may change the map.
                let entries: Vec<(String, Value)> = map
                    .borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for (key, elem) in &entries {
                    if self.one_iteration(control, mark, Value::Str(key.clone()), elem.clone())? {
                        break;
                    }
                }
                Ok(!entries.is_empty())
            }
            Value::Int(n) | Value::Int64(n) => self.range_over_int(control, mark, value, *n),
            Value::Nil => Ok(false),
            other => Err(self.fail(format!("range can't iterate over {}", fmt_v(other)))),
        }
    }

    fn range_over_int(
        &mut self,
        control: &'t Control,
        mark: usize,
        value: &Value,
        n: i64,
    ) -> X<bool> {
        if control.pipe.decl.len() > 1 {
            return Err(self.fail(format!(
                "can't use {} to iterate over more than one variable",
                fmt_v(value)
            )));
        }
        if n > MAX_ITERATIONS {
            return Err(self.fail(format!(
                "range over {n}: more than {MAX_ITERATIONS} iterations"
            )));
        }
        for i in 0..n {
            let v = match value {
                Value::Int64(_) => Value::Int64(i),
                _ => Value::Int(i),
            };
            if self.one_iteration(control, mark, v.clone(), v)? {
                break;
            }
        }
        Ok(n > 0)
    }

    /// One pass of a range body; returns whether `{{break}}` ended the loop.
    fn one_iteration(
        &mut self,
        control: &'t Control,
        mark: usize,
        index: Value,
        elem: Value,
    ) -> X<bool> {
        let pipe = &control.pipe;
        // One variable gets the element, two get the index (or key) and the element.
        match (pipe.decl.len(), pipe.is_assign) {
            (0, _) => {}
            (1, true) => self.set_var(&pipe.decl[0], elem.clone())?,
            (_, true) => {
                self.set_var(&pipe.decl[0], index)?;
                self.set_var(&pipe.decl[1], elem.clone())?;
            }
            (1, false) => self.set_top_var(1, elem.clone()),
            (_, false) => {
                self.set_top_var(1, elem.clone());
                self.set_top_var(2, index);
            }
        }
        let result = self.walk_list(&elem, &control.list);
        self.vars.truncate(mark);
        match result {
            Ok(()) | Err(Flow::Continue) => Ok(false),
            Err(Flow::Break) => Ok(true),
            Err(fail) => Err(fail),
        }
    }

    fn walk_template(&mut self, dot: &Value, node: &'t Node) -> X<()> {
        let Node::Template { name, pipe, .. } = node else {
            return Ok(());
        };
        self.at = Some(At::Template(node));
        let Some((name, tree)) = self.tmpl.trees.get_key_value(name) else {
            return Err(self.fail(format!("template {} not defined", go_quote(name))));
        };
        if self.depth >= MAX_TEMPLATE_DEPTH {
            return Err(self.fail(format!(
                "exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"
            )));
        }
        // Variables the pipeline declares persist; the callee sees none of them.
        let dot = match pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe)?,
            None => Value::Nil,
        };
        let vars = std::mem::replace(&mut self.vars, vec![("$".to_string(), dot.clone())]);
        let caller = std::mem::replace(&mut self.name, name);
        self.depth += 1;
        let result = self.walk_list(&dot, tree);
        self.depth -= 1;
        self.name = caller;
        self.vars = vars;
        result
    }

    fn print_value(&mut self, value: &Value) -> X<()> {
        match value {
            Value::Nil => self.write("<no value>"),
            value => self.write(&fmt_v(value)),
        }
    }

    fn var_value(&self, name: &str) -> X<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, value)) => Ok(value.clone()),
            None => Err(self.fail(format!("undefined variable: {name}"))),
        }
    }

    fn set_var(&mut self, name: &str, value: Value) -> X<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => Err(self.fail(format!("undefined variable: {name}"))),
        }
    }

    fn set_top_var(&mut self, n: usize, value: Value) {
        let len = self.vars.len();
        self.vars[len - n].1 = value;
    }

    /// Runs the commands, each one's result the last argument of the next, then declares or
    /// assigns the variables.
    fn eval_pipeline(&mut self, dot: &Value, pipe: &'t Pipe) -> X<Value> {
        self.at = Some(At::Pipe(pipe));
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone())?;
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'t Command, last: Option<Value>) -> X<Value> {
        let first = &cmd.args[0];
        let nargs = cmd.args.len();
        match first {
            Arg::Field { idents, .. } => {
                self.at = Some(At::Arg(first));
                return self.eval_field_chain(dot.clone(), idents, nargs, last);
            }
            Arg::Chain { .. } => return self.eval_chain(dot, first, nargs, last),
            Arg::Variable { .. } => return self.eval_variable(first, nargs, last),
            Arg::Function { def, .. } => {
                return self.eval_function(dot, first, def, At::Cmd(cmd), &cmd.args[1..], last)
            }
            Arg::Pipe(pipe) => {
                self.not_a_function(first, nargs, &last)?;
                return self.eval_pipeline(dot, pipe);
            }
            _ => {}
        }
        self.at = Some(At::Arg(first));
        self.not_a_function(first, nargs, &last)?;
        match first {
            Arg::Bool(_, b) => Ok(Value::Bool(*b)),
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Number(_, n) => self.ideal_constant(first, n),
            Arg::Str { text, .. } => Ok(Value::Str(text.clone())),
            _ => Err(self.fail("nil is not a command")),
        }
    }

    fn not_a_function(&self, first: &Arg, nargs: usize, last: &Option<Value>) -> X<()> {
        if nargs > 1 || last.is_some() {
            return Err(self.fail(format!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    /// A constant whose type only its spelling tells: int, or float64 when it has a point or
    /// an exponent.
    fn ideal_constant(&mut self, arg: &'t Arg, n: &Number) -> X<Value> {
        self.at = Some(At::Arg(arg));
        let hex_int = n.text.len() > 2
            && n.text.starts_with('0')
            && n.text[1..].starts_with(['x', 'X'])
            && !n.text.contains(['p', 'P']);
        let looks_float = n.text.contains(['.', 'e', 'E', 'p', 'P']);
        if n.is_float && !hex_int && !n.text.starts_with('\'') && looks_float {
            return Ok(Value::Float(n.float));
        }
        if n.is_int {
            return Ok(Value::Int(n.int));
        }
        Err(self.fail(format!("{} overflows int", n.text)))
    }

    fn eval_chain(
        &mut self,
        dot: &Value,
        chain: &'t Arg,
        nargs: usize,
        last: Option<Value>,
    ) -> X<Value> {
        let Arg::Chain { node, fields, .. } = chain else {
            return Ok(Value::Nil);
        };
        self.at = Some(At::Arg(chain));
        let receiver = self.eval_arg(dot, P::Any, node)?;
        self.eval_field_chain(receiver, fields, nargs, last)
    }

    fn eval_variable(&mut self, var: &'t Arg, nargs: usize, last: Option<Value>) -> X<Value> {
        let Arg::Variable { idents, .. } = var else {
            return Ok(Value::Nil);
        };
        self.at = Some(At::Arg(var));
        let value = self.var_value(&idents[0])?;
        if idents.len() == 1 {
            self.not_a_function(var, nargs, &last)?;
            return Ok(value);
        }
        self.eval_field_chain(value, &idents[1..], nargs, last)
    }

    /// `.A.B.C`: only the last field sees the command's arguments (and may refuse them).
    fn eval_field_chain(
        &mut self,
        receiver: Value,
        idents: &[String],
        nargs: usize,
        last: Option<Value>,
    ) -> X<Value> {
        let (tail, init) = idents.split_last().expect("a field chain has a field");
        let mut receiver = receiver;
        for ident in init {
            receiver = self.eval_field(ident, 0, false, receiver)?;
        }
        self.eval_field(tail, nargs, last.is_some(), receiver)
    }

    fn eval_field(&self, name: &str, nargs: usize, has_last: bool, receiver: Value) -> X<Value> {
        let has_args = nargs > 1 || has_last;
        match &receiver {
            Value::Nil => return Ok(Value::Nil),
            Value::Struct(fields) => {
                if let Some((_, value)) = fields.iter().find(|(field, _)| field == name) {
                    if has_args {
                        return Err(self.fail(format!(
                            "{name} has arguments but cannot be invoked as function"
                        )));
                    }
                    return Ok(value.clone());
                }
            }
            Value::Map(_, map) => {
                if has_args {
                    return Err(self.fail(format!("{name} is not a method but has arguments")));
                }
                return Ok(map.borrow().get(name).cloned().unwrap_or(Value::Nil));
            }
            _ => {}
        }
        Err(self.fail(format!(
            "can't evaluate field {name} in type {}",
            receiver.type_name()
        )))
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        ident: &'t Arg,
        def: &'static FuncDef,
        node: At<'t>,
        args: &'t [Arg],
        last: Option<Value>,
    ) -> X<Value> {
        self.at = Some(At::Arg(ident));
        let name = def.name;
        let num_in = args.len() + usize::from(last.is_some());
        let fixed = def.fixed.len();
        if def.variadic.is_some() && num_in < fixed {
            return Err(self.fail(format!(
                "wrong number of args for {name}: want at least {fixed} got {}",
                args.len()
            )));
        }
        if def.variadic.is_none() && num_in != fixed {
            return Err(self.fail(format!(
                "wrong number of args for {name}: want {fixed} got {num_in}"
            )));
        }
        if let Special::And | Special::Or = def.special {
            return self.and_or(dot, def.special == Special::Or, args, last);
        }
        let mut argv = Vec::with_capacity(num_in);
        for (i, arg) in args.iter().enumerate() {
            argv.push(self.eval_arg(dot, def.param(i), arg)?);
        }
        if let Some(last) = last {
            argv.push(self.validate_type(last, def.param(num_in - 1))?);
        }
        let result = match def.special {
            Special::Call => Err(call_error(args.first(), &argv[0])),
            _ => (def.imp)(
                &Ctx {
                    env: &*self.tmpl.options.env,
                },
                argv,
            ),
        };
        result.map_err(|e| {
            self.at = Some(node);
            self.fail(format!("error calling {name}: {e}"))
        })
    }

    /// `and` and `or` stop at the first argument that decides, as Go's do.
    fn and_or(&mut self, dot: &Value, or: bool, args: &'t [Arg], last: Option<Value>) -> X<Value> {
        let mut value = Value::Nil;
        for arg in args {
            value = self.eval_arg(dot, P::Any, arg)?;
            if value.is_true() == or {
                return Ok(value);
            }
        }
        Ok(last.unwrap_or(value))
    }

    /// An argument for a parameter of type `typ`: a constant must fit it, a value must have it.
    fn eval_arg(&mut self, dot: &Value, typ: P, arg: &'t Arg) -> X<Value> {
        self.at = Some(At::Arg(arg));
        let value = match arg {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) if typ.can_be_nil() => return Ok(typ.nil()),
            Arg::Nil(_) => return Err(self.fail(format!("cannot assign nil to {}", typ.go_name()))),
            Arg::Field { idents, .. } => self.eval_field_chain(dot.clone(), idents, 1, None)?,
            Arg::Variable { .. } => self.eval_variable(arg, 0, None)?,
            Arg::Pipe(pipe) => self.eval_pipeline(dot, pipe)?,
            Arg::Function { def, .. } => {
                self.eval_function(dot, arg, def, At::Arg(arg), &[], None)?
            }
            Arg::Chain { .. } => self.eval_chain(dot, arg, 0, None)?,
            constant => return self.eval_constant(typ, constant),
        };
        self.validate_type(value, typ)
    }

    fn eval_constant(&mut self, typ: P, arg: &'t Arg) -> X<Value> {
        match (typ, arg) {
            (P::Any, Arg::Number(_, n)) => self.ideal_constant(arg, n),
            (P::Any | P::Bool, Arg::Bool(_, b)) => Ok(Value::Bool(*b)),
            (P::Any | P::Str, Arg::Str { text, .. }) => Ok(Value::Str(text.clone())),
            (P::Int, Arg::Number(_, n)) if n.is_int => Ok(Value::Int(n.int)),
            (P::Bool, _) => Err(self.fail(format!("expected bool; found {arg}"))),
            (P::Str, _) => Err(self.fail(format!("expected string; found {arg}"))),
            (P::Int, _) => Err(self.fail(format!("expected integer; found {arg}"))),
            _ => Err(self.fail(format!(
                "can't handle {arg} for arg of type {}",
                typ.go_name()
            ))),
        }
    }

    /// Go's assignability: no conversions, so an int64 is not an int.
    fn validate_type(&self, value: Value, typ: P) -> X<Value> {
        match (typ, &value) {
            (P::Any, _) => Ok(value),
            (P::Dict, Value::Nil) => Ok(typ.nil()),
            (_, Value::Nil) => Err(self.fail(format!("invalid value; expected {}", typ.go_name()))),
            (P::Str, Value::Str(_))
            | (P::Int, Value::Int(_))
            | (P::Bool, Value::Bool(_))
            | (P::Dict, Value::Map(Elem::Any, _)) => Ok(value),
            _ => Err(self.fail(format!(
                "wrong type for value; expected {}; got {}",
                typ.go_name(),
                value.type_name()
            ))),
        }
    }
}

/// Go's `call` on a value that is not a function (data here has no function values).
fn call_error(first: Option<&Arg>, callee: &Value) -> String {
    if let Value::Nil = callee {
        return "call of nil".to_string();
    }
    let name = match first {
        Some(arg) => arg.to_string(),
        None => format!("<{} Value>", callee.type_name()),
    };
    format!("non-function {name} of type {}", callee.type_name())
}

// ------------------------------------------------------------------------------------------
// Functions: Go's built-ins, Sprig's, and Traefik's normalize.
// ------------------------------------------------------------------------------------------

/// A parameter type, as Go's reflection checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum P {
    Any,
    Str,
    Int,
    Bool,
    /// `map[string]interface {}`, what Sprig's dictionary functions take.
    Dict,
}

impl P {
    fn go_name(self) -> &'static str {
        match self {
            P::Any => "interface {}",
            P::Str => "string",
            P::Int => "int",
            P::Bool => "bool",
            P::Dict => "map[string]interface {}",
        }
    }

    fn can_be_nil(self) -> bool {
        matches!(self, P::Any | P::Dict)
    }

    fn nil(self) -> Value {
        match self {
            P::Dict => Value::map(Elem::Any, BTreeMap::new()),
            _ => Value::Nil,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    None,
    And,
    Or,
    Call,
}

/// What a function sees of the execution.
struct Ctx<'a> {
    env: &'a EnvFn,
}

type Imp = fn(&Ctx<'_>, Vec<Value>) -> Result<Value, String>;

#[derive(Debug)]
struct FuncDef {
    name: &'static str,
    fixed: &'static [P],
    variadic: Option<P>,
    special: Special,
    imp: Imp,
}

impl FuncDef {
    fn param(&self, i: usize) -> P {
        match self.fixed.get(i) {
            Some(p) => *p,
            None => self.variadic.unwrap_or(P::Any),
        }
    }
}

const fn func(name: &'static str, fixed: &'static [P], imp: Imp) -> FuncDef {
    FuncDef {
        name,
        fixed,
        variadic: None,
        special: Special::None,
        imp,
    }
}

const fn variadic(name: &'static str, fixed: &'static [P], rest: P, imp: Imp) -> FuncDef {
    FuncDef {
        name,
        fixed,
        variadic: Some(rest),
        special: Special::None,
        imp,
    }
}

const fn special(name: &'static str, special: Special) -> FuncDef {
    FuncDef {
        name,
        fixed: &[P::Any],
        variadic: Some(P::Any),
        special,
        imp: |_, _| Ok(Value::Nil),
    }
}

use P::{Any as A, Bool as B, Dict as D, Int as I, Str as S};

static FUNCS: &[FuncDef] = &[
    // Go's built-ins (Sprig's `slice` replaces Go's, as Traefik installs Sprig's map).
    special("and", Special::And),
    special("or", Special::Or),
    special("call", Special::Call),
    variadic("html", &[], A, |_, a| {
        Ok(Value::Str(html_escape(&eval_args(&a))))
    }),
    variadic("index", &[A], A, go_index),
    variadic("js", &[], A, |_, a| {
        Ok(Value::Str(js_escape(&eval_args(&a))))
    }),
    func("len", &[A], go_len),
    func("not", &[A], |_, a| Ok(Value::Bool(!a[0].is_true()))),
    variadic("print", &[], A, |_, a| Ok(Value::Str(sprint(&a)))),
    variadic("printf", &[S], A, |_, a| {
        Ok(Value::Str(sprintf(a[0].as_str(), &a[1..])))
    }),
    variadic("println", &[], A, |_, a| Ok(Value::Str(sprintln(&a)))),
    variadic("urlquery", &[], A, |_, a| {
        Ok(Value::Str(query_escape(&eval_args(&a))))
    }),
    variadic("eq", &[A], A, |_, a| go_eq(&a[0], &a[1..]).map(Value::Bool)),
    func("ne", &[A, A], |_, a| {
        go_eq(&a[0], &a[1..]).map(|eq| Value::Bool(!eq))
    }),
    func("lt", &[A, A], |_, a| go_lt(&a[0], &a[1]).map(Value::Bool)),
    func("le", &[A, A], |_, a| go_le(&a[0], &a[1]).map(Value::Bool)),
    func("gt", &[A, A], |_, a| {
        go_le(&a[0], &a[1]).map(|le| Value::Bool(!le))
    }),
    func("ge", &[A, A], |_, a| {
        go_lt(&a[0], &a[1]).map(|lt| Value::Bool(!lt))
    }),
    // Traefik.
    func("normalize", &[S], |_, a| {
        Ok(Value::Str(normalize(a[0].as_str())))
    }),
    // Sprig: strings.
    func("lower", &[S], |_, a| {
        Ok(Value::Str(go_lower(a[0].as_str())))
    }),
    func("upper", &[S], |_, a| {
        Ok(Value::Str(go_upper(a[0].as_str())))
    }),
    func("title", &[S], |_, a| {
        Ok(Value::Str(go_title(a[0].as_str())))
    }),
    func("trim", &[S], |_, a| {
        Ok(Value::Str(a[0].as_str().trim().to_string()))
    }),
    func("trimAll", &[S, S], sprig_trim_all),
    func("trimall", &[S, S], sprig_trim_all),
    func("trimPrefix", &[S, S], |_, a| {
        let s = a[1].as_str();
        Ok(Value::Str(
            s.strip_prefix(a[0].as_str()).unwrap_or(s).to_string(),
        ))
    }),
    func("trimSuffix", &[S, S], |_, a| {
        let s = a[1].as_str();
        Ok(Value::Str(
            s.strip_suffix(a[0].as_str()).unwrap_or(s).to_string(),
        ))
    }),
    func("replace", &[S, S, S], |_, a| {
        Ok(Value::Str(
            a[2].as_str().replace(a[0].as_str(), a[1].as_str()),
        ))
    }),
    func("repeat", &[I, S], |_, a| {
        go_repeat(a[1].as_str(), a[0].as_int()).map(Value::Str)
    }),
    func("substr", &[I, I, S], sprig_substr),
    func("trunc", &[I, S], sprig_trunc),
    func("contains", &[S, S], |_, a| {
        Ok(Value::Bool(a[1].as_str().contains(a[0].as_str())))
    }),
    func("hasPrefix", &[S, S], |_, a| {
        Ok(Value::Bool(a[1].as_str().starts_with(a[0].as_str())))
    }),
    func("hasSuffix", &[S, S], |_, a| {
        Ok(Value::Bool(a[1].as_str().ends_with(a[0].as_str())))
    }),
    variadic("quote", &[], A, sprig_quote),
    variadic("squote", &[], A, sprig_squote),
    variadic("cat", &[], A, sprig_cat),
    func("nospace", &[S], |_, a| {
        Ok(Value::Str(delete_white_space(a[0].as_str())))
    }),
    func("indent", &[I, S], |_, a| {
        sprig_indent(a[0].as_int(), a[1].as_str()).map(Value::Str)
    }),
    func("nindent", &[I, S], |_, a| {
        sprig_indent(a[0].as_int(), a[1].as_str()).map(|s| Value::Str(format!("\n{s}")))
    }),
    func("plural", &[S, S, I], |_, a| {
        Ok(if a[2].as_int() == 1 {
            a[0].clone()
        } else {
            a[1].clone()
        })
    }),
    func("toString", &[A], |_, a| Ok(Value::Str(strval(&a[0])))),
    func("fail", &[S], |_, a| Err(a[0].as_str().to_string())),
    // Sprig: defaults and flow.
    variadic("default", &[A], A, |_, mut a| {
        let given = a.drain(1..).next().unwrap_or(Value::Nil);
        Ok(if given.is_true() {
            given
        } else {
            a.swap_remove(0)
        })
    }),
    func("empty", &[A], |_, a| Ok(Value::Bool(!a[0].is_true()))),
    variadic("coalesce", &[], A, |_, a| {
        Ok(a.into_iter().find(Value::is_true).unwrap_or(Value::Nil))
    }),
    func("ternary", &[A, A, B], |_, a| {
        Ok(if matches!(a[2], Value::Bool(true)) {
            a[0].clone()
        } else {
            a[1].clone()
        })
    }),
    func("toJson", &[A], |_, a| {
        Ok(Value::Str(to_json(&a[0]).unwrap_or_default()))
    }),
    func("mustToJson", &[A], |_, a| to_json(&a[0]).map(Value::Str)),
    func("typeOf", &[A], |_, a| Ok(Value::Str(a[0].type_name()))),
    func("kindOf", &[A], |_, a| {
        Ok(Value::Str(a[0].kind_name().to_string()))
    }),
    func("deepEqual", &[A, A], |_, a| {
        Ok(Value::Bool(deep_equal(&a[0], &a[1])))
    }),
    // Sprig: lists and dictionaries.
    variadic("list", &[], A, |_, a| Ok(Value::list(Elem::Any, a))),
    variadic("tuple", &[], A, |_, a| Ok(Value::list(Elem::Any, a))),
    variadic("dict", &[], A, sprig_dict),
    func("get", &[D, S], sprig_get),
    func("set", &[D, S, A], sprig_set),
    func("hasKey", &[D, S], sprig_has_key),
    variadic("keys", &[], D, sprig_keys),
    func("split", &[S, S], |_, a| {
        let parts = go_split(a[1].as_str(), a[0].as_str());
        let map = parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| (format!("_{i}"), Value::Str(part)))
            .collect();
        Ok(Value::map(Elem::Str, map))
    }),
    func("splitList", &[S, S], |_, a| {
        Ok(Value::strings(go_split(a[1].as_str(), a[0].as_str())))
    }),
    func("join", &[S, A], |_, a| {
        Ok(Value::Str(strslice(&a[1]).join(a[0].as_str())))
    }),
    func("toStrings", &[A], |_, a| {
        Ok(Value::strings(strslice(&a[0])))
    }),
    func("sortAlpha", &[A], sprig_sort_alpha),
    func("first", &[A], |_, a| sprig_first_last(&a[0], true)),
    func("mustFirst", &[A], |_, a| sprig_first_last(&a[0], true)),
    func("last", &[A], |_, a| sprig_first_last(&a[0], false)),
    func("mustLast", &[A], |_, a| sprig_first_last(&a[0], false)),
    func("rest", &[A], |_, a| sprig_rest_initial(&a[0], "rest")),
    func("mustRest", &[A], |_, a| sprig_rest_initial(&a[0], "rest")),
    func("initial", &[A], |_, a| sprig_rest_initial(&a[0], "initial")),
    func("mustInitial", &[A], |_, a| {
        sprig_rest_initial(&a[0], "initial")
    }),
    func("uniq", &[A], sprig_uniq),
    func("mustUniq", &[A], sprig_uniq),
    func("has", &[A, A], sprig_has),
    func("mustHas", &[A, A], sprig_has),
    variadic("slice", &[A], A, sprig_slice),
    variadic("mustSlice", &[A], A, sprig_slice),
    func("append", &[A, A], |_, a| {
        sprig_push(&a[0], &a[1], "push", false)
    }),
    func("push", &[A, A], |_, a| {
        sprig_push(&a[0], &a[1], "push", false)
    }),
    func("mustAppend", &[A, A], |_, a| {
        sprig_push(&a[0], &a[1], "push", false)
    }),
    func("mustPush", &[A, A], |_, a| {
        sprig_push(&a[0], &a[1], "push", false)
    }),
    func("prepend", &[A, A], |_, a| {
        sprig_push(&a[0], &a[1], "prepend", true)
    }),
    func("mustPrepend", &[A, A], |_, a| {
        sprig_push(&a[0], &a[1], "prepend", true)
    }),
    func("reverse", &[A], sprig_reverse),
    func("mustReverse", &[A], sprig_reverse),
    variadic("without", &[A], A, sprig_without),
    variadic("mustWithout", &[A], A, sprig_without),
    func("compact", &[A], sprig_compact),
    func("mustCompact", &[A], sprig_compact),
    variadic("concat", &[], A, sprig_concat),
    // Sprig: regular expressions (Go's RE2 syntax).
    func("regexMatch", &[S, S], |_, a| {
        Ok(Value::Bool(
            go_regex(a[0].as_str()).is_ok_and(|re| re.is_match(a[1].as_str())),
        ))
    }),
    func("mustRegexMatch", &[S, S], |_, a| {
        Ok(Value::Bool(
            go_regex(a[0].as_str())?.is_match(a[1].as_str()),
        ))
    }),
    func("regexFind", &[S, S], |_, a| regex_find(&a, must_compile)),
    func("mustRegexFind", &[S, S], |_, a| regex_find(&a, go_regex)),
    func("regexFindAll", &[S, S, I], |_, a| {
        regex_find_all(&a, must_compile)
    }),
    func("mustRegexFindAll", &[S, S, I], |_, a| {
        regex_find_all(&a, go_regex)
    }),
    func("regexReplaceAll", &[S, S, S], |_, a| {
        regex_replace(&a, must_compile, true)
    }),
    func("mustRegexReplaceAll", &[S, S, S], |_, a| {
        regex_replace(&a, go_regex, true)
    }),
    func("regexReplaceAllLiteral", &[S, S, S], |_, a| {
        regex_replace(&a, must_compile, false)
    }),
    func("mustRegexReplaceAllLiteral", &[S, S, S], |_, a| {
        regex_replace(&a, go_regex, false)
    }),
    func("regexSplit", &[S, S, I], |_, a| {
        regex_split(&a, must_compile)
    }),
    func("mustRegexSplit", &[S, S, I], |_, a| {
        regex_split(&a, go_regex)
    }),
    func("regexQuoteMeta", &[S], |_, a| {
        Ok(Value::Str(quote_meta(a[0].as_str())))
    }),
    // Sprig: integer arithmetic (int64, wrapping as Go's does).
    variadic("add", &[], A, |_, a| {
        Ok(Value::Int64(
            a.iter().map(to_int64).fold(0, i64::wrapping_add),
        ))
    }),
    func("add1", &[A], |_, a| {
        Ok(Value::Int64(to_int64(&a[0]).wrapping_add(1)))
    }),
    func("sub", &[A, A], |_, a| {
        Ok(Value::Int64(to_int64(&a[0]).wrapping_sub(to_int64(&a[1]))))
    }),
    variadic("mul", &[A], A, |_, a| {
        Ok(Value::Int64(
            a.iter().map(to_int64).fold(1, i64::wrapping_mul),
        ))
    }),
    func("div", &[A, A], |_, a| int_division(&a, i64::wrapping_div)),
    func("mod", &[A, A], |_, a| int_division(&a, i64::wrapping_rem)),
    variadic("max", &[A], A, |_, a| {
        Ok(Value::Int64(a.iter().map(to_int64).max().unwrap_or(0)))
    }),
    variadic("biggest", &[A], A, |_, a| {
        Ok(Value::Int64(a.iter().map(to_int64).max().unwrap_or(0)))
    }),
    variadic("min", &[A], A, |_, a| {
        Ok(Value::Int64(a.iter().map(to_int64).min().unwrap_or(0)))
    }),
    // Sprig: conversions.
    func("int", &[A], |_, a| Ok(Value::Int(to_int64(&a[0])))),
    func("int64", &[A], |_, a| Ok(Value::Int64(to_int64(&a[0])))),
    func("float64", &[A], |_, a| Ok(Value::Float(to_float64(&a[0])))),
    func("atoi", &[S], |_, a| {
        Ok(Value::Int(parse_decimal_int(a[0].as_str()).unwrap_or(0)))
    }),
    func("until", &[I], |_, a| {
        let n = a[0].as_int();
        until_step(0, n, if n < 0 { -1 } else { 1 })
    }),
    func("untilStep", &[I, I, I], |_, a| {
        until_step(a[0].as_int(), a[1].as_int(), a[2].as_int())
    }),
    variadic("seq", &[], I, sprig_seq),
    // Sprig: environment.
    func("env", &[S], |ctx, a| {
        Ok(Value::Str((ctx.env)(a[0].as_str()).unwrap_or_default()))
    }),
    func("expandenv", &[S], |ctx, a| {
        Ok(Value::Str(expand_env(a[0].as_str(), |name| {
            (ctx.env)(name).unwrap_or_default()
        })))
    }),
    // Sprig: encodings and hashes.
    func("b64enc", &[S], |_, a| {
        Ok(Value::Str(base64_encode(a[0].as_str().as_bytes())))
    }),
    func("b64dec", &[S], |_, a| {
        Ok(Value::Str(match base64_decode(a[0].as_str()) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(message) => message,
        }))
    }),
    func("sha256sum", &[S], |_, a| {
        Ok(Value::Str(hex_lower(&sha256(a[0].as_str().as_bytes()))))
    }),
];

/// The file provider's `split`: Go's `strings.Split(s, sep)`, arguments in that order.
static FILE_SPLIT: FuncDef = func("split", &[S, S], |_, a| {
    Ok(Value::strings(go_split(a[0].as_str(), a[1].as_str())))
});

fn lookup_function(name: &str, dialect: Dialect) -> Option<&'static FuncDef> {
    if dialect == Dialect::File && name == "split" {
        return Some(&FILE_SPLIT);
    }
    FUNCS.iter().find(|def| def.name == name)
}

/// Sprig functions betaroute does not implement, so that refusing one says what it is.
const SPRIG_NOT_IMPLEMENTED: &[&str] = &[
    "hello",
    "ago",
    "date",
    "date_in_zone",
    "date_modify",
    "dateInZone",
    "dateModify",
    "duration",
    "durationRound",
    "htmlDate",
    "htmlDateInZone",
    "must_date_modify",
    "mustDateModify",
    "mustToDate",
    "now",
    "toDate",
    "unixEpoch",
    "abbrev",
    "abbrevboth",
    "untitle",
    "initials",
    "randAlphaNum",
    "randAlpha",
    "randAscii",
    "randNumeric",
    "swapcase",
    "shuffle",
    "snakecase",
    "camelcase",
    "kebabcase",
    "wrap",
    "wrapWith",
    "sha1sum",
    "sha512sum",
    "adler32sum",
    "toDecimal",
    "splitn",
    "addf",
    "add1f",
    "subf",
    "divf",
    "mulf",
    "randInt",
    "maxf",
    "minf",
    "ceil",
    "floor",
    "round",
    "all",
    "any",
    "fromJson",
    "toPrettyJson",
    "toRawJson",
    "mustFromJson",
    "mustToPrettyJson",
    "mustToRawJson",
    "deepCopy",
    "mustDeepCopy",
    "typeIs",
    "typeIsLike",
    "kindIs",
    "getHostByName",
    "base",
    "dir",
    "clean",
    "ext",
    "isAbs",
    "osBase",
    "osClean",
    "osDir",
    "osExt",
    "osIsAbs",
    "b32enc",
    "b32dec",
    "unset",
    "pluck",
    "pick",
    "omit",
    "merge",
    "mergeOverwrite",
    "mustMerge",
    "mustMergeOverwrite",
    "values",
    "dig",
    "chunk",
    "mustChunk",
    "bcrypt",
    "htpasswd",
    "genPrivateKey",
    "derivePassword",
    "buildCustomCert",
    "genCA",
    "genCAWithKey",
    "genSelfSignedCert",
    "genSelfSignedCertWithKey",
    "genSignedCert",
    "genSignedCertWithKey",
    "encryptAES",
    "decryptAES",
    "randBytes",
    "uuidv4",
    "semver",
    "semverCompare",
    "urlParse",
    "urlJoin",
];

/// What Go's runtime says when Sprig reflects on a nil list.
const NIL_DEREF: &str = "runtime error: invalid memory address or nil pointer dereference";

/// The text of html/js/urlquery's arguments: a missing value prints as "<no value>".
fn eval_args(args: &[Value]) -> String {
    if let [Value::Str(s)] = args {
        return s.clone();
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|arg| match arg {
            Value::Nil => Value::Str("<no value>".to_string()),
            arg => arg.clone(),
        })
        .collect();
    sprint(&printable)
}

fn go_index(_: &Ctx<'_>, args: Vec<Value>) -> Result<Value, String> {
    let mut item = args[0].clone();
    if let Value::Nil = item {
        return Err("index of untyped nil".to_string());
    }
    for index in &args[1..] {
        item = match &item {
            Value::Nil => return Err("index of nil pointer".to_string()),
            Value::List(_, items) => {
                let i = index_arg(index, items.len())?;
                items
                    .get(i)
                    .cloned()
                    .ok_or("reflect: slice index out of range")?
            }
            Value::Str(s) => {
                let i = index_arg(index, s.len())?;
                // A Go string indexes to a byte.
                Value::Int(i64::from(
                    *s.as_bytes()
                        .get(i)
                        .ok_or("reflect: string index out of range")?,
                ))
            }
            Value::Map(elem, map) => {
                let key = match index {
                    Value::Str(key) => key,
                    Value::Nil => return Err("value is nil; should be of type string".to_string()),
                    other => {
                        return Err(format!(
                            "value has type {}; should be string",
                            other.type_name()
                        ))
                    }
                };
                map.borrow()
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| elem.zero())
            }
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn index_arg(index: &Value, cap: usize) -> Result<usize, String> {
    let x = match index {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Nil => return Err("cannot index slice/array with nil".to_string()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ))
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn go_len(_: &Ctx<'_>, args: Vec<Value>) -> Result<Value, String> {
    let n = match &args[0] {
        Value::Str(s) => s.len(),
        Value::List(_, items) => items.len(),
        Value::Map(_, map) => map.borrow().len(),
        Value::Nil => return Err("reflect: call of reflect.Value.Type on zero Value".to_string()),
        other => return Err(format!("len of type {}", other.type_name())),
    };
    Ok(Value::Int(n as i64))
}

/// The basic kinds Go's comparison functions know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
}

fn basic_kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        _ => Kind::Invalid,
    }
}

/// Go's `eq`: arg1 == arg2 || arg1 == arg3 ...
fn go_eq(arg1: &Value, rest: &[Value]) -> Result<bool, String> {
    if rest.is_empty() {
        return Err("missing argument for comparison".to_string());
    }
    let k1 = basic_kind(arg1);
    for arg in rest {
        let k2 = basic_kind(arg);
        let truth = if k1 != k2 {
            if !matches!(arg1, Value::Nil) && !matches!(arg, Value::Nil) {
                return Err(format!(
                    "incompatible types for comparison: {} and {}",
                    arg1.type_name(),
                    arg.type_name()
                ));
            }
            false
        } else {
            match (arg1, arg) {
                (Value::Bool(a), Value::Bool(b)) => a == b,
                (Value::Float(a), Value::Float(b)) => a == b,
                (Value::Str(a), Value::Str(b)) => a == b,
                _ if k1 == Kind::Int => arg1.as_int() == arg.as_int(),
                _ => eq_composite(arg1, arg)?,
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `eq` on values that are not basic: only nil compares with everything; slices and maps
/// cannot be compared at all.
fn eq_composite(a: &Value, b: &Value) -> Result<bool, String> {
    let (a_nil, b_nil) = (matches!(a, Value::Nil), matches!(b, Value::Nil));
    if a_nil || b_nil {
        return Ok(a_nil == b_nil);
    }
    if std::mem::discriminant(a) != std::mem::discriminant(b) {
        return Err(format!(
            "non-comparable types {}: {}, {}: {}",
            fmt_v(a),
            a.type_name(),
            b.type_name(),
            fmt_v(b)
        ));
    }
    if !comparable(b) {
        return Err(format!(
            "non-comparable type {}: {}",
            fmt_v(b),
            b.type_name()
        ));
    }
    Ok(deep_equal(a, b))
}

fn comparable(v: &Value) -> bool {
    match v {
        Value::List(..) | Value::Map(..) => false,
        Value::Struct(fields) => fields.iter().all(|(_, v)| comparable(v)),
        _ => true,
    }
}

fn go_lt(a: &Value, b: &Value) -> Result<bool, String> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err("invalid type for comparison".to_string());
    }
    if k1 != k2 {
        return Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        ));
    }
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x < y),
        _ if k1 == Kind::Int => Ok(a.as_int() < b.as_int()),
        _ => Err("invalid type for comparison".to_string()),
    }
}

fn go_le(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(go_lt(a, b)? || go_eq(a, std::slice::from_ref(b))?)
}

/// Traefik's `normalize`: runs of anything but letters and numbers become one `-`.
pub fn normalize(name: &str) -> String {
    static SEPARATORS: OnceLock<Regex> = OnceLock::new();
    let separators =
        SEPARATORS.get_or_init(|| Regex::new(r"[^\p{L}\p{N}]+").expect("a valid Unicode class"));
    separators
        .split(name)
        .filter(|field| !field.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// Go maps case rune by rune with single-rune (simple) mappings; Rust's full mappings may
/// give several characters, where Go keeps the rune.
fn simple_case(c: char, mut mapped: impl Iterator<Item = char>) -> char {
    match (mapped.next(), mapped.next()) {
        (Some(one), None) => one,
        _ => c,
    }
}

fn go_lower(s: &str) -> String {
    // 'İ' is the one letter whose full lower case is two characters; Go gives 'i'.
    s.chars()
        .map(|c| {
            if c == 'İ' {
                'i'
            } else {
                simple_case(c, c.to_lowercase())
            }
        })
        .collect()
}

fn go_upper(s: &str) -> String {
    s.chars()
        .map(|c| simple_case(c, c.to_uppercase()))
        .collect()
}

/// Go's `unicode.ToTitle`: upper case, except the digraphs that have a title form.
fn title_char(c: char) -> char {
    match c {
        'Ǆ' | 'ǅ' | 'ǆ' => 'ǅ',
        'Ǉ' | 'ǈ' | 'ǉ' => 'ǈ',
        'Ǌ' | 'ǋ' | 'ǌ' => 'ǋ',
        'Ǳ' | 'ǲ' | 'ǳ' => 'ǲ',
        c => simple_case(c, c.to_uppercase()),
    }
}

/// Go's deprecated `strings.Title`, which Sprig's `title` is.
fn go_title(s: &str) -> String {
    let is_separator = |c: char| {
        if c.is_ascii() {
            return !(c.is_ascii_alphanumeric() || c == '_');
        }
        if is_letter(c) || is_decimal_digit(c) {
            return false;
        }
        c.is_whitespace()
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_separator(prev) { title_char(c) } else { c };
            prev = c;
            out
        })
        .collect()
}

fn sprig_trim_all(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let cutset = a[0].as_str();
    Ok(Value::Str(
        a[1].as_str()
            .trim_matches(|c| cutset.contains(c))
            .to_string(),
    ))
}

fn go_repeat(s: &str, count: i64) -> Result<String, String> {
    if count < 0 {
        return Err("strings: negative Repeat count".to_string());
    }
    if (s.len() as u64).saturating_mul(count as u64) > MAX_OUTPUT as u64 {
        return Err(format!("repeat: result exceeds {} MiB", MAX_OUTPUT >> 20));
    }
    Ok(s.repeat(count as usize))
}

/// A byte slice of `s` as Go's `s[lo:hi]`, with Go's runtime error when out of range.
fn byte_slice(s: &str, lo: Option<i64>, hi: Option<i64>) -> Result<String, String> {
    let len = s.len() as i64;
    let (lo_v, hi_v) = (lo.unwrap_or(0), hi.unwrap_or(len));
    let bounds = |lo: Option<i64>, hi: Option<i64>| {
        let lo = lo.map(|v| v.to_string()).unwrap_or_default();
        let hi = hi.map(|v| v.to_string()).unwrap_or_default();
        format!("runtime error: slice bounds out of range [{lo}:{hi}]")
    };
    if hi_v < 0 || hi_v > len {
        return Err(match hi {
            Some(h) if h > len => format!("{} with length {len}", bounds(None, Some(h))),
            _ => bounds(None, hi),
        });
    }
    if lo_v < 0 || lo_v > hi_v {
        return Err(bounds(Some(lo_v), Some(hi_v)));
    }
    Ok(String::from_utf8_lossy(&s.as_bytes()[lo_v as usize..hi_v as usize]).into_owned())
}

fn sprig_substr(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let (start, end, s) = (a[0].as_int(), a[1].as_int(), a[2].as_str());
    let sliced = if start < 0 {
        byte_slice(s, None, Some(end))?
    } else if end < 0 || end > s.len() as i64 {
        byte_slice(s, Some(start), None)?
    } else {
        byte_slice(s, Some(start), Some(end))?
    };
    Ok(Value::Str(sliced))
}

fn sprig_trunc(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let (c, s) = (a[0].as_int(), a[1].as_str());
    let len = s.len() as i64;
    let cut = if c < 0 && len + c > 0 {
        byte_slice(s, Some(len + c), None)?
    } else if c >= 0 && len > c {
        byte_slice(s, None, Some(c))?
    } else {
        s.to_string()
    };
    Ok(Value::Str(cut))
}

fn sprig_quote(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let quoted: Vec<String> = a
        .iter()
        .filter(|v| !matches!(v, Value::Nil))
        .map(|v| go_quote(&strval(v)))
        .collect();
    Ok(Value::Str(quoted.join(" ")))
}

fn sprig_squote(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let quoted: Vec<String> = a
        .iter()
        .filter(|v| !matches!(v, Value::Nil))
        .map(|v| format!("'{}'", fmt_v(v)))
        .collect();
    Ok(Value::Str(quoted.join(" ")))
}

fn sprig_cat(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let parts: Vec<String> = a
        .iter()
        .filter(|v| !matches!(v, Value::Nil))
        .map(fmt_v)
        .collect();
    Ok(Value::Str(parts.join(" ")))
}

/// goutils' `DeleteWhiteSpace`, byte by byte as it is (so, like Go, it garbles non-ASCII
/// text that also has white space).
fn delete_white_space(s: &str) -> String {
    let kept: String = s
        .bytes()
        .map(char::from)
        .filter(|c| !c.is_whitespace())
        .collect();
    if kept.chars().count() == s.len() {
        return s.to_string();
    }
    kept
}

fn sprig_indent(spaces: i64, text: &str) -> Result<String, String> {
    let pad = go_repeat(" ", spaces)?;
    let lines = text.matches('\n').count() as u64;
    if (pad.len() as u64).saturating_mul(lines + 1) + text.len() as u64 > MAX_OUTPUT as u64 {
        return Err(format!("indent: result exceeds {} MiB", MAX_OUTPUT >> 20));
    }
    Ok(format!("{pad}{}", text.replace('\n', &format!("\n{pad}"))))
}

/// Sprig's `strval`: strings as they are, anything else as `%v`.
fn strval(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        v => fmt_v(v),
    }
}

/// Go's `reflect.DeepEqual` over these values.
fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) | (Value::Int64(x), Value::Int64(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(ex, x), Value::List(ey, y)) => {
            ex == ey && x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| deep_equal(a, b))
        }
        (Value::Map(ex, x), Value::Map(ey, y)) => {
            if ex != ey {
                return false;
            }
            if Rc::ptr_eq(x, y) {
                return true;
            }
            let (x, y) = (x.borrow(), y.borrow());
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((kx, vx), (ky, vy))| kx == ky && deep_equal(vx, vy))
        }
        (Value::Struct(x), Value::Struct(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((nx, vx), (ny, vy))| nx == ny && deep_equal(vx, vy))
        }
        _ => false,
    }
}

fn sprig_dict(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut map = BTreeMap::new();
    for pair in a.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or(Value::Str(String::new()));
        map.insert(strval(&pair[0]), value);
    }
    Ok(Value::map(Elem::Any, map))
}

fn dict_of(v: &Value) -> &MapRef {
    match v {
        Value::Map(_, map) => map,
        _ => unreachable!("type-checked as map[string]interface {{}}"),
    }
}

fn sprig_get(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let found = dict_of(&a[0]).borrow().get(a[1].as_str()).cloned();
    Ok(found.unwrap_or(Value::Str(String::new())))
}

fn sprig_set(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let map = dict_of(&a[0]);
    // Go allows a map to hold itself; printing it would never end. Refuse the cycle.
    if contains_map(&a[2], map) {
        return Err("a map cannot be set to contain itself".to_string());
    }
    map.borrow_mut()
        .insert(a[1].as_str().to_string(), a[2].clone());
    Ok(a[0].clone())
}

fn contains_map(v: &Value, target: &MapRef) -> bool {
    match v {
        Value::Map(_, map) => {
            Rc::ptr_eq(map, target) || map.borrow().values().any(|v| contains_map(v, target))
        }
        Value::List(_, items) => items.iter().any(|v| contains_map(v, target)),
        Value::Struct(fields) => fields.iter().any(|(_, v)| contains_map(v, target)),
        _ => false,
    }
}

fn sprig_has_key(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    Ok(Value::Bool(
        dict_of(&a[0]).borrow().contains_key(a[1].as_str()),
    ))
}

/// Sprig's `keys`, sorted (Go's map order is random; sorted is the one stable choice).
fn sprig_keys(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut keys: Vec<String> = a
        .iter()
        .flat_map(|d| dict_of(d).borrow().keys().cloned().collect::<Vec<_>>())
        .collect();
    keys.sort();
    Ok(Value::strings(keys))
}

/// Go's `strings.Split`: an empty separator splits after each character.
fn go_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(String::from).collect();
    }
    s.split(sep).map(str::to_string).collect()
}

/// Sprig's `strslice`: a list's non-nil elements as strings, anything else as one string.
fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(_, items) => items
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(strval)
            .collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

fn sprig_sort_alpha(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut items = match &a[0] {
        Value::List(..) => strslice(&a[0]),
        other => vec![strval(other)],
    };
    items.sort();
    Ok(Value::strings(items))
}

/// A list argument of a Sprig list function, with its errors for anything else.
fn list_arg<'a>(v: &'a Value, refusal: &str) -> Result<&'a Rc<Vec<Value>>, String> {
    match v {
        Value::List(_, items) => Ok(items),
        Value::Nil => Err(NIL_DEREF.to_string()),
        other => Err(format!("{refusal} {}", other.kind_name())),
    }
}

fn sprig_first_last(v: &Value, first: bool) -> Result<Value, String> {
    let what = if first { "first" } else { "last" };
    let items = list_arg(v, &format!("Cannot find {what} on type"))?;
    let item = if first { items.first() } else { items.last() };
    Ok(item.cloned().unwrap_or(Value::Nil))
}

fn sprig_rest_initial(v: &Value, what: &str) -> Result<Value, String> {
    let items = list_arg(v, &format!("Cannot find {what} on type"))?;
    if items.is_empty() {
        return Ok(Value::Nil);
    }
    let kept = if what == "rest" {
        &items[1..]
    } else {
        &items[..items.len() - 1]
    };
    Ok(Value::list(Elem::Any, kept.to_vec()))
}

fn sprig_uniq(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let items = list_arg(&a[0], "Cannot find uniq on type")?;
    let mut unique: Vec<Value> = Vec::new();
    for item in items.iter() {
        if !unique.iter().any(|u| deep_equal(u, item)) {
            unique.push(item.clone());
        }
    }
    Ok(Value::list(Elem::Any, unique))
}

fn sprig_has(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    match &a[1] {
        Value::Nil => Ok(Value::Bool(false)),
        haystack => {
            let items = list_arg(haystack, "Cannot find has on type")?;
            Ok(Value::Bool(
                items.iter().any(|item| deep_equal(&a[0], item)),
            ))
        }
    }
}

/// Sprig's `slice` (which replaces Go's built-in in Traefik): lists only, Sprig's errors.
fn sprig_slice(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let (elem, items) = match &a[0] {
        Value::List(elem, items) => (*elem, items),
        Value::Nil => return Err(NIL_DEREF.to_string()),
        other => {
            return Err(format!(
                "list should be type of slice or array but {}",
                other.kind_name()
            ))
        }
    };
    if items.is_empty() {
        return Ok(Value::Nil);
    }
    let len = items.len() as i64;
    let start = a.get(1).map_or(0, to_int64);
    let end = a.get(2).map_or(len, to_int64);
    if start < 0 || end < start || end > len {
        return Err("reflect.Value.Slice: slice index out of bounds".to_string());
    }
    Ok(Value::list(
        elem,
        items[start as usize..end as usize].to_vec(),
    ))
}

fn sprig_push(list: &Value, v: &Value, what: &str, front: bool) -> Result<Value, String> {
    let items = list_arg(list, &format!("Cannot {what} on type"))?;
    let mut out = Vec::with_capacity(items.len() + 1);
    if front {
        out.push(v.clone());
    }
    out.extend(items.iter().cloned());
    if !front {
        out.push(v.clone());
    }
    Ok(Value::list(Elem::Any, out))
}

fn sprig_reverse(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let items = list_arg(&a[0], "Cannot find reverse on type")?;
    Ok(Value::list(
        Elem::Any,
        items.iter().rev().cloned().collect(),
    ))
}

fn sprig_without(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let items = list_arg(&a[0], "Cannot find without on type")?;
    let kept = items
        .iter()
        .filter(|item| !a[1..].iter().any(|omit| deep_equal(omit, item)))
        .cloned()
        .collect();
    Ok(Value::list(Elem::Any, kept))
}

fn sprig_compact(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let items = list_arg(&a[0], "Cannot compact on type")?;
    Ok(Value::list(
        Elem::Any,
        items.iter().filter(|v| v.is_true()).cloned().collect(),
    ))
}

fn sprig_concat(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let mut out = Vec::new();
    for list in &a {
        match list {
            Value::List(_, items) => out.extend(items.iter().cloned()),
            Value::Nil => return Err(NIL_DEREF.to_string()),
            other => return Err(format!("Cannot concat type {} as list", other.kind_name())),
        }
    }
    Ok(Value::list(Elem::Any, out))
}

/// Sprig's non-`must` regex functions compile with Go's `MustCompile`, whose panic names
/// the pattern.
fn must_compile(pattern: &str) -> Result<Regex, String> {
    go_regex(pattern).map_err(|e| format!("regexp: Compile({}): {e}", backquote(pattern)))
}

type Compile = fn(&str) -> Result<Regex, String>;

fn regex_find(a: &[Value], compile: Compile) -> Result<Value, String> {
    let re = compile(a[0].as_str())?;
    let found = re.find(a[1].as_str()).map_or("", |m| m.as_str());
    Ok(Value::Str(found.to_string()))
}

fn regex_find_all(a: &[Value], compile: Compile) -> Result<Value, String> {
    let re = compile(a[0].as_str())?;
    let n = a[2].as_int();
    let limit = if n < 0 { usize::MAX } else { n as usize };
    let found = re.find_iter(a[1].as_str()).take(limit);
    Ok(Value::strings(found.map(|m| m.as_str().to_string())))
}

fn regex_replace(a: &[Value], compile: Compile, expand: bool) -> Result<Value, String> {
    let re = compile(a[0].as_str())?;
    let (s, repl) = (a[1].as_str(), a[2].as_str());
    let replaced = if expand {
        re.replace_all(s, repl)
    } else {
        re.replace_all(s, regex::NoExpand(repl))
    };
    Ok(Value::Str(replaced.into_owned()))
}

/// Go's `Regexp.Split`, which differs from Rust's at the edges (empty matches, empty input).
fn regex_split(a: &[Value], compile: Compile) -> Result<Value, String> {
    let (pattern, s, n) = (a[0].as_str(), a[1].as_str(), a[2].as_int());
    let re = compile(pattern)?;
    if n == 0 {
        return Ok(Value::strings(Vec::new()));
    }
    if !pattern.is_empty() && s.is_empty() {
        return Ok(Value::strings([String::new()]));
    }
    let mut parts = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for m in re.find_iter(s) {
        if n > 0 && parts.len() as i64 == n - 1 {
            break;
        }
        end = m.start();
        if m.end() != 0 {
            parts.push(s[beg..end].to_string());
        }
        beg = m.end();
    }
    if end != s.len() {
        parts.push(s[beg..].to_string());
    }
    Ok(Value::strings(parts))
}

/// Go's `regexp.QuoteMeta`.
fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// spf13/cast's `ToInt64`, which Sprig's arithmetic uses: anything unconvertible is 0.
fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Str(s) => parse_go_int(trim_zero_decimal(s)).unwrap_or(0),
        Value::Bool(b) => i64::from(*b),
        _ => 0,
    }
}

/// cast's `trimZeroDecimal`: "12.00" reads as "12".
fn trim_zero_decimal(s: &str) -> &str {
    let mut found_zero = false;
    for (i, b) in s.bytes().enumerate().rev() {
        match b {
            b'.' if found_zero => return &s[..i],
            b'0' => found_zero = true,
            _ => return s,
        }
    }
    s
}

fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Str(s) => parse_go_float(s).unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

fn int_division(a: &[Value], op: fn(i64, i64) -> i64) -> Result<Value, String> {
    let divisor = to_int64(&a[1]);
    if divisor == 0 {
        return Err("runtime error: integer divide by zero".to_string());
    }
    Ok(Value::Int64(op(to_int64(&a[0]), divisor)))
}

/// Sprig's `untilStep`, as a `[]int`.
fn until_step(start: i64, stop: i64, step: i64) -> Result<Value, String> {
    let mut items = Vec::new();
    let mut i = start;
    let going = |i: i64| if stop < start { i > stop } else { i < stop };
    if (stop < start && step >= 0) || (stop >= start && step <= 0) {
        return Ok(Value::list(Elem::Int, items));
    }
    while going(i) {
        if items.len() as i64 >= MAX_ITERATIONS {
            return Err(format!("list of more than {MAX_ITERATIONS} elements"));
        }
        items.push(Value::Int(i));
        match i.checked_add(step) {
            Some(next) => i = next,
            None => break,
        }
    }
    Ok(Value::list(Elem::Int, items))
}

fn sprig_seq(_: &Ctx<'_>, a: Vec<Value>) -> Result<Value, String> {
    let p: Vec<i64> = a.iter().map(Value::as_int).collect();
    let sign = |start: i64, end: i64| if end < start { -1 } else { 1 };
    let list = match p[..] {
        [end] => until_step(1, end + sign(1, end), sign(1, end))?,
        [start, end] => until_step(start, end + sign(start, end), sign(start, end))?,
        [start, step, end] => {
            if end < start && step > 0 {
                return Ok(Value::Str(String::new()));
            }
            until_step(start, end + sign(start, end), step)?
        }
        _ => return Ok(Value::Str(String::new())),
    };
    let Value::List(_, items) = list else {
        return Ok(Value::Str(String::new()));
    };
    let numbers: Vec<String> = items.iter().map(fmt_v).collect();
    Ok(Value::Str(numbers.join(" ")))
}

/// Go's `os.Expand`: `$name` and `${name}`, with its treatment of bad syntax.
fn expand_env(s: &str, lookup: impl Fn(&str) -> String) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let (mut i, mut j) = (0, 0);
    while j < bytes.len() {
        if bytes[j] == b'$' && j + 1 < bytes.len() {
            out.push_str(&s[i..j]);
            let (name, width) = shell_name(&s[j + 1..]);
            if name.is_empty() && width == 0 {
                // No name after '$': keep it.
                out.push('$');
            } else if !name.is_empty() {
                out.push_str(&lookup(name));
            }
            j += width;
            i = j + 1;
        }
        j += 1;
    }
    out.push_str(&s[i.min(s.len())..]);
    out
}

fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    let special = |c: u8| b"*#$@!?-0123456789".contains(&c);
    if b[0] == b'{' {
        if b.len() > 2 && special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        return match s[1..].find('}') {
            Some(0) => ("", 2),
            Some(end) => (&s[1..end + 1], end + 2),
            None => ("", 1),
        };
    }
    if special(b[0]) {
        return (&s[0..1], 1);
    }
    let len = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    (&s[..len], len)
}

// ------------------------------------------------------------------------------------------
// Go's fmt: %v and printf.
// ------------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    plus_v: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's `%v`.
fn fmt_v(v: &Value) -> String {
    let mut out = String::new();
    format_arg(&mut out, v, 'v', &Spec::default(), 0);
    out
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        out.push_str(&fmt_v(arg));
        prev_string = is_string;
    }
    out
}

/// Go's `fmt.Sprintln`: spaces between all operands, and a newline.
fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(fmt_v).collect();
    parts.join(" ") + "\n"
}

fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next_arg = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => {
                    spec.minus = true;
                    spec.zero = false;
                }
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            chars.next();
        }
        spec.width = read_count(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(read_count(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next_arg += 1;
        if verb == 'v' && spec.plus {
            spec.plus = false;
            spec.plus_v = true;
        }
        format_arg(&mut out, arg, verb, &spec, 0);
    }
    if next_arg < args.len() {
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|arg| match arg {
                Value::Nil => "<nil>".to_string(),
                arg => format!("{}={}", arg.type_name(), fmt_v(arg)),
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn read_count(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(
            n.unwrap_or(0)
                .saturating_mul(10)
                .saturating_add(d as usize)
                .min(1 << 20),
        );
        chars.next();
    }
    n
}

fn format_arg(out: &mut String, v: &Value, verb: char, spec: &Spec, depth: usize) {
    if verb == 'T' {
        pad(out, &v.type_name(), spec);
        return;
    }
    let done = match v {
        Value::Nil if depth > 0 || verb == 'v' => {
            pad(out, "<nil>", spec);
            true
        }
        Value::Nil => false,
        Value::Bool(b) => {
            matches!(verb, 't' | 'v') && {
                pad(out, if *b { "true" } else { "false" }, spec);
                true
            }
        }
        Value::Int(i) | Value::Int64(i) => fmt_integer(out, *i, verb, spec),
        Value::Float(f) => fmt_float(out, *f, verb, spec),
        Value::Str(s) => fmt_string(out, s, verb, spec),
        Value::List(_, items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_arg(out, item, verb, spec, depth + 1);
            }
            out.push(']');
            true
        }
        Value::Map(_, map) => {
            out.push_str("map[");
            for (i, (key, value)) in map.borrow().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_arg(out, &Value::Str(key.clone()), verb, spec, depth + 1);
                out.push(':');
                format_arg(out, value, verb, spec, depth + 1);
            }
            out.push(']');
            true
        }
        Value::Struct(fields) => {
            out.push('{');
            for (i, (name, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                if spec.plus_v {
                    out.push_str(name);
                    out.push(':');
                }
                format_arg(out, value, verb, spec, depth + 1);
            }
            out.push('}');
            true
        }
    };
    if !done {
        bad_verb(out, v, verb);
    }
}

fn bad_verb(out: &mut String, v: &Value, verb: char) {
    match v {
        Value::Nil => out.push_str(&format!("%!{verb}(<nil>)")),
        v => out.push_str(&format!("%!{verb}({}={})", v.type_name(), fmt_v(v))),
    }
}

/// Pads to the width in characters: spaces, or zeros with the `0` flag.
fn pad(out: &mut String, s: &str, spec: &Spec) {
    let len = s.chars().count();
    let fill = spec.width.unwrap_or(0).saturating_sub(len);
    if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else {
        out.extend(std::iter::repeat_n(if spec.zero { '0' } else { ' ' }, fill));
        out.push_str(s);
    }
}

fn fmt_integer(out: &mut String, i: i64, verb: char, spec: &Spec) -> bool {
    let (radix, upper) = match verb {
        'd' | 'v' => (10, false),
        'b' => (2, false),
        'o' | 'O' => (8, false),
        'x' => (16, false),
        'X' => (16, true),
        'c' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, &c.to_string(), spec);
            return true;
        }
        'q' => {
            pad(out, &go_quote_rune(i), spec);
            return true;
        }
        'U' => {
            pad(out, &format!("U+{i:04X}"), spec);
            return true;
        }
        _ => return false,
    };
    let magnitude = i.unsigned_abs();
    let mut digits = match radix {
        2 => format!("{magnitude:b}"),
        8 => format!("{magnitude:o}"),
        16 if upper => format!("{magnitude:X}"),
        16 => format!("{magnitude:x}"),
        _ => magnitude.to_string(),
    };
    if let Some(prec) = spec.prec {
        if prec == 0 && magnitude == 0 {
            digits.clear();
        }
        digits = format!("{digits:0>prec$}");
    }
    let prefix = match (spec.sharp, radix, verb) {
        (_, _, 'O') => "0o",
        (true, 16, _) if upper => "0X",
        (true, 16, _) => "0x",
        (true, 8, _) => "0",
        (true, 2, _) => "0b",
        _ => "",
    };
    let sign = sign_of(i < 0, spec);
    if spec.zero && spec.prec.is_none() && !spec.minus {
        // Zeros go between the sign and the digits.
        let used = sign.len() + prefix.len();
        let width = spec.width.unwrap_or(0).saturating_sub(used);
        digits = format!("{digits:0>width$}");
    }
    pad(
        out,
        &format!("{sign}{prefix}{digits}"),
        &spec.clone_with_zero(false),
    );
    true
}

fn sign_of(negative: bool, spec: &Spec) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

impl Spec {
    fn clone_with_zero(&self, zero: bool) -> Spec {
        Spec { zero, ..*self }
    }
}

fn fmt_float(out: &mut String, f: f64, verb: char, spec: &Spec) -> bool {
    let num = match verb {
        'v' => format_float(f, 'g', None),
        'g' | 'G' => format_float(f, verb, spec.prec),
        'e' | 'E' | 'f' | 'F' => format_float(f, verb, Some(spec.prec.unwrap_or(6))),
        _ => return false,
    };
    let (negative, body) = match num.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, num.strip_prefix('+').unwrap_or(&num)),
    };
    if body == "Inf" || body == "NaN" {
        // Never zero-padded; NaN has no sign unless asked, Inf always has one.
        let sign = match (body, negative) {
            ("NaN", _) if !spec.plus && !spec.space => "",
            (_, true) => "-",
            _ if spec.space && !spec.plus => " ",
            _ => "+",
        };
        pad(out, &format!("{sign}{body}"), &spec.clone_with_zero(false));
        return true;
    }
    let sign = sign_of(negative, spec);
    if spec.zero && !spec.minus && !sign.is_empty() {
        let width = spec.width.unwrap_or(0).saturating_sub(sign.len());
        out.push_str(sign);
        pad(
            out,
            body,
            &Spec {
                width: Some(width),
                ..*spec
            },
        );
        return true;
    }
    pad(out, &format!("{sign}{body}"), spec);
    true
}

fn fmt_string(out: &mut String, s: &str, verb: char, spec: &Spec) -> bool {
    let s: String = match spec.prec {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    };
    let text = match verb {
        'v' | 's' => s,
        'q' if spec.sharp && can_backquote(&s) => format!("`{s}`"),
        'q' => go_quote(&s),
        'x' => hex_lower(s.as_bytes()),
        'X' => hex_lower(s.as_bytes()).to_uppercase(),
        _ => return false,
    };
    pad(out, &text, spec);
    true
}

/// `strconv.FormatFloat(f, verb, prec, 64)`; `prec` None is the shortest exact form.
fn format_float(f: f64, verb: char, prec: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let a = f.abs();
    let body = match verb {
        'f' | 'F' => format!("{a:.*}", prec.unwrap_or(6)),
        'e' | 'E' => match prec {
            Some(p) => {
                let (digits, dp) = decimal_digits(a, Some(p + 1));
                fmt_e(&digits, dp, p as i64, verb)
            }
            None => {
                let (digits, dp) = decimal_digits(a, None);
                fmt_e(&digits, dp, digits.len() as i64 - 1, verb)
            }
        },
        _ => fmt_g(a, prec, if verb == 'G' { 'E' } else { 'e' }),
    };
    if f.is_sign_negative() {
        format!("-{body}")
    } else {
        body
    }
}

/// The decimal digits of `a` (no trailing zeros when shortest) and the position of the
/// decimal point, as strconv's decimal: a = 0.d1d2... × 10^dp.
fn decimal_digits(a: f64, significant: Option<usize>) -> (Vec<u8>, i64) {
    if a == 0.0 {
        return (Vec::new(), 0);
    }
    let s = match significant {
        Some(n) => format!("{a:.*e}", n.max(1) - 1),
        None => format!("{a:e}"),
    };
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    (digits, exp.parse::<i64>().unwrap_or(0) + 1)
}

fn fmt_g(a: f64, prec: Option<usize>, exp_char: char) -> String {
    let shortest = prec.is_none();
    let (mut digits, dp) = decimal_digits(a, prec.map(|p| p.max(1)));
    if !shortest {
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
    }
    let nd = digits.len() as i64;
    let mut p = prec.map_or(nd, |p| p.max(1) as i64);
    let mut eprec = p;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if shortest {
        eprec = 6;
    }
    let exp = dp - 1;
    if exp < -4 || exp >= eprec {
        if p > nd {
            p = nd;
        }
        return fmt_e(&digits, dp, p - 1, exp_char);
    }
    if p > dp {
        p = nd;
    }
    fmt_f(&digits, dp, (p - dp).max(0))
}

/// strconv's `%e`: d.ddde±dd.
fn fmt_e(digits: &[u8], dp: i64, prec: i64, exp_char: char) -> String {
    let mut out = String::new();
    out.push(digits.first().map_or('0', |d| char::from(*d)));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as usize {
            out.push(digits.get(i).map_or('0', |d| char::from(*d)));
        }
    }
    out.push(if exp_char == 'E' { 'E' } else { 'e' });
    let exp = if digits.is_empty() { 0 } else { dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exp.abs()));
    out
}

/// strconv's `%f` from decimal digits.
fn fmt_f(digits: &[u8], dp: i64, prec: i64) -> String {
    let digit = |j: i64| {
        usize::try_from(j)
            .ok()
            .and_then(|j| digits.get(j))
            .map_or('0', |d| char::from(*d))
    };
    let mut out = String::new();
    if dp > 0 {
        (0..dp).for_each(|j| out.push(digit(j)));
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        (1..=prec).for_each(|i| out.push(digit(dp + i - 1)));
    }
    out
}

// ------------------------------------------------------------------------------------------
// Go's strconv, encoding/json, encoding/base64, crypto/sha256, and escapers.
// ------------------------------------------------------------------------------------------

/// `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape_rune(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// `strconv.QuoteRune` of an integer, as `%q` prints one.
fn go_quote_rune(i: i64) -> String {
    let c = u32::try_from(i)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{FFFD}');
    let mut out = String::from("'");
    escape_rune(&mut out, c, '\'');
    out.push('\'');
    out
}

fn escape_rune(out: &mut String, c: char, quote: char) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_print(c) {
        out.push(c);
        return;
    }
    let escaped = match c {
        '\x07' => "\\a".to_string(),
        '\x08' => "\\b".to_string(),
        '\x0c' => "\\f".to_string(),
        '\n' => "\\n".to_string(),
        '\r' => "\\r".to_string(),
        '\t' => "\\t".to_string(),
        '\x0b' => "\\v".to_string(),
        c if (c as u32) < 0x20 || c == '\x7f' => format!("\\x{:02x}", c as u32),
        c if (c as u32) < 0x10000 => format!("\\u{:04x}", c as u32),
        c => format!("\\U{:08x}", c as u32),
    };
    out.push_str(&escaped);
}

/// `strconv.CanBackquote`.
fn can_backquote(s: &str) -> bool {
    s.chars()
        .all(|c| c != '`' && c != '\u{FEFF}' && (c == '\t' || !(c < ' ' || c == '\x7f')))
}

/// A pattern as Go's regexp names it in a panic: backquoted when it can be.
fn backquote(s: &str) -> String {
    if can_backquote(s) {
        format!("`{s}`")
    } else {
        go_quote(s)
    }
}

/// `strconv.Unquote` of a template string literal ("..." or `...`).
pub(crate) fn go_unquote(s: &str) -> Result<String, String> {
    let syntax = || "invalid syntax".to_string();
    if s.len() < 2 {
        return Err(syntax());
    }
    let inner = &s[1..s.len() - 1];
    match (s.as_bytes()[0], s.as_bytes()[s.len() - 1]) {
        (b'`', b'`') if !inner.contains('`') => Ok(inner.replace('\r', "")),
        (b'"', b'"') if !inner.contains('\n') => {
            let mut bytes = Vec::with_capacity(inner.len());
            let mut rest = inner;
            while !rest.is_empty() {
                let (value, multibyte, tail) =
                    unquote_char_full(rest, '"').map_err(|()| syntax())?;
                match char::from_u32(value) {
                    Some(c) if multibyte => {
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => bytes.push(value as u8),
                }
                rest = tail;
            }
            String::from_utf8(bytes).map_err(|_| "string literal is not valid UTF-8".to_string())
        }
        _ => Err(syntax()),
    }
}

fn unquote_char(s: &str, quote: char) -> Result<(u32, &str), ()> {
    unquote_char_full(s, quote).map(|(value, _, tail)| (value, tail))
}

/// `strconv.UnquoteChar`: one character or escape; `multibyte` tells a rune from a byte.
fn unquote_char_full(s: &str, quote: char) -> Result<(u32, bool, &str), ()> {
    let c = s.chars().next().ok_or(())?;
    if c == quote {
        return Err(());
    }
    if c != '\\' {
        return Ok((c as u32, !c.is_ascii(), &s[c.len_utf8()..]));
    }
    let b = s.as_bytes();
    let e = *b.get(1).ok_or(())?;
    let rest = &s[2..];
    let simple = match e {
        b'a' => Some(7),
        b'b' => Some(8),
        b'f' => Some(12),
        b'n' => Some(10),
        b'r' => Some(13),
        b't' => Some(9),
        b'v' => Some(11),
        b'\\' => Some(u32::from(b'\\')),
        b'\'' | b'"' if e as char == quote => Some(u32::from(e)),
        _ => None,
    };
    if let Some(value) = simple {
        return Ok((value, false, rest));
    }
    match e {
        b'x' | b'u' | b'U' => {
            let n = match e {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let hex = rest.get(..n).ok_or(())?;
            let value = u32::from_str_radix(hex, 16).map_err(|_| ())?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(());
            }
            if e == b'x' {
                return Ok((value, false, &rest[n..]));
            }
            char::from_u32(value).ok_or(())?;
            Ok((value, true, &rest[n..]))
        }
        b'0'..=b'7' => {
            let octal = s.get(1..4).ok_or(())?;
            if !octal.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return Err(());
            }
            let value = u32::from_str_radix(octal, 8).map_err(|_| ())?;
            if value > 255 {
                return Err(());
            }
            Ok((value, false, &s[4..]))
        }
        _ => Err(()),
    }
}

/// Go's `%#U` of a rune: "U+0026 '&'".
fn sharp_u(c: char) -> String {
    if is_print(c) {
        format!("U+{:04X} '{c}'", c as u32)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

/// Go's `underscoreOK`: underscores only between digits (or after a base prefix).
fn underscore_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    for &c in &b[i..] {
        if c.is_ascii_digit() || hex && c.is_ascii_hexdigit() {
            saw = b'0';
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

/// `strconv.ParseUint(s, 0, 64)`.
fn parse_go_uint(s: &str) -> Option<u64> {
    if s.is_empty() || s.contains('_') && !underscore_ok(s) {
        return None;
    }
    let b = s.as_bytes();
    let (radix, digits) = if b[0] == b'0' && b.len() >= 3 && b[1].eq_ignore_ascii_case(&b'x') {
        (16, &s[2..])
    } else if b[0] == b'0' && b.len() >= 3 && b[1].eq_ignore_ascii_case(&b'o') {
        (8, &s[2..])
    } else if b[0] == b'0' && b.len() >= 3 && b[1].eq_ignore_ascii_case(&b'b') {
        (2, &s[2..])
    } else if b[0] == b'0' {
        (8, &s[1..])
    } else {
        (10, s)
    };
    let mut n: u64 = 0;
    for c in digits.chars().filter(|c| *c != '_') {
        let d = c.to_digit(radix)?;
        n = n.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
    }
    Some(n)
}

/// `strconv.ParseInt(s, 0, 64)`.
fn parse_go_int(s: &str) -> Option<i64> {
    let (negative, magnitude) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let u = parse_go_uint(magnitude)?;
    if negative {
        (u <= 1 << 63).then(|| (u as i64).wrapping_neg())
    } else {
        i64::try_from(u).ok()
    }
}

/// `strconv.Atoi`: decimal only.
fn parse_decimal_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `strconv.ParseFloat(s, 64)`: decimal or hexadecimal (with a `p` exponent), underscores
/// between digits, and Inf/NaN words.
fn parse_go_float(s: &str) -> Option<f64> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let value = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" if body.len() == s.len() => f64::NAN,
        _ => {
            if body.contains('_') && !underscore_ok(body) {
                return None;
            }
            let clean = body.replace('_', "");
            if let Some(hex) = clean
                .strip_prefix("0x")
                .or_else(|| clean.strip_prefix("0X"))
            {
                parse_hex_float(hex)?
            } else if clean
                .bytes()
                .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b))
            {
                clean.parse().ok()?
            } else {
                return None;
            }
        }
    };
    Some(if negative { -value } else { value })
}

fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exp) = s.split_once(['p', 'P'])?;
    let exp: i32 = exp.parse().ok()?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut value = 0.0_f64;
    for c in int.chars().chain(frac.chars()) {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    Some(value * 2f64.powi(exp - 4 * frac.len() as i32))
}

/// Sprig's `toJson`: Go's `json.Marshal`, which escapes <, > and & for HTML.
fn to_json(v: &Value) -> Result<String, String> {
    let mut out = String::new();
    json_value(&mut out, v)?;
    Ok(out)
}

fn json_value(out: &mut String, v: &Value) -> Result<(), String> {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::Int64(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&json_float(*f)?),
        Value::Str(s) => json_string(out, s),
        Value::List(_, items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(out, item)?;
            }
            out.push(']');
        }
        Value::Map(_, map) => {
            let entries: Vec<(String, Value)> = map
                .borrow()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            json_object(out, entries.iter().map(|(k, v)| (k.as_str(), v)))?;
        }
        Value::Struct(fields) => json_object(out, fields.iter().map(|(k, v)| (k.as_str(), v)))?,
    }
    Ok(())
}

fn json_object<'a>(
    out: &mut String,
    entries: impl Iterator<Item = (&'a str, &'a Value)>,
) -> Result<(), String> {
    out.push('{');
    for (i, (key, value)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, key);
        out.push(':');
        json_value(out, value)?;
    }
    out.push('}');
    Ok(())
}

fn json_float(f: f64) -> Result<String, String> {
    if !f.is_finite() {
        return Err(format!(
            "json: unsupported value: {}",
            format_float(f, 'g', None)
        ));
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format_float(f, 'e', None);
        // Go writes e-7, not e-07.
        return Ok(match s.rsplit_once("e-0") {
            Some((mantissa, digit)) if digit.len() == 1 => format!("{mantissa}e-{digit}"),
            _ => s,
        });
    }
    Ok(format!("{f}"))
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `template.HTMLEscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if c < ' ' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_ascii() || is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `base64.StdEncoding.EncodeToString`.
fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `base64.StdEncoding.DecodeString`, with Go's error (and its offset) for bad input.
fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let src = s.as_bytes();
    let corrupt = |at: usize| format!("illegal base64 data at input byte {at}");
    let value = |b: u8| BASE64.iter().position(|c| *c == b).map(|v| v as u32);
    let is_newline = |b: u8| b == b'\n' || b == b'\r';
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    while si < src.len() {
        let mut quantum = [0u32; 4];
        let mut len = 4;
        let mut j = 0;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(out);
                }
                return Err(corrupt(si - j));
            }
            let b = src[si];
            si += 1;
            if let Some(v) = value(b) {
                quantum[j] = v;
                j += 1;
                continue;
            }
            if is_newline(b) {
                continue;
            }
            if b != b'=' || j < 2 {
                return Err(corrupt(si - 1));
            }
            // Padding: "==" after two characters, "=" after three, then only newlines.
            if j == 2 {
                while si < src.len() && is_newline(src[si]) {
                    si += 1;
                }
                if si == src.len() {
                    return Err(corrupt(src.len()));
                }
                if src[si] != b'=' {
                    return Err(corrupt(si - 1));
                }
                si += 1;
            }
            while si < src.len() && is_newline(src[si]) {
                si += 1;
            }
            if si < src.len() {
                return Err(corrupt(si));
            }
            len = j;
            break;
        }
        let n = quantum.iter().fold(0u32, |n, v| n << 6 | v);
        out.extend_from_slice(&n.to_be_bytes()[1..len]);
    }
    Ok(out)
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (FIPS 180-4), for Sprig's `sha256sum`.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in message.chunks(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (h, v) in h.iter_mut().zip(v) {
            *h = h.wrapping_add(v);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

// ------------------------------------------------------------------------------------------
// Unicode classes (Go's unicode package) and Go's regexp syntax.
// ------------------------------------------------------------------------------------------

fn in_class(cell: &'static OnceLock<Regex>, pattern: &str, c: char) -> bool {
    let class = cell.get_or_init(|| Regex::new(pattern).expect("a valid Unicode class"));
    let mut buf = [0u8; 4];
    class.is_match(c.encode_utf8(&mut buf))
}

/// `unicode.IsLetter`.
fn is_letter(c: char) -> bool {
    static LETTER: OnceLock<Regex> = OnceLock::new();
    c.is_ascii_alphabetic() || !c.is_ascii() && in_class(&LETTER, r"^\p{L}$", c)
}

/// `unicode.IsDigit`.
fn is_decimal_digit(c: char) -> bool {
    static DIGIT: OnceLock<Regex> = OnceLock::new();
    c.is_ascii_digit() || !c.is_ascii() && in_class(&DIGIT, r"^\p{Nd}$", c)
}

/// `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
fn is_print(c: char) -> bool {
    static PRINT: OnceLock<Regex> = OnceLock::new();
    if c.is_ascii() {
        return c == ' ' || c.is_ascii_graphic();
    }
    in_class(&PRINT, r"^[\p{L}\p{M}\p{N}\p{P}\p{S}]$", c)
}

/// Compiles a Go (RE2) regular expression with the `regex` crate. The syntaxes agree except
/// that Go's `\d`, `\s`, `\w` and `\b` are ASCII-only where Rust's are Unicode, and that Rust
/// reads `[` and `&&` inside a class as nesting and intersection: those are rewritten.
pub(crate) fn go_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(&translate_go_regex(pattern)).map_err(|e| {
        let detail = e.to_string();
        let reason = detail
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("error: "))
            .unwrap_or(detail.as_str())
            .to_string();
        format!("error parsing regexp: {reason}: {}", backquote(pattern))
    })
}

fn translate_go_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                    out.push_str(perl_class(e, in_class));
                }
                Some(e @ ('b' | 'B')) if !in_class => {
                    out.push_str(&format!("(?-u:\\{e})"));
                }
                Some('Q') => {
                    // \Q...\E: literal text.
                    let mut literal = String::new();
                    while let Some(l) = chars.next() {
                        if l == '\\' && chars.peek() == Some(&'E') {
                            chars.next();
                            break;
                        }
                        literal.push(l);
                    }
                    out.push_str(&regex::escape(&literal));
                }
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
            }
            '[' if chars.peek() == Some(&':') => {
                // A POSIX class such as [:alpha:], copied through its ":]".
                out.push('[');
                let mut prev = '[';
                for p in chars.by_ref() {
                    out.push(p);
                    if prev == ':' && p == ']' {
                        break;
                    }
                    prev = p;
                }
            }
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's ASCII Perl classes, spelled for inside or outside a bracket.
fn perl_class(e: char, in_class: bool) -> &'static str {
    match (e, in_class) {
        ('d', false) => "[0-9]",
        ('d', true) => "0-9",
        ('D', _) => "[^0-9]",
        ('s', false) => r"[\t\n\f\r ]",
        ('s', true) => r"\t\n\f\r ",
        ('S', _) => r"[^\t\n\f\r ]",
        ('w', false) => "[0-9A-Za-z_]",
        ('w', true) => "0-9A-Za-z_",
        _ => "[^0-9A-Za-z_]",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Data {
        Data::Str(v.to_string())
    }

    fn map(pairs: &[(&str, Data)]) -> Data {
        Data::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn ints(items: &[i64]) -> Data {
        Data::List(items.iter().map(|i| Data::Int(*i)).collect())
    }

    fn fields(pairs: &[(&str, Data)]) -> Data {
        Data::Struct(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    /// Traefik's default-rule model: `struct { Name string; Labels map[string]string }`.
    fn model(name: &str, labels: &[(&str, &str)]) -> Data {
        let labels = labels.iter().map(|(k, v)| (*k, s(v))).collect::<Vec<_>>();
        fields(&[("Name", s(name)), ("Labels", map(&labels))])
    }

    /// A transcription of the parts of Go's exec_test.go `tVal` that data can express.
    fn t_val() -> Data {
        fields(&[
            ("True", Data::Bool(true)),
            ("I", Data::Int(17)),
            ("X", s("x")),
            ("S", s("xyz")),
            ("U", fields(&[("V", s("v"))])),
            ("FloatZero", Data::Float(0.0)),
            ("SI", ints(&[3, 4, 5])),
            ("AI", ints(&[3, 4, 5])),
            ("SIEmpty", Data::List(vec![])),
            ("SB", Data::List(vec![Data::Bool(true), Data::Bool(false)])),
            (
                "MSI",
                map(&[
                    ("one", Data::Int(1)),
                    ("two", Data::Int(2)),
                    ("three", Data::Int(3)),
                ]),
            ),
            ("MSIone", map(&[("one", Data::Int(1))])),
            ("MSIEmpty", map(&[])),
            ("MXI", map(&[("one", Data::Int(1)), ("two", s("two"))])),
            (
                "SMSI",
                Data::List(vec![
                    map(&[("one", Data::Int(1)), ("two", Data::Int(2))]),
                    map(&[("eleven", Data::Int(11)), ("twelve", Data::Int(12))]),
                ]),
            ),
            ("Empty0", Data::Nil),
            ("Empty1", Data::Int(3)),
            ("Empty3", ints(&[7, 8])),
            ("Empty4", fields(&[("V", s("UinEmpty"))])),
        ])
    }

    fn run(text: &str, data: &Data) -> Result<String, TemplateError> {
        Template::parse(text)?.execute(data)
    }

    /// Runs a table of (name, template, expected output or None for an error).
    fn check_table(data: &Data, cases: &[(&str, &str, Option<&str>)]) {
        for (name, text, want) in cases {
            let got = run(text, data);
            match (want, &got) {
                (Some(want), Ok(got)) => assert_eq!(got, want, "{name}: {text}"),
                (None, Err(_)) => {}
                _ => panic!("{name}: {text}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn traefik_default_rules() {
        // pkg/provider/{docker,consulcatalog,ecs,nomad}/config_test.go.
        let test = model("Test", &[]);
        let labelled = model("Test", &[("traefik.domain", "foo.bar")]);
        let cases: &[(&str, &Data, &str)] = &[
            ("Host(`foo.bar`)", &test, "Host(`foo.bar`)"),
            ("Host(`{{ .Name }}.foo.bar`)", &test, "Host(`Test.foo.bar`)"),
            (
                r#"Host("{{ .Name }}.{{ index .Labels "traefik.domain" }}")"#,
                &labelled,
                r#"Host("Test.foo.bar")"#,
            ),
            ("", &test, ""),
            ("Host(`{{ normalize .Name }}`)", &test, "Host(`Test`)"),
            (
                "Host(`{{ normalize .Name }}.traefik.wtf`)",
                &model("dev/Test", &[]),
                "Host(`dev-Test.traefik.wtf`)",
            ),
            (
                r#"Host("{{ .Name }}.{{ index .Labels "missing" }}")"#,
                &test,
                r#"Host("Test.")"#,
            ),
            ("{{ .Labels.missing }}", &test, "<no value>"),
            ("{{ print .Labels.missing }}", &test, "<nil>"),
            (
                "Host(`{{ .ContainerName }}`)",
                &fields(&[("Name", s("a")), ("ContainerName", s("web-1"))]),
                "Host(`web-1`)",
            ),
        ];
        for (text, data, want) in cases {
            assert_eq!(run(text, data).as_deref(), Ok(*want), "{text}");
        }
    }

    #[test]
    fn traefik_invalid_rules_fail_with_the_field_and_its_offset() {
        let err = run(r#"Host("{{ .Toto }}")"#, &model("Test", &[])).unwrap_err();
        assert_eq!(
            err,
            TemplateError {
                offset: 9,
                message: r#"executing "defaultRule" at <.Toto>: can't evaluate field Toto in type struct { Name string; Labels map[string]string }"#.to_string(),
            }
        );
        let err = run(r#"Host"{{ .Invalid }}")"#, &model("Test", &[])).unwrap_err();
        assert!(err.message.ends_with(
            "can't evaluate field Invalid in type struct { Name string; Labels map[string]string }"
        ));
        assert_eq!(
            err.to_string(),
            format!("template: {} (at byte 8)", err.message)
        );
    }

    #[test]
    fn normalize_joins_letter_and_number_runs() {
        assert_eq!(normalize("dev/Test"), "dev-Test");
        assert_eq!(normalize("--a__b..c--"), "a-b-c");
        assert_eq!(normalize("café_Ünïcode٣"), "café-Ünïcode٣");
        assert_eq!(normalize("!!!"), "");
    }

    #[test]
    fn go_exec_fields_variables_and_pipelines() {
        check_table(
            &t_val(),
            &[
                ("empty", "", Some("")),
                ("text", "some text", Some("some text")),
                ("nil action", "{{nil}}", None),
                ("ideal int", "{{typeOf 3}}", Some("int")),
                ("ideal float", "{{typeOf 1.0}}", Some("float64")),
                ("ideal exp float", "{{typeOf 1e1}}", Some("float64")),
                ("ideal hex int", "{{printf `%T` 0xef}}", Some("int")),
                (
                    "ideal big int",
                    "{{typeOf 0x7fffffffffffffff}}",
                    Some("int"),
                ),
                ("ideal too big", "{{typeOf 0x8000000000000000}}", None),
                ("ideal rune", "{{'a'}} {{typeOf 'a'}}", Some("97 int")),
                (".X", "-{{.X}}-", Some("-x-")),
                (".U.V", "-{{.U.V}}-", Some("-v-")),
                ("map .one", "{{.MSI.one}}", Some("1")),
                ("map .NO", "{{.MSI.NO}}", Some("<no value>")),
                ("map .one interface", "{{.MXI.one}}", Some("1")),
                ("map .WRONG args", "{{.MSI.one 1}}", None),
                ("struct field args", "{{.X 1}}", None),
                ("dot struct", "<{{.U}}>", Some("<{v}>")),
                ("$.I", "{{$.I}}", Some("17")),
                ("$.U.V", "{{$.U.V}}", Some("v")),
                ("declare in action", "{{$x := $.U.V}}{{$x}}", Some("v")),
                (
                    "simple assignment",
                    "{{$x := 2}}{{$x = 3}}{{$x}}",
                    Some("3"),
                ),
                (
                    "nested assignment",
                    "{{$x := 2}}{{if true}}{{$x = 3}}{{end}}{{$x}}",
                    Some("3"),
                ),
                (
                    "nested assignment changes the last declaration",
                    "{{$x := 1}}{{if true}}{{$x := 2}}{{if true}}{{$x = 3}}{{end}}{{end}}{{$x}}",
                    Some("1"),
                ),
                ("empty nil", "{{.Empty0}}", Some("<no value>")),
                ("empty with int", "{{.Empty1}}", Some("3")),
                ("empty with slice", "{{.Empty3}}", Some("[7 8]")),
                ("empty with struct", "{{.Empty4}}", Some("{UinEmpty}")),
                (
                    "empty with struct, field",
                    "{{.Empty4.V}}",
                    Some("UinEmpty"),
                ),
                ("field of nothing", "{{.Empty0.foo}}", Some("<no value>")),
                ("unparenthesized non-function", "{{1 2}}", None),
                ("parenthesized non-function", "{{(1) 2}}", None),
                (
                    "parenthesized non-function with no args",
                    "{{(1)}}",
                    Some("1"),
                ),
                (
                    "parens in pipeline",
                    "{{printf `%d %d %d` (1) (2 | add 3) (add 4 (add 5 6))}}",
                    Some("1 5 15"),
                ),
                ("parens: $ in paren", "{{($).X}}", Some("x")),
                (
                    "parens: $ in paren in pipe",
                    "{{($ | default 1).X}}",
                    Some("x"),
                ),
                (
                    "parens: spaces and args",
                    r#"{{(dict "up" "down" "left" "right").left}}"#,
                    Some("right"),
                ),
                (
                    "field chain on function",
                    "{{(dict `three` 3).three}}",
                    Some("3"),
                ),
                ("bug7a", "{{3 2}}", None),
                ("bug7b", "{{$x := 1}}{{$x 2}}", None),
                ("bug7c", "{{$x := 1}}{{3 | $x}}", None),
                ("bug13", "{{print (.U).V}}", Some("v")),
                ("bug14a", "{{(nil).True}}", None),
                ("bug14b", "{{$x := nil}}{{$x.anything}}", None),
                (
                    "bug14c",
                    r#"{{$x := (1.0)}}{{$y := ("hello")}}{{$x.anything}}{{$y.true}}"#,
                    None,
                ),
                ("bug16a", "{{true|printf}}", None),
                ("bug16b", "{{1|printf}}", None),
                ("bug16c", "{{1.1|printf}}", None),
                ("bug16d", "{{'x'|printf}}", None),
                ("bug16k", r#"{{"aaa"|printf }}"#, Some("aaa")),
                ("bug18a", "{{eq 46 '.'}}", Some("true")),
                (
                    "issue56490",
                    "{{$i := 0}}{{$x := 0}}{{range $i = .AI}}{{end}}{{$i}}",
                    Some("5"),
                ),
                (
                    "issue60801",
                    "{{$k := 0}}{{$v := 0}}{{range $k, $v = .AI}}{{$k}}={{$v}} {{end}}",
                    Some("0=3 1=4 2=5 "),
                ),
                ("trailing pipe", "{{ .X | }}", Some("x")),
                ("multi-line action", "{{ print\n 1\n  2 }}", Some("1 2")),
            ],
        );
        check_table(
            &Data::Nil,
            &[
                ("field on nil", "{{.foo}}", Some("<no value>")),
                (
                    "field on parenthesized nil",
                    "{{(.).foo}}",
                    Some("<no value>"),
                ),
                ("and undef", "{{and 1 .Unknown}}", Some("<no value>")),
                ("or undef", "{{or 0 .Unknown}}", Some("<no value>")),
            ],
        );
        check_table(
            &Data::Int(5),
            &[
                ("field of int", "{{.X.Y}}", None),
                ("dot int", "<{{.}}>", Some("<5>")),
            ],
        );
    }

    #[test]
    fn go_exec_control_structures() {
        check_table(
            &t_val(),
            &[
                ("if true", "{{if true}}TRUE{{end}}", Some("TRUE")),
                (
                    "if false",
                    "{{if false}}TRUE{{else}}FALSE{{end}}",
                    Some("FALSE"),
                ),
                ("if nil", "{{if nil}}TRUE{{end}}", None),
                (
                    "if 1",
                    "{{if 1}}NON-ZERO{{else}}ZERO{{end}}",
                    Some("NON-ZERO"),
                ),
                ("if 0", "{{if 0}}NON-ZERO{{else}}ZERO{{end}}", Some("ZERO")),
                (
                    "if 1.5",
                    "{{if 1.5}}NON-ZERO{{else}}ZERO{{end}}",
                    Some("NON-ZERO"),
                ),
                (
                    "if 0.0",
                    "{{if .FloatZero}}NON-ZERO{{else}}ZERO{{end}}",
                    Some("ZERO"),
                ),
                (
                    "if emptystring",
                    "{{if ``}}NON-EMPTY{{else}}EMPTY{{end}}",
                    Some("EMPTY"),
                ),
                (
                    "if string",
                    "{{if `notempty`}}NON-EMPTY{{else}}EMPTY{{end}}",
                    Some("NON-EMPTY"),
                ),
                (
                    "if emptyslice",
                    "{{if .SIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}",
                    Some("EMPTY"),
                ),
                (
                    "if slice",
                    "{{if .SI}}NON-EMPTY{{else}}EMPTY{{end}}",
                    Some("NON-EMPTY"),
                ),
                (
                    "if emptymap",
                    "{{if .MSIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}",
                    Some("EMPTY"),
                ),
                (
                    "if map",
                    "{{if .MSI}}NON-EMPTY{{else}}EMPTY{{end}}",
                    Some("NON-EMPTY"),
                ),
                ("if struct", "{{if .U}}T{{end}}", Some("T")),
                (
                    "if map unset",
                    "{{if .MXI.none}}NON-ZERO{{else}}ZERO{{end}}",
                    Some("ZERO"),
                ),
                (
                    "if map not unset",
                    "{{if not .MXI.none}}ZERO{{else}}NON-ZERO{{end}}",
                    Some("ZERO"),
                ),
                (
                    "if $x with $y int",
                    "{{if $x := true}}{{with $y := .I}}{{$x}},{{$y}}{{end}}{{end}}",
                    Some("true,17"),
                ),
                (
                    "if $x with $x int",
                    "{{if $x := true}}{{with $x := .I}}{{$x}},{{end}}{{$x}}{{end}}",
                    Some("17,true"),
                ),
                (
                    "if else if",
                    "{{if false}}FALSE{{else if true}}TRUE{{end}}",
                    Some("TRUE"),
                ),
                (
                    "if else chain",
                    "{{if eq 1 3}}1{{else if eq 2 3}}2{{else if eq 3 3}}3{{end}}",
                    Some("3"),
                ),
                ("with true", "{{with true}}{{.}}{{end}}", Some("true")),
                (
                    "with false",
                    "{{with false}}{{.}}{{else}}FALSE{{end}}",
                    Some("FALSE"),
                ),
                ("with 1", "{{with 1}}{{.}}{{else}}ZERO{{end}}", Some("1")),
                ("with 0", "{{with 0}}{{.}}{{else}}ZERO{{end}}", Some("ZERO")),
                (
                    "with 1.5",
                    "{{with 1.5}}{{.}}{{else}}ZERO{{end}}",
                    Some("1.5"),
                ),
                (
                    "with emptystring",
                    "{{with ``}}{{.}}{{else}}EMPTY{{end}}",
                    Some("EMPTY"),
                ),
                (
                    "with slice",
                    "{{with .SI}}{{.}}{{else}}EMPTY{{end}}",
                    Some("[3 4 5]"),
                ),
                (
                    "with emptymap",
                    "{{with .MSIEmpty}}{{.}}{{else}}EMPTY{{end}}",
                    Some("EMPTY"),
                ),
                (
                    "with map",
                    "{{with .MSIone}}{{.}}{{else}}EMPTY{{end}}",
                    Some("map[one:1]"),
                ),
                ("with $x int", "{{with $x := .I}}{{$x}}{{end}}", Some("17")),
                (
                    "with $x struct.U.V",
                    "{{with $x := $}}{{$x.U.V}}{{end}}",
                    Some("v"),
                ),
                (
                    "with variable and action",
                    "{{with $x := $}}{{$y := $.U.V}}{{$y}}{{end}}",
                    Some("v"),
                ),
                (
                    "with else with",
                    "{{with 0}}{{.}}{{else with true}}{{.}}{{end}}",
                    Some("true"),
                ),
                (
                    "with else with chain",
                    "{{with 0}}{{.}}{{else with false}}{{.}}{{else with `notempty`}}{{.}}{{end}}",
                    Some("notempty"),
                ),
                (
                    "range []int",
                    "{{range .SI}}-{{.}}-{{end}}",
                    Some("-3--4--5-"),
                ),
                (
                    "range empty no else",
                    "{{range .SIEmpty}}-{{.}}-{{end}}",
                    Some(""),
                ),
                (
                    "range []int else",
                    "{{range .SI}}-{{.}}-{{else}}EMPTY{{end}}",
                    Some("-3--4--5-"),
                ),
                (
                    "range empty else",
                    "{{range .SIEmpty}}-{{.}}-{{else}}EMPTY{{end}}",
                    Some("EMPTY"),
                ),
                (
                    "range []int break else",
                    "{{range .SI}}-{{.}}-{{break}}NOTREACHED{{else}}EMPTY{{end}}",
                    Some("-3-"),
                ),
                (
                    "range []int continue else",
                    "{{range .SI}}-{{.}}-{{continue}}NOTREACHED{{else}}EMPTY{{end}}",
                    Some("-3--4--5-"),
                ),
                (
                    "break in nested if",
                    "{{range .SI}}{{if eq . 4}}{{break}}{{end}}{{.}}{{end}}",
                    Some("3"),
                ),
                (
                    "range []bool",
                    "{{range .SB}}-{{.}}-{{end}}",
                    Some("-true--false-"),
                ),
                (
                    "range map",
                    "{{range .MSI}}-{{.}}-{{end}}",
                    Some("-1--3--2-"),
                ),
                (
                    "range empty map no else",
                    "{{range .MSIEmpty}}-{{.}}-{{end}}",
                    Some(""),
                ),
                (
                    "range map else",
                    "{{range .MSI}}-{{.}}-{{else}}EMPTY{{end}}",
                    Some("-1--3--2-"),
                ),
                (
                    "range empty map else",
                    "{{range .MSIEmpty}}-{{.}}-{{else}}EMPTY{{end}}",
                    Some("EMPTY"),
                ),
                (
                    "range empty interface",
                    "{{range .Empty3}}-{{.}}-{{else}}EMPTY{{end}}",
                    Some("-7--8-"),
                ),
                (
                    "range empty nil",
                    "{{range .Empty0}}-{{.}}-{{end}}",
                    Some(""),
                ),
                (
                    "range $x SI",
                    "{{range $x := .SI}}<{{$x}}>{{end}}",
                    Some("<3><4><5>"),
                ),
                (
                    "range $x $y SI",
                    "{{range $x, $y := .SI}}<{{$x}}={{$y}}>{{end}}",
                    Some("<0=3><1=4><2=5>"),
                ),
                (
                    "range $x MSIone",
                    "{{range $x := .MSIone}}<{{$x}}>{{end}}",
                    Some("<1>"),
                ),
                (
                    "range $x $y MSIone",
                    "{{range $x, $y := .MSIone}}<{{$x}}={{$y}}>{{end}}",
                    Some("<one=1>"),
                ),
                (
                    "declare in range",
                    "{{range $x := .SI}}<{{$foo:=$x}}{{$x}}>{{end}}",
                    Some("<3><4><5>"),
                ),
                (
                    "range 5",
                    r#"{{range $v := 5}}{{printf "%T%d" $v $v}}{{end}}"#,
                    Some("int0int1int2int3int4"),
                ),
                (
                    "range int over two variables",
                    "{{range $i, $c := 5}}{{end}}",
                    None,
                ),
                ("range over a string", "{{range .X}}{{end}}", None),
                (
                    "or as if true",
                    r#"{{or .SI "slice is empty"}}"#,
                    Some("[3 4 5]"),
                ),
                (
                    "or as if false",
                    r#"{{or .SIEmpty "slice is empty"}}"#,
                    Some("slice is empty"),
                ),
            ],
        );
    }

    #[test]
    fn go_exec_builtins() {
        check_table(
            &t_val(),
            &[
                ("print", r#"{{print "hello, print"}}"#, Some("hello, print")),
                ("print 123", "{{print 1 2 3}}", Some("1 2 3")),
                (
                    "print strings",
                    r#"{{print "a" "b" 1 2 "c"}}"#,
                    Some("ab1 2c"),
                ),
                ("print nil", "{{print nil}}", Some("<nil>")),
                ("println", "{{println 1 2 3}}", Some("1 2 3\n")),
                ("println strings", r#"{{println "a " "b"}}"#, Some("a  b\n")),
                ("printf int", r#"{{printf "%04x" 127}}"#, Some("007f")),
                ("printf float", r#"{{printf "%g" 3.5}}"#, Some("3.5")),
                ("printf string", r#"{{printf "%s" "hello"}}"#, Some("hello")),
                ("printf field", r#"{{printf "%s" .U.V}}"#, Some("v")),
                (
                    "printf dot",
                    r#"{{with .I}}{{printf "%d" .}}{{end}}"#,
                    Some("17"),
                ),
                (
                    "printf var",
                    r#"{{with $x := .I}}{{printf "%d" $x}}{{end}}"#,
                    Some("17"),
                ),
                (
                    "html",
                    r#"{{html "<script>alert(\"XSS\");</script>"}}"#,
                    Some("&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;"),
                ),
                (
                    "html pipeline",
                    r#"{{printf "<script>alert(\"XSS\");</script>" | html}}"#,
                    Some("&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;"),
                ),
                (
                    "html untyped nil",
                    "{{html .Empty0}}",
                    Some("&lt;no value&gt;"),
                ),
                ("js", r#"{{js "It'd be nice."}}"#, Some(r"It\'d be nice.")),
                (
                    "urlquery",
                    r#"{{"http://www.example.org/"|urlquery}}"#,
                    Some("http%3A%2F%2Fwww.example.org%2F"),
                ),
                ("urlquery space", r#"{{urlquery "a b&c"}}"#, Some("a+b%26c")),
                ("not", "{{not true}} {{not false}}", Some("false true")),
                ("not arity", "{{not 1 2}}", None),
                (
                    "and",
                    "{{and false 0}} {{and 1 0}} {{and 0 true}} {{and 1 1}}",
                    Some("false 0 0 1"),
                ),
                (
                    "or",
                    "{{or 0 0}} {{or 1 0}} {{or 0 true}} {{or 1 1}}",
                    Some("0 1 true 1"),
                ),
                ("or short-circuit", "{{or 0 1 (fail `die`)}}", Some("1")),
                ("and short-circuit", "{{and 1 0 (fail `die`)}}", Some("0")),
                ("or short-circuit2", "{{or 0 0 (fail `die`)}}", None),
                ("and short-circuit2", "{{and 1 1 (fail `die`)}}", None),
                ("and pipe-true", "{{1 | and 1}}", Some("1")),
                ("and pipe-false", "{{0 | and 1}}", Some("0")),
                ("or pipe-true", "{{1 | or 0}}", Some("1")),
                ("or pipe-false", "{{0 | or 0}}", Some("0")),
                (
                    "boolean if",
                    "{{if and true 1 `hi`}}TRUE{{else}}FALSE{{end}}",
                    Some("TRUE"),
                ),
                (
                    "boolean if not",
                    "{{if and true 1 `hi` | not}}TRUE{{else}}FALSE{{end}}",
                    Some("FALSE"),
                ),
                (
                    "boolean if pipe",
                    "{{if true | not | and 1}}TRUE{{else}}FALSE{{end}}",
                    Some("FALSE"),
                ),
                ("slice[0]", "{{index .SI 0}}", Some("3")),
                ("slice[1]", "{{index .SI 1}}", Some("4")),
                ("slice[HUGE]", "{{index .SI 10}}", None),
                ("slice[len]", "{{index .SI 3}}", None),
                ("slice[WRONG]", "{{index .SI `hello`}}", None),
                ("slice[nil]", "{{index .SI nil}}", None),
                ("map[one]", "{{index .MSI `one`}}", Some("1")),
                ("map[two]", "{{index .MSI `two`}}", Some("2")),
                ("map[NO]", "{{index .MSI `XXX`}}", Some("0")),
                ("map[nil]", "{{index .MSI nil}}", None),
                ("map[``]", "{{index .MSI ``}}", Some("0")),
                ("map[WRONG]", "{{index .MSI 10}}", None),
                (
                    "interface map[NO]",
                    "{{index .MXI `XXX`}}",
                    Some("<no value>"),
                ),
                ("double index", "{{index .SMSI 1 `eleven`}}", Some("11")),
                ("nil[1]", "{{index nil 1}}", None),
                (
                    "index of an interface field",
                    "{{index .Empty3 0}}",
                    Some("7"),
                ),
                ("index of a string", "{{index .S 1}}", Some("121")),
                ("len slice", "{{len .SI}}", Some("3")),
                ("len map", "{{len .MSI }}", Some("3")),
                ("len string", "{{len `héllo`}}", Some("6")),
                ("len of int", "{{len 3}}", None),
                ("len of nothing", "{{len .Empty0}}", None),
                ("len of an interface field", "{{len .Empty3}}", Some("2")),
                ("call of a non-function", "{{call .X}}", None),
                ("call of nil", "{{call nil}}", None),
                ("empty call", "{{call}}", None),
            ],
        );
    }

    #[test]
    fn go_comparisons() {
        // Go's cmpTests, minus the unsigned, complex and pointer types data has not got.
        let cases: &[(&str, Option<bool>)] = &[
            ("eq true true", Some(true)),
            ("eq true false", Some(false)),
            ("eq 1.5 1.5", Some(true)),
            ("eq 1.5 2.5", Some(false)),
            ("eq 1 1", Some(true)),
            ("eq 1 2", Some(false)),
            ("eq `xy` `xy`", Some(true)),
            ("eq `xy` `xyz`", Some(false)),
            ("eq 3 4 5 6 3", Some(true)),
            ("eq 3 4 5 6 7", Some(false)),
            ("ne true true", Some(false)),
            ("ne true false", Some(true)),
            ("ne 1.5 1.5", Some(false)),
            ("ne 1 2", Some(true)),
            ("ne `xy` `xyz`", Some(true)),
            ("lt 1.5 1.5", Some(false)),
            ("lt 1.5 2.5", Some(true)),
            ("lt 1 1", Some(false)),
            ("lt 1 2", Some(true)),
            ("lt `xy` `xy`", Some(false)),
            ("lt `xy` `xyz`", Some(true)),
            ("le 1.5 1.5", Some(true)),
            ("le 2.5 1.5", Some(false)),
            ("le 1 2", Some(true)),
            ("le 2 1", Some(false)),
            ("le `xyz` `xy`", Some(false)),
            ("gt 1.5 1.5", Some(false)),
            ("gt 2 1", Some(true)),
            ("gt `xy` `xyz`", Some(false)),
            ("ge 1.5 1.5", Some(true)),
            ("ge 1 2", Some(false)),
            ("ge `xyz` `xy`", Some(true)),
            ("eq (index `x` 0) 'x'", Some(true)),
            ("eq (index `x` 0) 'y'", Some(false)),
            ("eq .I (len `x`)", Some(false)),
            ("eq (add 1 2) 3", Some(true)),
            ("eq .Empty0 .Empty0", Some(true)),
            ("eq .Empty0 0", Some(false)),
            ("eq 0 .Empty0", Some(false)),
            ("eq `xy` 1", None),
            ("eq 2 2.0", None),
            ("lt true true", None),
            ("lt .SI .SI", None),
            ("eq .SI .SI", None),
            ("eq .U .U", Some(true)),
            ("eq 1", None),
        ];
        for (expr, want) in cases {
            let text = format!("{{{{if {expr}}}}}true{{{{else}}}}false{{{{end}}}}");
            let got = run(&text, &t_val());
            match want {
                Some(want) => assert_eq!(got, Ok(want.to_string()), "{expr}"),
                None => assert!(got.is_err(), "{expr}: {got:?}"),
            }
        }
        let err = run("{{eq `xy` 1}}", &Data::Nil).unwrap_err();
        assert!(err.message.ends_with(
            "at <eq `xy` 1>: error calling eq: incompatible types for comparison: string and int"
        ));
    }

    #[test]
    fn go_number_syntax() {
        check_table(
            &Data::Nil,
            &[
                ("decimal", "{{print 1234}}", Some("1234")),
                ("decimal _", "{{print 12_34}}", Some("1234")),
                ("binary", "{{print 0b101}}", Some("5")),
                ("binary _", "{{print 0b_1_0_1}}", Some("5")),
                ("BINARY", "{{print 0B101}}", Some("5")),
                ("octal0", "{{print 0377}}", Some("255")),
                ("octal", "{{print 0o377}}", Some("255")),
                ("octal _", "{{print 0o_3_7_7}}", Some("255")),
                ("OCTAL", "{{print 0O377}}", Some("255")),
                ("hex", "{{print 0x123}}", Some("291")),
                ("hex _", "{{print 0x1_23}}", Some("291")),
                ("HEX", "{{print 0X123ABC}}", Some("1194684")),
                ("float", "{{print 123.4}}", Some("123.4")),
                ("float _", "{{print 0_0_1_2_3.4}}", Some("123.4")),
                ("hex float", "{{print +0x1.ep+2}}", Some("7.5")),
                ("hex float _", "{{print +0x_1.e_0p+0_2}}", Some("7.5")),
                ("HEX float", "{{print +0X1.EP+2}}", Some("7.5")),
                (
                    "print multi",
                    "{{print 1_2_3_4 7.5_00_00_00}}",
                    Some("1234 7.5"),
                ),
                (
                    "print multi2",
                    "{{print 1234 0x0_1.e_0p+02}}",
                    Some("1234 7.5"),
                ),
                ("negative", "{{-3}} {{+4}}", Some("-3 4")),
                (
                    "float %v",
                    "{{1e6}} {{123456.0}} {{0.1}} {{1.0}} {{1e-5}} {{-0.0}}",
                    Some("1e+06 123456 0.1 1 1e-05 -0"),
                ),
                (
                    "big float",
                    "{{123456789.0}} {{1e21}}",
                    Some("1.23456789e+08 1e+21"),
                ),
                ("uint overflows int", "{{18446744073709551615}}", None),
            ],
        );
    }

    #[test]
    fn go_printf_verbs() {
        check_table(
            &t_val(),
            &[
                (
                    "integers",
                    r#"{{printf "%5d|%-5d|%05d|%x|%X|%o|%b|%c|%q|%U|%+d|%#x" 42 42 42 255 255 8 5 65 65 65 5 255}}"#,
                    Some("   42|42   |00042|ff|FF|10|101|A|'A'|U+0041|+5|0xff"),
                ),
                (
                    "floats",
                    r#"{{printf "%.2f|%8.3f|%e|%g|%v|%6.2f|%.3g|%G" 3.14159 2.5 1234.5678 0.000012 1e21 -1.5 1234.5678 1e-7}}"#,
                    Some("3.14|   2.500|1.234568e+03|1.2e-05|1e+21| -1.50|1.23e+03|1E-07"),
                ),
                (
                    "strings and bools",
                    r#"{{printf "%t|%v|%s|%q|%x|%5s|%-5s|%.2s|%%" true false "hi" "hi\n" "hi" "ab" "ab" "abc"}}"#,
                    Some("true|false|hi|\"hi\\n\"|6869|   ab|ab   |ab|%"),
                ),
                (
                    "bad verbs",
                    r#"{{printf "%d %s %t" "x" 1 nil}}"#,
                    Some("%!d(string=x) %!s(int=1) %!t(<nil>)"),
                ),
                ("missing", r#"{{printf "%d %d" 1}}"#, Some("1 %!d(MISSING)")),
                (
                    "extra",
                    r#"{{printf "x" 1 "a"}}"#,
                    Some("x%!(EXTRA int=1, string=a)"),
                ),
                ("no verb", r#"{{printf "a%"}}"#, Some("a%!(NOVERB)")),
                (
                    "list",
                    r#"{{printf "%v|%d" (list 1 "a" nil) .SI}}"#,
                    Some("[1 a <nil>]|[3 4 5]"),
                ),
                ("struct", r#"{{printf "%v|%+v" .U .U}}"#, Some("{v}|{V:v}")),
                (
                    "map",
                    r#"{{printf "%v" .MSI}}"#,
                    Some("map[one:1 three:3 two:2]"),
                ),
                (
                    "types",
                    r#"{{printf "%T %T %T %T" (list) .MSI .Empty3 (add 1 2)}}"#,
                    Some("[]interface {} map[string]int []int int64"),
                ),
                (
                    "infinity",
                    r#"{{printf "%v %f %5.1f" (float64 "inf") (float64 "-Inf") (float64 "NaN")}}"#,
                    Some("+Inf -Inf   NaN"),
                ),
                (
                    "quote unicode",
                    r#"{{printf "%q" "é\u00a0\x01"}}"#,
                    Some(r#""é\u00a0\x01""#),
                ),
            ],
        );
    }

    #[test]
    fn go_js_escaping() {
        // Go's TestJSEscaping.
        let cases = [
            ("a", "a"),
            ("'foo", r"\'foo"),
            (r#"Go "jump" \"#, r#"Go \"jump\" \\"#),
            (
                "Yukihiro says \"今日は世界\"",
                "Yukihiro says \\\"今日は世界\\\"",
            ),
            ("unprintable \u{FFFE}", r"unprintable \uFFFE"),
            ("<html>", r"\u003Chtml\u003E"),
            ("no = in attributes", r"no \u003D in attributes"),
            (
                "&#x27; does not become HTML entity",
                r"\u0026#x27; does not become HTML entity",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(js_escape(input), want);
        }
    }

    #[test]
    fn go_templates_define_block_and_trim() {
        let cases: &[(&str, &str, Data)] = &[
            (
                r#"{{define "T1"}}ONE{{end}}{{define "T2"}}TWO{{end}}{{define "T3"}}{{template "T1"}} {{template "T2"}}{{end}}{{template "T3"}}"#,
                "ONE TWO",
                Data::Nil,
            ),
            (
                r#"a({{block "inner" .}}bar({{.}})baz{{end}})b"#,
                "a(bar(hello)baz)b",
                s("hello"),
            ),
            (
                r#"{{define "x"}}[{{.}}|{{$}}]{{end}}{{template "x" 3}}{{template "x"}}"#,
                "[3|3][<no value>|<no value>]",
                Data::Nil,
            ),
            ("{{23 -}} < {{- 45}}", "23<45", Data::Nil),
            ("{{- 3}}|{{-3}}", "3|-3", Data::Nil),
            ("a\n{{-\t3\t-}}\nb", "a3b", Data::Nil),
            ("x {{- /* c */ -}} y", "xy", Data::Nil),
            ("a{{/* a\nmulti-line comment */}}b", "ab", Data::Nil),
            ("{{`raw\r\nstring`}}", "raw\nstring", Data::Nil),
            (
                "{{\"\\x41\\u00e9\\U0001F600\\101\\t\"}}",
                "Aé😀A\t",
                Data::Nil,
            ),
            // An empty redefinition does not replace a template.
            (
                r#"{{define "defaultRule"}}body{{end}}   "#,
                "body",
                Data::Nil,
            ),
        ];
        for (text, want, data) in cases {
            assert_eq!(run(text, data).as_deref(), Ok(*want), "{text}");
        }
    }

    #[test]
    fn go_tree_template() {
        // Go's TestTree, with the default delimiters.
        fn tree(val: i64, left: Data, right: Data) -> Data {
            fields(&[("Val", Data::Int(val)), ("Left", left), ("Right", right)])
        }
        fn leaf(val: i64) -> Data {
            tree(val, Data::Nil, Data::Nil)
        }
        let data = tree(
            1,
            tree(2, tree(3, leaf(4), Data::Nil), tree(5, leaf(6), Data::Nil)),
            tree(
                7,
                tree(8, leaf(9), Data::Nil),
                tree(10, leaf(11), Data::Nil),
            ),
        );
        let text = r#"
	{{- define "tree" -}}
	[
		{{- .Val -}}
		{{- with .Left -}}
			{{template "tree" . -}}
		{{- end -}}
		{{- with .Right -}}
			{{- template "tree" . -}}
		{{- end -}}
	]
	{{- end -}}
{{template "tree" .}}"#;
        assert_eq!(
            run(text, &data).as_deref(),
            Ok("[1[2[3[4]][5[6]]][7[8[9]][10[11]]]]")
        );
    }

    #[test]
    fn go_exec_error_names_the_nested_template() {
        // Go's TestExecError.
        let text = "line 1\nline 2\nline 3\n{{template \"one\" .}}\n{{define \"one\"}}{{template \"two\" .}}{{end}}\n{{define \"two\"}}{{template \"three\" .}}{{end}}\n{{define \"three\"}}{{index \"hi\" $}}{{end}}";
        let err = run(text, &Data::Int(5)).unwrap_err();
        assert_eq!(
            err.message,
            r#"executing "three" at <index "hi" $>: error calling index: index out of range: 5"#
        );
        assert_eq!(err.offset, text.find("index \"hi\"").unwrap());
    }

    #[test]
    fn exec_limits() {
        let err = run(
            r#"{{define "x"}}{{template "x" .}}{{end}}{{template "x"}}"#,
            &Data::Nil,
        )
        .unwrap_err();
        assert!(
            err.message
                .ends_with("exceeded maximum template depth (100)"),
            "{err}"
        );
        let err = run("{{range 100000000}}{{end}}", &Data::Nil).unwrap_err();
        assert!(
            err.message.contains("more than 10000000 iterations"),
            "{err}"
        );
        let err = run(
            r#"{{range until 70000}}{{repeat 1000 "x"}}{{end}}"#,
            &Data::Nil,
        )
        .unwrap_err();
        assert!(err.message.ends_with("output exceeds 64 MiB"), "{err}");
        let err = run(r#"{{$d := dict}}{{$_ := set $d "self" $d}}"#, &Data::Nil).unwrap_err();
        assert!(
            err.message
                .ends_with("a map cannot be set to contain itself"),
            "{err}"
        );
        let deep = "{{if 1}}".repeat(150) + &"{{end}}".repeat(150);
        assert!(Template::parse(&deep).is_err());
        // The deepest nesting the parser accepts runs within a test thread's stack.
        let nested = "{{if 1}}".repeat(99) + "x" + &"{{end}}".repeat(99);
        assert_eq!(run(&nested, &Data::Nil).as_deref(), Ok("x"));
        let parens = "{{".to_string() + &"(".repeat(98) + "1" + &")".repeat(98) + "}}";
        assert_eq!(run(&parens, &Data::Nil).as_deref(), Ok("1"));
        let in_template = format!(r#"{{{{define "n"}}}}{nested}{{{{end}}}}{{{{template "n"}}}}"#);
        assert_eq!(run(&in_template, &Data::Nil).as_deref(), Ok("x"));
        let recursive = format!(
            r#"{{{{define "n"}}}}{}{{{{template "n"}}}}{}{{{{end}}}}{{{{template "n"}}}}"#,
            "{{if 1}}".repeat(50),
            "{{end}}".repeat(50)
        );
        let err = run(&recursive, &Data::Nil).unwrap_err();
        assert!(
            err.message
                .ends_with("exceeded maximum nesting depth (300)"),
            "{err}"
        );
    }

    #[test]
    fn parse_errors_name_the_problem_and_its_offset() {
        let cases: &[(&str, usize, &str)] = &[
            ("ab {{ .Name", 3, "unclosed action"),
            ("{{ foo }}", 3, r#"function "foo" not defined"#),
            (
                "{{ sha1sum .Name }}",
                3,
                r#"function "sha1sum" not defined (a Sprig function betaroute does not implement)"#,
            ),
            ("{{if .X}}", 9, "unexpected EOF"),
            ("{{end}}", 2, "unexpected {{end}}"),
            ("x{{else}}", 3, "unexpected {{else}}"),
            ("{{ $x }}", 3, r#"undefined variable "$x""#),
            (
                "{{range $i, $v := .}}{{end}}{{$i}}",
                30,
                r#"undefined variable "$i""#,
            ),
            (
                "{{ .X | 3 }}",
                8,
                "non executable command in pipeline stage 2",
            ),
            ("{{ (1 }}", 6, "unclosed left paren"),
            ("{{ 1) }}", 4, "unexpected right paren"),
            ("{{ 3x }}", 3, r#"bad number syntax: "3x""#),
            ("{{ 0x }}", 3, r#"illegal number syntax: "0x""#),
            (
                "{{ 99999999999999999999 }}",
                3,
                r#"integer overflow: "99999999999999999999""#,
            ),
            ("{{ 1+2i }}", 3, "complex numbers are not supported"),
            ("{{/* x }}", 0, "unclosed comment"),
            ("{{/* x */ y }}", 9, "comment ends before closing delimiter"),
            ("{{ \"abc }}", 3, "unterminated quoted string"),
            ("{{ `abc }}", 3, "unterminated raw quoted string"),
            ("{{ 'ab' }}", 3, "malformed character constant: 'ab'"),
            ("{{ \"\\q\" }}", 3, "invalid syntax"),
            ("{{ \"\\xff\" }}", 3, "string literal is not valid UTF-8"),
            ("{{break}}", 7, "{{break}} outside {{range}}"),
            (
                "{{range .}}{{continue 1}}{{end}}",
                22,
                "unexpected \"1\" in {{continue}}",
            ),
            ("{{if}}{{end}}", 4, "missing value for if"),
            ("{{ .X & }}", 6, "unexpected \"&\" in operand"),
            ("{{ .X @ }}", 6, "unexpected \"@\" in operand"),
            (
                "{{ .X € }}",
                6,
                "unrecognized character in action: U+20AC '€'",
            ),
            ("{{ $x=1 }}", 3, "bad character U+003D '='"),
            ("{{ \"x\".Foo }}", 6, r#"unexpected . after term "\"x\"""#),
            (
                "{{if 1}}{{define \"a\"}}{{end}}{{end}}",
                10,
                "unexpected <define> in command",
            ),
            (
                "{{define \"a\"}}x{{else}}{{end}}",
                17,
                "unexpected {{else}} in define clause",
            ),
            (
                "{{if 1}}{{else}}{{else}}{{end}}",
                18,
                "expected end; found {{else}}",
            ),
            (
                "{{range 1}}{{else if 1}}{{end}}",
                18,
                "unexpected <if> in input",
            ),
            (
                "{{template .X}}",
                11,
                "unexpected \".X\" in template clause",
            ),
            (
                r#"{{define "a"}}x{{end}}{{define "a"}}y{{end}}"#,
                31,
                r#"template: multiple definition of template "a""#,
            ),
            ("{{ $x, $y := 1 }}", 5, "too many declarations in command"),
            (
                "{{range $x, 1}}{{end}}",
                12,
                "range can only initialize variables",
            ),
        ];
        for (text, offset, message) in cases {
            let err = Template::parse(text).unwrap_err();
            assert_eq!(
                (err.offset, err.message.as_str()),
                (*offset, *message),
                "{text}"
            );
        }
    }

    #[test]
    fn execution_errors_name_the_problem_and_its_offset() {
        let data = model("Test", &[]);
        let cases: &[(&str, usize, &str)] = &[
            ("{{ lower }}", 3, "at <lower>: wrong number of args for lower: want 1 got 0"),
            (r#"{{ lower "a" "b" }}"#, 3, "at <lower>: wrong number of args for lower: want 1 got 2"),
            ("{{ and }}", 3, "at <and>: wrong number of args for and: want at least 1 got 0"),
            // Go leaves `at` on the last argument it evaluated.
            (r#"{{ repeat (add 1 2) "x" }}"#, 17, "at <2>: wrong type for value; expected int; got int64"),
            ("{{ upper 3 }}", 9, "at <3>: expected string; found 3"),
            (r#"{{ repeat "3" "x" }}"#, 10, r#"at <"3">: expected integer; found "3""#),
            (r#"{{ ternary 1 2 "x" }}"#, 15, r#"at <"x">: expected bool; found "x""#),
            ("{{ upper nil }}", 9, "at <nil>: cannot assign nil to string"),
            // Go places a field chain at its second field.
            ("{{ upper .Labels.x }}", 16, "at <.Labels.x>: invalid value; expected string"),
            (r#"{{ hasKey .Labels "a" }}"#, 10, "at <.Labels>: wrong type for value; expected map[string]interface {}; got map[string]string"),
            (r#"{{ get "x" "a" }}"#, 7, r#"at <"x">: can't handle "x" for arg of type map[string]interface {}"#),
            ("{{ .Name.First }}", 8, "at <.Name.First>: can't evaluate field First in type string"),
            ("{{ .Name 1 }}", 3, "at <.Name>: Name has arguments but cannot be invoked as function"),
            ("{{ .Labels.x 1 }}", 10, "at <.Labels.x>: x is not a method but has arguments"),
            ("{{ nil }}", 3, "at <nil>: nil is not a command"),
            (r#"{{ "a" 1 }}"#, 3, r#"at <"a">: can't give argument to non-function "a""#),
            (r#"{{ template "nope" }}"#, 12, r#"at <{{template "nope"}}>: template "nope" not defined"#),
            ("{{ $x := 1 }}{{ $y = 2 }}", 21, "at <2>: undefined variable: $y"),
            (r#"{{ fail "boom" }}"#, 3, r#"at <fail "boom">: error calling fail: boom"#),
            ("{{ div 1 0 }}", 3, "at <div 1 0>: error calling div: runtime error: integer divide by zero"),
            ("{{ range .Name }}{{ end }}", 9, "at <.Name>: range can't iterate over Test"),
        ];
        for (text, offset, message) in cases {
            let err = run(text, &data).unwrap_err();
            let full = format!(r#"executing "defaultRule" {message}"#);
            assert_eq!(
                (err.offset, err.message.as_str()),
                (*offset, full.as_str()),
                "{text}"
            );
        }
    }

    #[test]
    fn sprig_string_functions() {
        let data = model("Test", &[("a", "1")]);
        check_table(
            &data,
            &[
                ("normalize", "{{ normalize `a.b/c` }}", Some("a-b-c")),
                ("lower", r#"{{ lower "HELLO" }}"#, Some("hello")),
                ("lower unicode", r#"{{ lower "ÀİΣ" }}"#, Some("àiσ")),
                ("upper", r#"{{ upper "hello" }}"#, Some("HELLO")),
                ("upper keeps ß", r#"{{ upper "straße" }}"#, Some("STRAßE")),
                ("title", r#"{{ title "hello world" }}"#, Some("Hello World")),
                (
                    "title separators",
                    r#"{{ title "a-b_c d.e ǆx" }}"#,
                    Some("A-B_c D.E ǅx"),
                ),
                ("trim", r#"{{ trim "   hello    " }}"#, Some("hello")),
                ("trimAll", r#"{{ trimAll "$" "$5.00" }}"#, Some("5.00")),
                ("trimall", r#"{{ trimall "$" "$5.00$" }}"#, Some("5.00")),
                (
                    "trimPrefix",
                    r#"{{ trimPrefix "-" "-hello" }}"#,
                    Some("hello"),
                ),
                (
                    "trimSuffix",
                    r#"{{ trimSuffix "-" "hello-" }}"#,
                    Some("hello"),
                ),
                (
                    "replace",
                    r#"{{ "I Am Henry VIII" | replace " " "-" }}"#,
                    Some("I-Am-Henry-VIII"),
                ),
                (
                    "repeat",
                    r#"{{ repeat 3 "hello" }}"#,
                    Some("hellohellohello"),
                ),
                ("repeat negative", r#"{{ repeat -1 "hello" }}"#, None),
                ("substr", r#"{{ substr 0 5 "hello world" }}"#, Some("hello")),
                (
                    "substr to end",
                    r#"{{ substr 6 -1 "hello world" }}"#,
                    Some("world"),
                ),
                (
                    "substr from start",
                    r#"{{ substr -1 5 "hello world" }}"#,
                    Some("hello"),
                ),
                ("substr out of range", r#"{{ substr -1 50 "hello" }}"#, None),
                ("trunc", r#"{{ trunc 5 "hello world" }}"#, Some("hello")),
                (
                    "trunc negative",
                    r#"{{ trunc -5 "hello world" }}"#,
                    Some("world"),
                ),
                ("trunc longer", r#"{{ trunc 50 "hello" }}"#, Some("hello")),
                ("contains", r#"{{ contains "cat" "catch" }}"#, Some("true")),
                (
                    "hasPrefix",
                    r#"{{ hasPrefix "cat" "catch" }}"#,
                    Some("true"),
                ),
                (
                    "hasSuffix",
                    r#"{{ hasSuffix "cat" "catch" }}"#,
                    Some("false"),
                ),
                (
                    "quote",
                    r#"{{ quote "hello" 1 nil "a\"b" }}"#,
                    Some(r#""hello" "1" "a\"b""#),
                ),
                (
                    "squote",
                    r#"{{ squote "hello" 1 nil }}"#,
                    Some("'hello' '1'"),
                ),
                (
                    "cat",
                    r#"{{ cat "hello" "beautiful" "world" nil 3 }}"#,
                    Some("hello beautiful world 3"),
                ),
                (
                    "nospace",
                    r#"{{ nospace "hello w o r l d" }}"#,
                    Some("helloworld"),
                ),
                ("indent", "{{ indent 2 \"a\\nb\" }}", Some("  a\n  b")),
                ("nindent", "{{ nindent 2 \"a\" }}", Some("\n  a")),
                (
                    "plural",
                    r#"{{ plural "one" "many" 1 }} {{ plural "one" "many" 2 }}"#,
                    Some("one many"),
                ),
                ("toString", "{{ toString 5 | printf `%T` }}", Some("string")),
                (
                    "toString list",
                    "{{ toString (list 1 `a`) }}",
                    Some("[1 a]"),
                ),
            ],
        );
        assert_eq!(delete_white_space("é x"), "Ã©x");
        assert_eq!(delete_white_space("éx"), "éx");
    }

    #[test]
    fn sprig_defaults_lists_and_dicts() {
        let data = model("Test", &[("a", "1")]);
        check_table(
            &data,
            &[
                ("default missing", r#"{{ .Labels.missing | default "foo" }}"#, Some("foo")),
                ("default set", r#"{{ default "foo" "bar" }}"#, Some("bar")),
                ("default empty", r#"{{ default "foo" "" }}"#, Some("foo")),
                ("default no given", r#"{{ default "foo" }}"#, Some("foo")),
                ("empty", r#"{{ empty "" }} {{ empty 0 }} {{ empty (list) }} {{ empty "x" }}"#, Some("true true true false")),
                ("coalesce", r#"{{ coalesce 0 "" "x" "y" }}"#, Some("x")),
                ("coalesce none", r#"{{ coalesce 0 "" }}"#, Some("<no value>")),
                ("ternary", r#"{{ ternary "foo" "no" true }} {{ true | ternary "foo" "no" }} {{ ternary "foo" "no" false }}"#, Some("foo foo no")),
                ("list", "{{ list 1 2 3 }}", Some("[1 2 3]")),
                ("tuple", "{{ tuple 1 `a` }}", Some("[1 a]")),
                ("dict", r#"{{ dict "name1" "value1" "name2" "value2" "odd" }}"#, Some("map[name1:value1 name2:value2 odd:]")),
                ("dict field", r#"{{ (dict "a" 1).a }}"#, Some("1")),
                ("get", r#"{{ get (dict "a" 1) "a" }}|{{ get (dict) "b" }}"#, Some("1|")),
                ("set", r#"{{ $d := dict "a" 1 }}{{ $_ := set $d "b" 2 }}{{ $d }}"#, Some("map[a:1 b:2]")),
                ("hasKey", r#"{{ hasKey (dict "a" 1) "a" }} {{ hasKey (dict "a" 1) "b" }}"#, Some("true false")),
                ("keys", r#"{{ keys (dict "b" 1 "a" 2) (dict "c" 3) }}"#, Some("[a b c]")),
                ("keys sorted with sortAlpha", r#"{{ keys (dict "b" 1 "a" 2) | sortAlpha }}"#, Some("[a b]")),
                ("split", r#"{{ $a := split "$" "foo$bar$baz" }}{{ $a._0 }} {{ $a._2 }} {{ $a }}"#, Some("foo baz map[_0:foo _1:bar _2:baz]")),
                ("splitList", r#"{{ splitList "$" "foo$bar$baz" }}"#, Some("[foo bar baz]")),
                ("splitList empty separator", r#"{{ splitList "" "abc" }}"#, Some("[a b c]")),
                ("join", r#"{{ list "a" "b" "c" | join "_" }}"#, Some("a_b_c")),
                ("join mixed", r#"{{ join "," (list 1 nil "x") }}|{{ join "," "single" }}"#, Some("1,x|single")),
                ("toStrings", r#"{{ $s := toStrings (list 1 2) }}{{ printf "%T %v" $s $s }}"#, Some("[]string [1 2]")),
                ("first", "{{ first (list 1 2 3 4 5) }}", Some("1")),
                ("first empty", "{{ first (list) }}", Some("<no value>")),
                ("first of a string", "{{ first `abc` }}", None),
                ("mustFirst", "{{ mustFirst (list 1 2) }}", Some("1")),
                ("last", "{{ last (list 1 2 3 4 5) }}", Some("5")),
                ("rest", "{{ rest (list 1 2 3 4 5) }}", Some("[2 3 4 5]")),
                ("initial", "{{ initial (list 1 2 3 4 5) }}", Some("[1 2 3 4]")),
                ("uniq", "{{ list 1 1 1 2 `1` | uniq }}", Some("[1 2 1]")),
                ("has", "{{ has 4 (list 1 2 3 4) }} {{ has `4` (list 1 2 3 4) }} {{ has 1 nil }}", Some("true false false")),
                ("has on string", "{{ has 1 `abc` }}", None),
                ("slice", "{{ slice (list 1 2 3 4 5) 1 3 }} {{ slice (list 1 2 3) 1 }} {{ slice (list 1 2) }}", Some("[2 3] [2 3] [1 2]")),
                ("slice of a string", "{{ slice `abc` 1 }}", None),
                ("slice out of range", "{{ slice (list 1 2) 1 5 }}", None),
                ("append", "{{ append (list 1 2) 3 }} {{ prepend (list 1 2) 0 }}", Some("[1 2 3] [0 1 2]")),
                ("reverse", "{{ reverse (list 1 2 3) }}", Some("[3 2 1]")),
                ("without", "{{ without (list 1 2 3 4) 1 3 }}", Some("[2 4]")),
                ("compact", "{{ compact (list 1 \"\" 0 nil \"a\") }}", Some("[1 a]")),
                ("concat", "{{ concat (list 1 2) (list 3) }}", Some("[1 2 3]")),
                ("typeOf kindOf", "{{ typeOf .Labels }} {{ kindOf .Labels }} {{ kindOf 1 }}", Some("map[string]string map int")),
                ("deepEqual", "{{ deepEqual (list 1 2) (list 1 2) }} {{ deepEqual 1 (int64 1) }}", Some("true false")),
                ("toJson", r#"{{ toJson (dict "b" (list 1 2.5 "x<y" nil true) "a" $.Labels "c" 1e-7) }}"#, Some(r#"{"a":{"a":"1"},"b":[1,2.5,"x\u003cy",null,true],"c":1e-7}"#)),
                ("toJson struct", "{{ toJson . }}", Some(r#"{"Name":"Test","Labels":{"a":"1"}}"#)),
                ("toJson NaN", r#"{{ toJson (float64 "NaN") }}"#, Some("")),
                ("mustToJson NaN", r#"{{ mustToJson (float64 "NaN") }}"#, None),
            ],
        );
    }

    #[test]
    fn sprig_regex_functions() {
        check_table(
            &Data::Nil,
            &[
                (
                    "regexMatch",
                    r#"{{ regexMatch "^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[A-Za-z]{2,}$" "test@acme.com" }}"#,
                    Some("true"),
                ),
                (
                    "regexMatch unanchored",
                    r#"{{ regexMatch "b+" "abbc" }}"#,
                    Some("true"),
                ),
                (
                    "regexMatch bad pattern",
                    r#"{{ regexMatch "(" "x" }}"#,
                    Some("false"),
                ),
                (
                    "mustRegexMatch bad pattern",
                    r#"{{ mustRegexMatch "(" "x" }}"#,
                    None,
                ),
                (
                    "regexFind",
                    r#"{{ regexFind "[a-zA-Z][1-9]" "abcd1234" }}"#,
                    Some("d1"),
                ),
                ("regexFind bad pattern", r#"{{ regexFind "(" "x" }}"#, None),
                (
                    "regexFindAll",
                    r#"{{ regexFindAll "[2,4,6,8]" "123456789" -1 }}"#,
                    Some("[2 4 6 8]"),
                ),
                (
                    "regexFindAll n",
                    r#"{{ regexFindAll "[2,4,6,8]" "123456789" 2 }}"#,
                    Some("[2 4]"),
                ),
                (
                    "regexReplaceAll",
                    r#"{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }}"#,
                    Some("-W-xxW-"),
                ),
                (
                    "regexReplaceAll empty matches",
                    r#"{{ regexReplaceAll "a*" "baaab" "-" }}"#,
                    Some("-b-b-"),
                ),
                (
                    "regexReplaceAllLiteral",
                    r#"{{ regexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "${1}" }}"#,
                    Some("-${1}-${1}-"),
                ),
                (
                    "regexSplit",
                    r#"{{ regexSplit "z+" "pizza" -1 }}"#,
                    Some("[pi a]"),
                ),
                (
                    "regexSplit n",
                    r#"{{ regexSplit "," "a,b,c" 2 }}"#,
                    Some("[a b,c]"),
                ),
                (
                    "regexSplit empty",
                    r#"{{ regexSplit "" "abc" -1 }}"#,
                    Some("[a b c]"),
                ),
                (
                    "regexQuoteMeta",
                    r#"{{ regexQuoteMeta "1.5+1=2.5?" }}"#,
                    Some(r"1\.5\+1=2\.5\?"),
                ),
                // Go's \w, \d, \s and \b are ASCII-only.
                (
                    "ascii classes",
                    r#"{{ regexFindAll "\\w+" "héllo wörld" -1 }}"#,
                    Some("[h llo w rld]"),
                ),
                (
                    "ascii digits",
                    r#"{{ regexMatch "^\\d$" "٣" }}"#,
                    Some("false"),
                ),
                (
                    "unicode class",
                    r#"{{ regexMatch "^\\pL+$" "héllo" }}"#,
                    Some("true"),
                ),
                (
                    "bracket literal",
                    r#"{{ regexMatch "^[[]x[&&]$" "[x&" }}"#,
                    Some("true"),
                ),
                (
                    "posix class",
                    r#"{{ regexMatch "^[[:alpha:]\\d]+$" "ab12" }}"#,
                    Some("true"),
                ),
            ],
        );
        let err = run(r#"{{ regexFind "(" "x" }}"#, &Data::Nil).unwrap_err();
        assert!(
            err.message
                .contains("error calling regexFind: regexp: Compile(`(`): error parsing regexp:"),
            "{err}"
        );
    }

    #[test]
    fn sprig_math_and_conversions() {
        check_table(
            &Data::Nil,
            &[
                ("add", "{{ add 1 2 3 }} {{ add }} {{ add `4` 1.9 true }}", Some("6 0 6")),
                ("add1", "{{ add1 1 }}", Some("2")),
                ("sub", "{{ sub 3 2 }}", Some("1")),
                ("mul", "{{ mul 2 3 4 }}", Some("24")),
                ("div", "{{ div 9 2 }}", Some("4")),
                ("mod", "{{ mod 9 2 }}", Some("1")),
                ("mod by zero", "{{ mod 9 0 }}", None),
                ("max", "{{ max 1 5 3 }} {{ biggest 1 7 }}", Some("5 7")),
                ("min", "{{ min 4 1 3 }}", Some("1")),
                ("int", r#"{{ int "12" }} {{ int 3.9 }} {{ int "0x10" }} {{ int "010" }} {{ int "1.00" }} {{ int "nope" }} {{ typeOf (int 1) }}"#, Some("12 3 16 8 1 0 int")),
                ("int64", r#"{{ int64 "12" | typeOf }}"#, Some("int64")),
                ("float64", r#"{{ float64 "1.5" }} {{ float64 3 }} {{ float64 "x" }}"#, Some("1.5 3 0")),
                ("atoi", r#"{{ atoi "42" }} {{ atoi "0x10" }} {{ atoi "-7" }}"#, Some("42 0 -7")),
                ("until", "{{ until 5 }} {{ until -3 }}", Some("[0 1 2 3 4] [0 -1 -2]")),
                ("untilStep", "{{ untilStep 3 6 2 }} {{ untilStep 0 10 -1 }}", Some("[3 5] []")),
                ("range until", "{{ range $i, $e := until 3 }}{{ $i }}{{ end }}", Some("012")),
                ("seq", "{{ seq 5 }}|{{ seq -3 }}|{{ seq 0 2 }}|{{ seq 2 -2 }}|{{ seq 0 2 10 }}|{{ seq 0 -2 -5 }}|{{ seq 0 2 -5 }}|{{ seq }}", Some("1 2 3 4 5|1 0 -1 -2 -3|0 1 2|2 1 0 -1 -2|0 2 4 6 8 10|0 -2 -4||")),
                ("b64enc", r#"{{ b64enc "hello" }} {{ b64enc "" }} {{ b64enc "ab" }}"#, Some("aGVsbG8=  YWI=")),
                ("b64dec", r#"{{ b64dec "aGVsbG8=" }} {{ b64dec "YWI=" }}"#, Some("hello ab")),
                ("b64dec errors", r#"{{ b64dec "aGVs*G8=" }}|{{ b64dec "YWJ" }}|{{ b64dec "YQ=" }}"#, Some("illegal base64 data at input byte 4|illegal base64 data at input byte 0|illegal base64 data at input byte 3")),
                ("sha256sum", r#"{{ sha256sum "Hello world!" }}"#, Some("c0535e4be2b79ffd93291305436bf889314e4a3faec05ecffcbb7df31ad9e51a")),
                ("sha256sum abc", r#"{{ sha256sum "abc" }}"#, Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")),
                ("sha256sum empty", r#"{{ sha256sum "" }}"#, Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")),
            ],
        );
        let long = "a".repeat(1000);
        let b64 = base64_encode(long.as_bytes());
        assert_eq!(base64_decode(&b64).unwrap(), long.as_bytes());
        assert_eq!(hex_lower(&sha256(long.as_bytes())).len(), 64);
    }

    #[test]
    fn env_and_expandenv_read_the_injected_environment() {
        let options = Options::default_rule().with_env(|name| match name {
            "HOME" => Some("/home/x".to_string()),
            _ => None,
        });
        let run = |text: &str| {
            Template::parse_with(text, options.clone())
                .unwrap()
                .execute(&Data::Nil)
        };
        assert_eq!(
            run(r#"{{ env "HOME" }}|{{ env "NOPE" }}"#).as_deref(),
            Ok("/home/x|")
        );
        assert_eq!(
            run(r#"{{ expandenv "home=$HOME ${HOME} [$NOPE] cost: $ 5 ${} $" }}"#).as_deref(),
            Ok("home=/home/x /home/x [] cost: $ 5  $")
        );
    }

    #[test]
    fn the_file_provider_splits_with_strings_split() {
        let options = Options::file_provider("dynamic.toml");
        let tmpl = Template::parse_with(r#"{{ index (split "a,b" ",") 1 }}"#, options).unwrap();
        assert_eq!(tmpl.name(), "dynamic.toml");
        assert_eq!(tmpl.execute(&Data::Bool(false)).as_deref(), Ok("b"));
        let err = Template::parse_with("{{ .X }}", Options::file_provider("dynamic.toml"))
            .unwrap()
            .execute(&Data::Bool(false))
            .unwrap_err();
        assert_eq!(
            err.message,
            r#"executing "dynamic.toml" at <.X>: can't evaluate field X in type bool"#
        );
    }

    #[test]
    fn data_from_json() {
        let json: serde_json::Value =
            serde_json::from_str(r#"{"a": [1, 2.5, "x", null, true], "b": {"c": "d"}}"#).unwrap();
        let data = Data::from(&json);
        assert_eq!(
            run(
                "{{ .a }} {{ .b.c }} {{ index .b \"zz\" }}|{{ typeOf .b }}",
                &data
            )
            .as_deref(),
            Ok("[1 2.5 x <nil> true] d |map[string]string")
        );
    }

    #[test]
    fn go_regex_translation() {
        assert_eq!(translate_go_regex(r"\d[\w-]"), r"[0-9][0-9A-Za-z_-]");
        assert_eq!(translate_go_regex(r"[^]a[]\b"), r"[^\]a\[](?-u:\b)");
        assert_eq!(translate_go_regex(r"\Qa.b\E+"), r"a\.b+");
        assert!(go_regex("a{2,1}").is_err());
    }
}
