//! Reading typed settings out of a located tree the way Traefik's decoder does: key names match
//! in any letter case (`loadbalancer`, `LoadBalancer`), scalars convert from their text, and
//! every key is read, refused by name, or reported as unknown at its line. Nothing is skipped
//! without a word.

use std::time::Duration;

use super::error::ConfigError;
use super::source::{Entry, Node, Source, Value};

/// How much a diagnostic matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Informational: a setting that changes nothing betaroute does (e.g. Traefik's own logs).
    Warning,
    /// A Traefik feature betaroute does not implement: what uses it is not served.
    Refused,
    /// The configuration is wrong: it is not loaded at all.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Refused => "refused",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub error: ConfigError,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}", self.error),
            s => {
                // The severity goes after the location, before the message.
                let mut e = self.error.clone();
                e.message = format!("{}: {}", s.as_str(), e.message);
                write!(f, "{e}")
            }
        }
    }
}

/// One file being read: its text (to locate things) and what was found wrong so far.
pub struct Cx<'s> {
    pub src: &'s Source,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'s> Cx<'s> {
    pub fn new(src: &'s Source) -> Cx<'s> {
        Cx {
            src,
            diagnostics: Vec::new(),
        }
    }

    fn push(&mut self, severity: Severity, at: usize, message: String) -> ConfigError {
        let error = self.src.error(at, message);
        self.diagnostics.push(Diagnostic {
            severity,
            error: error.clone(),
        });
        error
    }

    pub fn error(&mut self, at: usize, message: impl Into<String>) {
        self.push(Severity::Error, at, message.into());
    }

    /// Records a refusal and returns it, so that what it disables can say why.
    pub fn refuse(&mut self, at: usize, message: impl Into<String>) -> ConfigError {
        self.push(Severity::Refused, at, message.into())
    }

    pub fn warn(&mut self, at: usize, message: impl Into<String>) {
        self.push(Severity::Warning, at, message.into());
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// A table of known keys being read. Keys match in any letter case; [`Obj::finish`] reports
/// every key that was neither read nor refused.
pub struct Obj<'n> {
    what: String,
    pub at: usize,
    entries: &'n [Entry],
    used: Vec<bool>,
}

impl<'n> Obj<'n> {
    /// `node` as a table; nothing (`key:` with no value) reads as an empty table.
    pub fn of(cx: &mut Cx, node: &'n Node, what: impl Into<String>) -> Option<Obj<'n>> {
        let what = what.into();
        let entries: &'n [Entry] = match &node.value {
            Value::Map(entries) => entries,
            Value::Null => &[],
            _ => {
                cx.error(
                    node.at,
                    format!("{what}: expected a table of keys, found {}", node.kind()),
                );
                return None;
            }
        };
        Some(Obj {
            what,
            at: node.at,
            used: vec![false; entries.len()],
            entries,
        })
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    /// `what` of a key below this table, for messages (`router web: tls`).
    pub fn child(&self, key: &str) -> String {
        format!("{}: {key}", self.what)
    }

    /// The value of `key`, in any letter case; a key written twice in two spellings is an error.
    pub fn get(&mut self, cx: &mut Cx, key: &str) -> Option<&'n Node> {
        let mut found: Option<&'n Entry> = None;
        for (i, e) in self.entries.iter().enumerate() {
            if e.key.eq_ignore_ascii_case(key) {
                self.used[i] = true;
                if let Some(first) = found {
                    let (line, _) = cx.src.position(first.at);
                    cx.error(
                        e.at,
                        format!(
                            "{}: {key} is set twice (as {:?} at line {line} and as {:?})",
                            self.what, first.key, e.key
                        ),
                    );
                } else {
                    found = Some(e);
                }
            }
        }
        found.map(|e| &e.value)
    }

    /// The entry (key as written, position) of `key`, without marking it read.
    pub fn entry(&self, key: &str) -> Option<&'n Entry> {
        self.entries
            .iter()
            .find(|e| e.key.eq_ignore_ascii_case(key))
    }

    /// Where `key` is written, else where this table is.
    pub fn at_key(&self, key: &str) -> usize {
        self.entry(key).map_or(self.at, |e| e.at)
    }

    /// Every entry of a table whose keys are names (routers, services, entry points), in file
    /// order; marks them read.
    pub fn named(&mut self) -> &'n [Entry] {
        self.used.iter_mut().for_each(|u| *u = true);
        self.entries
    }

    /// Refuses `key` when it is set to anything but nothing or an empty value; returns the
    /// refusal, for what it disables.
    pub fn refuse(&mut self, cx: &mut Cx, key: &str, why: &str) -> Option<ConfigError> {
        let node = self.get(cx, key)?;
        if is_empty(node) {
            return None;
        }
        let written = self.entry(key).map_or(key, |e| e.key.as_str());
        Some(cx.refuse(self.at_key(key), format!("{}: {written} {why}", self.what)))
    }

    /// Accepts `key` but says it has no effect here.
    pub fn ignore(&mut self, cx: &mut Cx, key: &str, why: &str) {
        if let Some(node) = self.get(cx, key) {
            if !is_empty(node) {
                let written = self.entry(key).map_or(key, |e| e.key.as_str());
                cx.warn(
                    self.at_key(key),
                    format!("{}: {written} is ignored: {why}", self.what),
                );
            }
        }
    }

    /// Reports the keys nothing read: unknown keys are errors, as in Traefik ("field not found").
    pub fn finish(self, cx: &mut Cx, known: &[&str]) {
        for (e, used) in self.entries.iter().zip(&self.used) {
            if !used {
                cx.error(
                    e.at,
                    format!(
                        "{}: unknown key {:?} (known here: {})",
                        self.what,
                        e.key,
                        known.join(", ")
                    ),
                );
            }
        }
    }

    // Typed values of keys.

    pub fn string(&mut self, cx: &mut Cx, key: &str) -> Option<String> {
        let node = self.get(cx, key)?;
        string(cx, node, &self.child(key))
    }

    pub fn boolean(&mut self, cx: &mut Cx, key: &str) -> Option<bool> {
        let node = self.get(cx, key)?;
        boolean(cx, node, &self.child(key))
    }

    pub fn number<T: std::str::FromStr>(&mut self, cx: &mut Cx, key: &str) -> Option<T> {
        let node = self.get(cx, key)?;
        number(cx, node, &self.child(key))
    }

    pub fn duration(&mut self, cx: &mut Cx, key: &str) -> Option<Duration> {
        let node = self.get(cx, key)?;
        duration(cx, node, &self.child(key))
    }

    pub fn strings(&mut self, cx: &mut Cx, key: &str) -> Option<Vec<(String, usize)>> {
        let node = self.get(cx, key)?;
        strings(cx, node, &self.child(key))
    }

    pub fn obj(&mut self, cx: &mut Cx, key: &str) -> Option<Obj<'n>> {
        let node = self.get(cx, key)?;
        Obj::of(cx, node, self.child(key))
    }
}

