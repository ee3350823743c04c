//! oxy's predicate language (`vulcand/predicate` v1.3.0, which parses with Go's
//! `go/parser.ParseExpr`), shared by `circuitBreaker`'s `expression` and `buffering`'s
//! `retryExpression`. Each names its own functions ([`Function`]); the grammar is the same:
//!
//! - comparisons of one function call (left) with a literal of its type (right): `==`, `!=`,
//!   `<`, `<=`, `>`, `>=` (strings: `==` and `!=` only);
//! - predicate functions on their own (`IsNetworkError()`);
//! - `&&` and `||` between predicates, with Go's precedence (comparisons, then `&&`, then
//!   `||`) and parentheses.
//!
//! Nothing else: no `!`, no unary minus (so no negative literals), no arithmetic, a literal on
//! the left is refused, a bare identifier is not defined. Literals: integers as `strconv.Atoi`
//! reads them (decimal), floats as `strconv.ParseFloat`, strings as `strconv.Unquote`
//! (`"..."` with Go's escapes, or `` `raw` ``).

/// A literal, as a comparison's right side or a function's argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// Whether `l op r` holds.
    pub fn holds<T: PartialOrd>(self, l: T, r: T) -> bool {
        match self {
            Op::Eq => l == r,
            Op::Ne => l != r,
            Op::Lt => l < r,
            Op::Le => l <= r,
            Op::Gt => l > r,
            Op::Ge => l >= r,
        }
    }

    /// The predicate library's name for the operator, as its messages use it.
    fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "neq",
            Op::Lt => "lt",
            Op::Le => "le",
            Op::Gt => "gt",
            Op::Ge => "ge",
        }
    }
}

/// What a function gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    Predicate,
    Int,
    Float,
    Str,
}

/// A language's functions: a call by name and arguments, checked when parsed.
pub trait Function: Sized {
    fn call(name: &str, args: &[Lit]) -> Result<(Self, Returns), String>;
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr<F> {
    And(Box<Expr<F>>, Box<Expr<F>>),
    Or(Box<Expr<F>>, Box<Expr<F>>),
    /// A function compared with a literal of its type.
    Cmp(F, Op, Lit),
    /// A predicate function.
    Is(F),
}

impl<F: Function> Expr<F> {
    /// Parses and checks an expression; the error says what is wrong in oxy's terms.
    pub fn parse(s: &str) -> Result<Expr<F>, String> {
        let toks = tokens(s)?;
        let mut p = Parser { toks, at: 0 };
        let n = p.or()?;
        if let Some(t) = p.toks.get(p.at) {
            return Err(format!("unexpected {} after the expression", t.show()));
        }
        pred(n)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Int(String),
    Float(String),
    Str(String),
    Punct(&'static str),
}

impl Tok {
    fn show(&self) -> String {
        match self {
            Tok::Ident(s) | Tok::Int(s) | Tok::Float(s) => format!("'{s}'"),
            Tok::Str(s) => format!("{s:?}"),
            Tok::Punct(p) => format!("'{p}'"),
        }
    }
}

const PUNCT2: [&str; 6] = ["&&", "||", "==", "!=", "<=", ">="];
const PUNCT1: [&str; 13] = [
    "(", ")", ",", "<", ">", "!", "-", "+", "*", "/", "%", "&", "|",
];

fn tokens(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(s[start..i].to_owned()));
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            // Go's number token: digits, `_`, hex digits and prefixes; a `.`, or an exponent
            // outside a hex number, makes it a float. The literal's own parser then decides.
            let start = i;
            let mut float = false;
            let hex = s[i..].starts_with("0x") || s[i..].starts_with("0X");
            while i < b.len() {
                match b[i] {
                    b'e' | b'E' if !hex => {
                        float = true;
                        i += 1;
                        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                            i += 1;
                        }
                    }
                    b'p' | b'P' if hex => {
                        float = true;
                        i += 1;
                        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                            i += 1;
                        }
                    }
                    b'.' => {
                        float = true;
                        i += 1;
                    }
                    b'0'..=b'9' | b'_' | b'x' | b'X' | b'o' | b'O' | b'b' | b'B' => i += 1,
                    b'a'..=b'f' | b'A'..=b'F' if hex => i += 1,
                    _ => break,
                }
            }
            let text = s[start..i].to_owned();
            out.push(if float {
                Tok::Float(text)
            } else {
                Tok::Int(text)
            });
        } else if c == b'"' || c == b'`' {
            let (text, len) = string(&s[i..])?;
            out.push(Tok::Str(text));
            i += len;
        } else if c == b'\'' {
            return Err("character literals are not supported: quote strings with \"".to_owned());
        } else if let Some(p) = PUNCT2.iter().find(|p| s[i..].starts_with(**p)) {
            out.push(Tok::Punct(p));
            i += 2;
        } else if let Some(p) = PUNCT1.iter().find(|p| s[i..].starts_with(**p)) {
            out.push(Tok::Punct(p));
            i += 1;
        } else {
            let ch = s[i..].chars().next().unwrap_or('?');
            return Err(format!("unexpected character {ch:?}"));
        }
    }
    Ok(out)
}

