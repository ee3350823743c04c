//! Configuration text as a located tree. TOML and YAML parse into the same [`Node`]s, each
//! carrying the byte offset where it is written, so that every later error points at the key or
//! value it is about.
//!
//! Scalars stay text, as in Traefik's own decoder (paerser turns every file into a tree of
//! strings before it fills typed fields): `weight: "3"`, `weight: 3` and TOML's `weight = 3` all
//! read as 3, and `passHostHeader: "false"` as false. The readers (`read.rs`) convert.

use std::path::Path;

use super::error::ConfigError;

/// One file's text, and where its lines start (for line and column of an offset).
#[derive(Debug, Clone)]
pub struct Source {
    pub file: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl Source {
    pub fn new(file: impl Into<String>, text: impl Into<String>) -> Source {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            file: file.into(),
            text,
            line_starts,
        }
    }

    /// Reads a file; a file that cannot be read is an error about that file.
    pub fn read(path: &Path) -> Result<Source, ConfigError> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Source::new(file, text)),
            Err(e) => Err(ConfigError::whole(file, format!("cannot read: {e}"))),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line, column + 1)
    }

    /// An error at a byte offset of this file.
    pub fn error(&self, at: usize, message: impl Into<String>) -> ConfigError {
        let (line, column) = self.position(at);
        ConfigError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
            snippet: None,
        }
    }
}

/// A value and the byte offset where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub at: usize,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// Any scalar, as written (TOML numbers and booleans as their text). `quoted` scalars were
    /// written as strings; only plain ones can be YAML nulls.
    Scalar {
        text: String,
        quoted: bool,
    },
    List(Vec<Node>),
    Map(Vec<Entry>),
}

/// One key of a map: the key as written, where it is, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub at: usize,
    pub value: Node,
}

impl Node {
    /// The value without positions, keys in lower case and sorted: two definitions with the
    /// same canonical form say the same thing (for merging what several instances declare).
    pub fn canonical(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Scalar { text, .. } => format!("{text:?}"),
            Value::List(items) => {
                let inner: Vec<String> = items.iter().map(Node::canonical).collect();
                format!("[{}]", inner.join(","))
            }
            Value::Map(entries) => {
                let mut inner: Vec<String> = entries
                    .iter()
                    .map(|e| format!("{:?}:{}", e.key.to_ascii_lowercase(), e.value.canonical()))
                    .collect();
                inner.sort();
                format!("{{{}}}", inner.join(","))
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing",
            Value::Scalar { .. } => "a single value",
            Value::List(_) => "a list",
            Value::Map(_) => "a table of keys",
        }
    }
}

/// The two file formats, told apart by extension as Traefik does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

impl Format {
    /// `.yaml`/`.yml` are YAML; everything else is TOML.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml") => {
                Format::Yaml
            }
            _ => Format::Toml,
        }
    }

    /// Whether a file of this name holds configuration at all (directory scans).
    pub fn is_config_file(path: &Path) -> bool {
        matches!(
            path.extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("toml" | "yaml" | "yml")
        )
    }
}

/// Parses a whole file into a tree (an empty file is an empty map).
pub fn parse(src: &Source, format: Format) -> Result<Node, ConfigError> {
    if src.text.trim().is_empty() {
        return Ok(Node {
            at: 0,
            value: Value::Map(Vec::new()),
        });
    }
    match format {
        Format::Toml => toml_tree(src),
        Format::Yaml => yaml::tree(src),
    }
}

fn toml_tree(src: &Source) -> Result<Node, ConfigError> {
    let doc = toml_edit::ImDocument::parse(src.text.as_str()).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        src.error(at, format!("TOML: {}", first_line(e.message())))
    })?;
    Ok(toml_table(doc.as_table(), 0))
}

fn first_line(s: &str) -> &str {
    s.trim().lines().next().unwrap_or("")
}

fn toml_table(t: &toml_edit::Table, at: usize) -> Node {
    let pairs = t.iter().filter_map(|(k, _)| t.get_key_value(k));
    Node {
        at: t.span().map_or(at, |s| s.start),
        value: Value::Map(toml_entries(pairs, at)),
    }
}