/// Nothing, an empty string, list or table: a key present but not set (Traefik's `tls: {}` is
/// not empty in this sense: a table read through [`Obj::of`] sets the feature).
fn is_empty(node: &Node) -> bool {
    match &node.value {
        Value::Null => true,
        Value::Scalar { text, .. } => text.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(_) => false,
    }
}

pub fn string(cx: &mut Cx, node: &Node, what: &str) -> Option<String> {
    match &node.value {
        Value::Scalar { text, .. } => Some(text.clone()),
        Value::Null => None,
        _ => {
            cx.error(
                node.at,
                format!("{what}: expected a single value, found {}", node.kind()),
            );
            None
        }
    }
}

pub fn boolean(cx: &mut Cx, node: &Node, what: &str) -> Option<bool> {
    let text = string(cx, node, what)?;
    match text.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => {
            cx.error(node.at, format!("{what}: {text:?} is not true or false"));
            None
        }
    }
}

pub fn number<T: std::str::FromStr>(cx: &mut Cx, node: &Node, what: &str) -> Option<T> {
    let text = string(cx, node, what)?;
    match text.trim().parse() {
        Ok(v) => Some(v),
        Err(_) => {
            cx.error(
                node.at,
                format!("{what}: {text:?} is not a valid number here"),
            );
            None
        }
    }
}