/// A Go string literal at the start of `s` (`strconv.Unquote`): its value and its length.
fn string(s: &str) -> Result<(String, usize), String> {
    let unterminated = || "string literal not terminated".to_owned();
    if let Some(rest) = s.strip_prefix('`') {
        let end = rest.find('`').ok_or_else(unterminated)?;
        return Ok((rest[..end].replace('\r', ""), end + 2));
    }
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => return Err(unterminated()),
            '\\' => {
                let (_, e) = chars.next().ok_or_else(unterminated)?;
                let simple = match e {
                    'a' => Some('\x07'),
                    'b' => Some('\x08'),
                    'f' => Some('\x0c'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\x0b'),
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    _ => None,
                };
                if let Some(ch) = simple {
                    out.push(ch);
                    continue;
                }
                let digits = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => return Err(format!("unknown escape sequence \\{e} in a string")),
                };
                let hex: String = (0..digits)
                    .filter_map(|_| chars.next().map(|(_, c)| c))
                    .collect();
                let ch = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == digits)
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("invalid escape \\{e}{hex} in a string"))?;
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    Err(unterminated())
}

/// Go's `strconv.ParseFloat`: decimal (`.5`, `5e-1`, `1_0.5`) or hexadecimal (`0x1p-1`).
fn go_float(s: &str) -> Option<f64> {
    let s = s.replace('_', "");
    let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) else {
        return s.parse().ok();
    };
    let (mantissa, exp) = hex.split_once(['p', 'P'])?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp.parse().ok()?))
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

/// A value while parsing.
enum Node<F> {
    Call(F, Returns, String),
    Lit(Lit),
    Pred(Expr<F>),
}

fn pred<F>(n: Node<F>) -> Result<Expr<F>, String> {
    match n {
        Node::Pred(e) => Ok(e),
        Node::Call(f, Returns::Predicate, _) => Ok(Expr::Is(f)),
        Node::Call(_, r, name) => Err(format!(
            "expected predicate, got {name}() (a {}): compare it with a literal",
            kind(r)
        )),
        Node::Lit(_) => Err("expected predicate, got a literal".to_owned()),
    }
}

fn kind(r: Returns) -> &'static str {
    match r {
        Returns::Predicate => "predicate",
        Returns::Int => "int",
        Returns::Float => "float64",
        Returns::Str => "string",
    }
}

fn lit_kind(l: &Lit) -> &'static str {
    match l {
        Lit::Int(_) => "int",
        Lit::Float(_) => "float64",
        Lit::Str(_) => "string",
    }
}