/// The entries of a table or an inline table, each at its key.
fn toml_entries<'a>(
    pairs: impl Iterator<Item = (&'a toml_edit::Key, &'a toml_edit::Item)>,
    at: usize,
) -> Vec<Entry> {
    pairs
        .map(|(key, item)| {
            let key_at = key.span().map_or(at, |s| s.start);
            Entry {
                key: key.get().to_owned(),
                at: key_at,
                value: toml_item(item, key_at),
            }
        })
        .collect()
}

fn toml_item(item: &toml_edit::Item, at: usize) -> Node {
    match item {
        toml_edit::Item::None => Node {
            at,
            value: Value::Null,
        },
        toml_edit::Item::Value(v) => toml_value(v, at),
        toml_edit::Item::Table(t) => toml_table(t, at),
        toml_edit::Item::ArrayOfTables(a) => Node {
            at: a.span().map_or(at, |s| s.start),
            value: Value::List(a.iter().map(|t| toml_table(t, at)).collect()),
        },
    }
}

fn toml_value(v: &toml_edit::Value, at: usize) -> Node {
    use toml_edit::Value as V;
    let here = v.span().map_or(at, |s| s.start);
    let scalar = |text: String, quoted| Node {
        at: here,
        value: Value::Scalar { text, quoted },
    };
    match v {
        V::String(s) => scalar(s.value().clone(), true),
        V::Integer(i) => scalar(i.value().to_string(), false),
        V::Float(f) => scalar(f.value().to_string(), false),
        V::Boolean(b) => scalar(b.value().to_string(), false),
        V::Datetime(d) => scalar(d.value().to_string(), false),
        V::Array(a) => Node {
            at: here,
            value: Value::List(a.iter().map(|v| toml_value(v, here)).collect()),
        },
        V::InlineTable(t) => Node {
            at: here,
            value: Value::Map(toml_entries(
                t.iter().filter_map(|(k, _)| t.get_key_value(k)),
                here,
            )),
        },
    }
}

mod yaml {
    //! YAML through yaml-rust2's event parser, which reports where each event starts (serde_yaml
    //! loses positions below the document). Anchors, aliases and merge keys (`<<`) are resolved
    //! here, as Traefik's YAML decoder does.

    use std::collections::HashMap;

    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
    use yaml_rust2::scanner::{Marker, TScalarStyle};

    use super::{Entry, Node, Source, Value};
    use crate::config::error::ConfigError;

    /// Nesting beyond this is refused (a hostile file must not exhaust the stack later).
    const MAX_DEPTH: usize = 64;

    enum Open {
        List(usize, usize, Vec<Node>),
        /// Offset, anchor, entries, and a key read but not yet given its value.
        Map(usize, usize, Vec<Entry>, Option<(String, usize)>),
    }

    #[derive(Default)]
    struct Builder {
        /// Byte offset of each character, for non-ASCII text: yaml-rust2's markers count
        /// characters, the rest of the configuration counts bytes.
        char_bytes: Option<Vec<usize>>,
        stack: Vec<Open>,
        anchors: HashMap<usize, Node>,
        documents: usize,
        root: Option<Node>,
        error: Option<(usize, String)>,
    }

    impl Builder {
        fn byte_offset(&self, chars: usize) -> usize {
            match &self.char_bytes {
                None => chars,
                Some(map) => map
                    .get(chars)
                    .copied()
                    .unwrap_or_else(|| *map.last().unwrap_or(&0)),
            }
        }

        fn fail(&mut self, at: usize, message: impl Into<String>) {
            if self.error.is_none() {
                self.error = Some((at, message.into()));
            }
        }

        /// Hands a finished node to whatever is open: a list, a map (as key or value), or the
        /// document.
        fn push(&mut self, node: Node, anchor: usize) {
            if anchor > 0 {
                self.anchors.insert(anchor, node.clone());
            }
            match self.stack.last_mut() {
                None => {
                    self.documents += 1;
                    if self.root.is_none() {
                        self.root = Some(node);
                    }
                }
                Some(Open::List(_, _, items)) => items.push(node),
                Some(Open::Map(_, _, entries, pending)) => match pending.take() {
                    Some((key, at)) => entries.push(Entry {
                        key,
                        at,
                        value: node,
                    }),
                    None => match node.value {
                        Value::Scalar { text, .. } => *pending = Some((text, node.at)),
                        Value::Null => *pending = Some((String::new(), node.at)),
                        _ => self.fail(
                            node.at,
                            "a key must be a single value, not a list or a table",
                        ),
                    },
                },
            }
        }