pub fn duration(cx: &mut Cx, node: &Node, what: &str) -> Option<Duration> {
    let text = string(cx, node, what)?;
    match parse_go_duration(&text) {
        Ok(d) => Some(d),
        Err(e) => {
            cx.error(node.at, format!("{what}: {e}"));
            None
        }
    }
}

/// A list of single values, each with where it is written; a single value is a list of one,
/// and, as in Traefik's labels, a comma-separated value is a list of its parts.
pub fn strings(cx: &mut Cx, node: &Node, what: &str) -> Option<Vec<(String, usize)>> {
    match &node.value {
        Value::List(items) => Some(
            items
                .iter()
                .filter_map(|n| string(cx, n, what).map(|s| (s, n.at)))
                .collect(),
        ),
        Value::Scalar { text, .. } => Some(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| (s.to_owned(), node.at))
                .collect(),
        ),
        Value::Null => None,
        Value::Map(_) => {
            cx.error(node.at, format!("{what}: expected a list, found a table"));
            None
        }
    }
}

/// A duration that is not one, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDuration(pub String);

impl std::fmt::Display for BadDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not a duration (e.g. 10s, 1m30s, 250ms)", self.0)
    }
}

/// Go's `time.ParseDuration` (`1h2m3.5s`, `300ms`, `10us`), and, as Traefik accepts, a bare
/// number of seconds. The one duration parser of the configuration.
pub fn parse_go_duration(s: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration(s.to_owned());
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() || rest.starts_with('-') {
        return Err(bad());
    }
    rest = rest.strip_prefix('+').unwrap_or(rest);
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::super::source::{parse, Format};
    use super::*;

    #[test]
    fn go_durations() {
        for (s, ms) in [
            ("10s", 10_000),
            ("1m30s", 90_000),
            ("250ms", 250),
            ("1h", 3_600_000),
            ("1.5s", 1_500),
            ("42", 42_000),
            ("0", 0),
            ("0s", 0),
            ("100us", 0),
        ] {
            assert_eq!(parse_go_duration(s).unwrap().as_millis(), ms, "{s}");
        }
        for s in ["", "s", "-1s", "10x", "1.2.3s", "1e400h"] {
            assert_eq!(parse_go_duration(s), Err(BadDuration(s.to_owned())), "{s}");
        }
    }

    #[test]
    fn keys_match_in_any_case_and_unknown_keys_are_located() {
        let src = Source::new(
            "d.yaml",
            "svc:\n  LoadBalancer:\n    passhostheader: \"false\"\n  bogus: 1\n",
        );
        let tree = parse(&src, Format::Yaml).unwrap();
        let mut cx = Cx::new(&src);
        let mut top = Obj::of(&mut cx, &tree, "file").unwrap();
        let mut svc = top.obj(&mut cx, "svc").unwrap();
        let mut lb = svc.obj(&mut cx, "loadBalancer").unwrap();
        assert_eq!(lb.boolean(&mut cx, "passHostHeader"), Some(false));
        lb.finish(&mut cx, &["passHostHeader"]);
        svc.finish(&mut cx, &["loadBalancer"]);
        top.finish(&mut cx, &["svc"]);
        assert_eq!(cx.diagnostics.len(), 1, "{:?}", cx.diagnostics);
        let e = &cx.diagnostics[0].error;
        assert_eq!((e.line, e.column), (4, 3));
        assert!(e.message.contains("unknown key \"bogus\""), "{e}");
    }

    #[test]
    fn a_key_in_two_spellings_is_an_error() {
        let src = Source::new("d.yaml", "a: 1\nA: 2\n");
        let tree = parse(&src, Format::Yaml).unwrap();
        let mut cx = Cx::new(&src);
        let mut top = Obj::of(&mut cx, &tree, "file").unwrap();
        assert_eq!(top.number::<u32>(&mut cx, "a"), Some(1));
        assert!(cx.diagnostics[0].error.message.contains("set twice"));
        assert_eq!(cx.diagnostics[0].error.line, 2);
    }
}