impl Parser {
    fn punct(&mut self, p: &'static str) -> bool {
        if self.toks.get(self.at) == Some(&Tok::Punct(p)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or<F: Function>(&mut self) -> Result<Node<F>, String> {
        let mut left = self.and()?;
        while self.punct("||") {
            let right = self.and()?;
            left = Node::Pred(Expr::Or(Box::new(pred(left)?), Box::new(pred(right)?)));
        }
        Ok(left)
    }

    fn and<F: Function>(&mut self) -> Result<Node<F>, String> {
        let mut left = self.cmp()?;
        while self.punct("&&") {
            let right = self.cmp()?;
            left = Node::Pred(Expr::And(Box::new(pred(left)?), Box::new(pred(right)?)));
        }
        Ok(left)
    }

    fn cmp<F: Function>(&mut self) -> Result<Node<F>, String> {
        let left = self.operand()?;
        let op = match self.toks.get(self.at) {
            Some(Tok::Punct("==")) => Op::Eq,
            Some(Tok::Punct("!=")) => Op::Ne,
            Some(Tok::Punct("<")) => Op::Lt,
            Some(Tok::Punct("<=")) => Op::Le,
            Some(Tok::Punct(">")) => Op::Gt,
            Some(Tok::Punct(">=")) => Op::Ge,
            Some(Tok::Punct(p @ ("+" | "-" | "*" | "/" | "%" | "&" | "|"))) => {
                return Err(format!("{p} is not supported"))
            }
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.operand::<F>()?;
        let name = op.name();
        let (f, returns, fname) = match left {
            Node::Call(f, r, n) if r != Returns::Predicate => (f, r, n),
            Node::Lit(l) => {
                return Err(format!(
                    "{name}: unsupported argument: {}: the left side must be a function call",
                    lit_kind(&l)
                ))
            }
            _ => {
                return Err(format!(
                    "{name}: unsupported argument: the left side must be a function call that gives a value"
                ))
            }
        };
        let lit = match right {
            Node::Lit(l) => l,
            _ => {
                return Err(format!(
                    "{name}: expected {}, got a function call: the right side must be a literal",
                    kind(returns)
                ))
            }
        };
        match (returns, &lit) {
            (Returns::Int, Lit::Int(_)) | (Returns::Float, Lit::Float(_)) => {}
            (Returns::Str, Lit::Str(_)) if matches!(op, Op::Eq | Op::Ne) => {}
            (Returns::Str, Lit::Str(_)) => {
                return Err(format!("{name} is not supported for strings ({fname}())"))
            }
            (Returns::Float, Lit::Int(i)) => {
                return Err(format!(
                    "expected float64, got int: {fname}() is a float, write {i} with a decimal point ({i}.0)"
                ))
            }
            (r, l) => {
                return Err(format!(
                    "expected {}, got {}: {fname}() is compared with a literal of its type",
                    kind(r),
                    lit_kind(l)
                ))
            }
        }
        Ok(Node::Pred(Expr::Cmp(f, op, lit)))
    }

    fn operand<F: Function>(&mut self) -> Result<Node<F>, String> {
        let Some(t) = self.toks.get(self.at).cloned() else {
            return Err("expected operand, found 'EOF'".to_owned());
        };
        self.at += 1;
        match t {
            Tok::Punct("(") => {
                let inner = self.or()?;
                if !self.punct(")") {
                    return Err("expected ')'".to_owned());
                }
                Ok(inner)
            }
            Tok::Punct(p @ ("!" | "-" | "+")) => Err(format!("{p} is not supported")),
            Tok::Punct(p) => Err(format!("expected operand, found '{p}'")),
            Tok::Int(s) => s
                .parse::<i64>()
                .map(|i| Node::Lit(Lit::Int(i)))
                .map_err(|e| format!("failed to parse argument: {s}, error: {e}")),
            Tok::Float(s) => go_float(&s)
                .map(|f| Node::Lit(Lit::Float(f)))
                .ok_or_else(|| format!("failed to parse argument: {s}, error: invalid syntax")),
            Tok::Str(s) => Ok(Node::Lit(Lit::Str(s))),
            Tok::Ident(name) => {
                if !self.punct("(") {
                    return Err(format!("{name} is not defined"));
                }
                let mut args = Vec::new();
                if !self.punct(")") {
                    loop {
                        match self.operand::<F>()? {
                            Node::Lit(l) => args.push(l),
                            _ => return Err(format!("{name}: arguments must be literals")),
                        }
                        if self.punct(")") {
                            break;
                        }
                        if !self.punct(",") {
                            return Err(format!("{name}: expected ',' or ')'"));
                        }
                    }
                }
                let (f, r) = F::call(&name, &args)?;
                Ok(Node::Call(f, r, name))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A language of three functions, to test the grammar on its own.
    #[derive(Debug, Clone, PartialEq)]
    enum T {
        Yes,
        N,
        S,
    }

    impl Function for T {
        fn call(name: &str, args: &[Lit]) -> Result<(T, Returns), String> {
            if !args.is_empty() {
                return Err(format!("{name}: takes no arguments"));
            }
            match name {
                "Yes" => Ok((T::Yes, Returns::Predicate)),
                "N" => Ok((T::N, Returns::Int)),
                "S" => Ok((T::S, Returns::Str)),
                _ => Err(format!("unsupported function: {name}")),
            }
        }
    }

    #[test]
    fn go_precedence_parentheses_and_literals() {
        let e = Expr::<T>::parse("Yes() || N() == 1 && S() != `x`").unwrap();
        assert_eq!(
            e,
            Expr::Or(
                Box::new(Expr::Is(T::Yes)),
                Box::new(Expr::And(
                    Box::new(Expr::Cmp(T::N, Op::Eq, Lit::Int(1))),
                    Box::new(Expr::Cmp(T::S, Op::Ne, Lit::Str("x".into())))
                ))
            )
        );
        let e = Expr::<T>::parse("(Yes() || N() < 2) && S() == \"a\\tb\\x41\"").unwrap();
        let Expr::And(_, r) = e else { panic!() };
        assert_eq!(*r, Expr::Cmp(T::S, Op::Eq, Lit::Str("a\tbA".into())));
        assert_eq!(
            Expr::<T>::parse("N() >= 007").unwrap(),
            Expr::Cmp(T::N, Op::Ge, Lit::Int(7)),
            "Atoi reads leading zeros as decimal"
        );
    }

    #[test]
    fn what_oxy_refuses_is_refused_with_the_reason() {
        for (bad, why) in [
            ("", "expected operand"),
            ("!Yes()", "! is not supported"),
            ("N() > -1", "- is not supported"),
            ("N() + 1 > 2", "+ is not supported"),
            ("2 >= N()", "ge: unsupported argument: int"),
            ("N()", "expected predicate"),
            ("Yes", "Yes is not defined"),
            ("Yes() && N()", "expected predicate"),
            ("N() == 1.0", "expected int, got float64"),
            ("N() == 0x1F6", "failed to parse argument"),
            ("N() == 1_000", "failed to parse argument"),
            ("N() == N()", "the right side must be a literal"),
            ("S() < \"a\"", "lt is not supported for strings"),
            ("S() == 'a'", "character literals"),
            ("S() == \"a", "not terminated"),
            ("Foo()", "unsupported function: Foo"),
            ("Yes(1)", "takes no arguments"),
            ("N() <= ", "expected operand, found 'EOF'"),
            ("Yes() Yes()", "unexpected 'Yes'"),
        ] {
            let e = Expr::<T>::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