        fn open(&mut self, frame: Open, at: usize) {
            if self.stack.len() >= MAX_DEPTH {
                self.fail(at, format!("nested deeper than {MAX_DEPTH} levels"));
            }
            self.stack.push(frame);
        }
    }

    /// A plain scalar that YAML reads as null.
    fn is_null(text: &str) -> bool {
        matches!(text, "" | "~" | "null" | "Null" | "NULL")
    }

    /// Merge keys: `<<: *base` (or a list of them) adds the keys the map does not set itself.
    fn merge(entries: Vec<Entry>) -> Result<Vec<Entry>, (usize, String)> {
        if !entries.iter().any(|e| e.key == "<<") {
            return Ok(entries);
        }
        let (merges, mut own): (Vec<Entry>, Vec<Entry>) =
            entries.into_iter().partition(|e| e.key == "<<");
        for m in merges {
            let maps = match m.value.value {
                Value::Map(inner) => vec![inner],
                Value::List(items) => items
                    .into_iter()
                    .map(|n| match n.value {
                        Value::Map(inner) => Ok(inner),
                        _ => Err((n.at, "a merge key (<<) takes tables only".to_owned())),
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err((
                        m.at,
                        "a merge key (<<) takes a table or a list of them".into(),
                    ))
                }
            };
            for inner in maps {
                for e in inner {
                    if !own.iter().any(|o| o.key == e.key) {
                        own.push(e);
                    }
                }
            }
        }
        Ok(own)
    }

    impl MarkedEventReceiver for Builder {
        fn on_event(&mut self, ev: Event, mark: Marker) {
            if self.error.is_some() {
                return;
            }
            let at = self.byte_offset(mark.index());
            match ev {
                Event::Scalar(text, style, anchor, _tag) => {
                    let quoted = style != TScalarStyle::Plain;
                    let value = if !quoted && is_null(&text) {
                        Value::Null
                    } else {
                        Value::Scalar { text, quoted }
                    };
                    self.push(Node { at, value }, anchor);
                }
                Event::Alias(id) => match self.anchors.get(&id).cloned() {
                    Some(mut node) => {
                        node.at = at;
                        self.push(node, 0);
                    }
                    None => self.fail(at, "alias to an unknown anchor"),
                },
                Event::SequenceStart(anchor, _) => {
                    self.open(Open::List(at, anchor, Vec::new()), at)
                }
                Event::MappingStart(anchor, _) => {
                    self.open(Open::Map(at, anchor, Vec::new(), None), at)
                }
                Event::SequenceEnd => {
                    if let Some(Open::List(start, anchor, items)) = self.stack.pop() {
                        self.push(
                            Node {
                                at: start,
                                value: Value::List(items),
                            },
                            anchor,
                        );
                    }
                }
                Event::MappingEnd => {
                    if let Some(Open::Map(start, anchor, entries, _)) = self.stack.pop() {
                        match merge(entries) {
                            Ok(entries) => self.push(
                                Node {
                                    at: start,
                                    value: Value::Map(entries),
                                },
                                anchor,
                            ),
                            Err((at, m)) => self.fail(at, m),
                        }
                    }
                }
                _ => {}
            }
        }
    }

    pub fn tree(src: &Source) -> Result<Node, ConfigError> {
        let mut b = Builder {
            char_bytes: (!src.text.is_ascii()).then(|| {
                src.text
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain([src.text.len()])
                    .collect()
            }),
            ..Builder::default()
        };
        let mut parser = Parser::new_from_str(&src.text);
        if let Err(e) = parser.load(&mut b, true) {
            let at = b.byte_offset(e.marker().index());
            return Err(src.error(at, format!("YAML: {}", e.info())));
        }
        if let Some((at, m)) = b.error {
            return Err(src.error(at, format!("YAML: {m}")));
        }
        if b.documents > 1 {
            return Err(src.error(0, "YAML: one document per file (found several)"));
        }
        Ok(b.root.map_or(
            Node {
                at: 0,
                value: Value::Map(Vec::new()),
            },
            |root| match root.value {
                // A document of only comments is an empty configuration.
                Value::Null => Node {
                    at: root.at,
                    value: Value::Map(Vec::new()),
                },
                _ => root,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(n: &'a Node, path: &[&str]) -> &'a Node {
        path.iter().fold(n, |n, k| match &n.value {
            Value::Map(es) => {
                &es.iter()
                    .find(|e| e.key == *k)
                    .unwrap_or_else(|| panic!("{k}"))
                    .value
            }
            _ => panic!("{k}: not a map"),
        })
    }

    #[test]
    fn yaml_and_toml_give_the_same_tree_with_positions() {
        let y = Source::new("d.yaml", "# c\nhttp:\n  routers:\n    r1:\n      rule: \"Host(`a`)\"\n      priority: 10\n      middlewares: [a, b]\n");
        let t = Source::new("d.toml", "# c\n[http.routers.r1]\nrule = \"Host(`a`)\"\npriority = 10\nmiddlewares = [\"a\", \"b\"]\n");
        let yt = parse(&y, Format::Yaml).unwrap();
        let tt = parse(&t, Format::Toml).unwrap();
        for (src, tree, rule_line) in [(&y, &yt, 5), (&t, &tt, 3)] {
            let r1 = get(tree, &["http", "routers", "r1"]);
            let rule = get(r1, &["rule"]);
            assert_eq!(
                rule.value,
                Value::Scalar {
                    text: "Host(`a`)".into(),
                    quoted: true
                }
            );
            assert_eq!(src.position(rule.at).0, rule_line, "{}", src.file);
            let prio = get(r1, &["priority"]);
            assert!(matches!(&prio.value, Value::Scalar { text, .. } if text == "10"));
            let Value::List(m) = &get(r1, &["middlewares"]).value else {
                panic!()
            };
            assert_eq!(m.len(), 2);
        }
        assert!(matches!(&yt.value, Value::Map(top) if top.len() == 1));
    }

    #[test]
    fn yaml_positions_are_byte_offsets_of_keys_and_values() {
        let s = Source::new("x.yaml", "a:\n  bé: 1\n  c: two\n");
        let t = parse(&s, Format::Yaml).unwrap();
        let Value::Map(a) = &get(&t, &["a"]).value else {
            panic!()
        };
        assert_eq!(s.position(a[0].at), (2, 3));
        assert_eq!(s.position(a[1].at), (3, 3));
        assert_eq!(s.position(a[1].value.at), (3, 6));
    }

    #[test]
    fn yaml_anchors_aliases_merge_keys_and_nulls() {
        let s = Source::new(
            "x.yaml",
            "base: &b\n  x: 1\n  y: 2\nother:\n  <<: *b\n  y: 3\nlist: [*b]\nnothing: ~\nempty:\nquoted: \"~\"\n",
        );
        let t = parse(&s, Format::Yaml).unwrap();
        let other = get(&t, &["other"]);
        assert!(matches!(&get(other, &["x"]).value, Value::Scalar { text, .. } if text == "1"));
        assert!(matches!(&get(other, &["y"]).value, Value::Scalar { text, .. } if text == "3"));
        assert_eq!(get(&t, &["nothing"]).value, Value::Null);
        assert_eq!(get(&t, &["empty"]).value, Value::Null);
        assert!(matches!(
            &get(&t, &["quoted"]).value,
            Value::Scalar { quoted: true, .. }
        ));
    }

    #[test]
    fn syntax_errors_are_located() {
        let s = Source::new("x.yaml", "a:\n  b: [1, 2\n");
        let e = parse(&s, Format::Yaml).unwrap_err();
        assert!(e.line >= 2, "{e}");
        let s = Source::new("x.toml", "a = 1\nb = = 2\n");
        let e = parse(&s, Format::Toml).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let s = Source::new("x.yaml", "a: 1\n---\nb: 2\n");
        assert!(parse(&s, Format::Yaml)
            .unwrap_err()
            .message
            .contains("one document"));
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(&Source::new("x.yaml", deep), Format::Yaml).is_err());
    }

    #[test]
    fn empty_and_comment_only_files_are_empty_maps() {
        for (f, text) in [
            (Format::Yaml, ""),
            (Format::Yaml, "# only\n"),
            (Format::Toml, "# c\n"),
        ] {
            let t = parse(&Source::new("x", text), f).unwrap();
            assert_eq!(t.value, Value::Map(vec![]));
        }
    }
}
