//! Consul tags as Traefik labels, and labels as a located configuration tree.
//!
//! Tags under the provider's prefix become `traefik.`-prefixed labels (Traefik's
//! `tagsToNeutralLabels`). The labels of one instance become a small document, one
//! `key=value` line per label, and a tree over it in the shape of a dynamic configuration
//! file (`http.routers.R.rule`...), so the file provider's readers read it and every problem
//! is located at its label (the "line" is the label's line in that document).

use std::collections::BTreeMap;

use crate::config::source::{Entry, Node, Value};
use crate::config::static_config::consul::ConsulOptions;

/// Traefik's `tagsToNeutralLabels`: `<prefix>.x=y` becomes `traefik.x` → `y`; tags without `=`
/// are not labels. (As in Traefik, the prefix is matched as a plain string prefix.)
pub fn neutral_labels(tags: &[String], prefix: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let dotted = format!("{prefix}.");
    for tag in tags {
        if !tag.starts_with(prefix) {
            continue;
        }
        if let Some((k, v)) = tag.split_once('=') {
            let k = k.strip_prefix(&dotted).unwrap_or(k);
            labels.insert(format!("traefik.{k}"), v.to_owned());
        }
    }
    labels
}

/// What labels say beyond the dynamic configuration: `traefik.enable` and
/// `traefik.consulcatalog.{connect,canary}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extra {
    pub enable: bool,
    pub connect: bool,
    pub canary: bool,
}

/// Go's `strconv.ParseBool`.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

pub fn extra_conf(
    labels: &BTreeMap<String, String>,
    opts: &ConsulOptions,
) -> Result<Extra, String> {
    let mut extra = Extra {
        enable: opts.exposed_by_default,
        connect: opts.connect_by_default,
        canary: false,
    };
    for (k, v) in labels {
        let lower = k.to_ascii_lowercase();
        let field = if lower == "traefik.enable" {
            &mut extra.enable
        } else if let Some(rest) = lower.strip_prefix("traefik.consulcatalog.") {
            match rest {
                "connect" => &mut extra.connect,
                "canary" => &mut extra.canary,
                _ => {
                    return Err(format!(
                        "label {k}: unknown option (known: traefik.consulcatalog.connect, traefik.consulcatalog.canary)"
                    ))
                }
            }
        } else {
            continue;
        };
        *field = go_bool(v).ok_or_else(|| format!("label {k}: {v:?} is not true or false"))?;
    }
    Ok(extra)
}

/// A document being built from labels: its text and the tree over it.
pub struct Doc {
    pub text: String,
    pub root: Node,
    /// Labels under the prefix that Traefik's decoder does not read (offset, key).
    pub ignored: Vec<(usize, String)>,
}

/// The configuration roots Traefik decodes from labels.
const ROOTS: &[&str] = &["http", "tcp", "udp", "tls"];

fn scalar(text: &str, at: usize) -> Node {
    Node {
        at,
        value: Value::Scalar {
            text: text.to_owned(),
            quoted: true,
        },
    }
}

fn empty_map(at: usize) -> Node {
    Node {
        at,
        value: Value::Map(Vec::new()),
    }
}

impl Doc {
    /// One line per label, and the tree of those under `http`, `tcp`, `udp` and `tls`.
    pub fn new(labels: &BTreeMap<String, String>) -> Doc {
        let mut doc = Doc {
            text: String::new(),
            root: empty_map(0),
            ignored: Vec::new(),
        };
        for (k, v) in labels {
            let line_at = doc.text.len();
            doc.text.push_str(k);
            doc.text.push('=');
            let value_at = doc.text.len();
            doc.text.push_str(v);
            doc.text.push('\n');
            let lower = k.to_ascii_lowercase();
            if lower == "traefik.enable" || lower.starts_with("traefik.consulcatalog.") {
                continue;
            }
            let Some(path) = k.strip_prefix("traefik.") else {
                continue;
            };
            let root = path.split('.').next().unwrap_or_default();
            let tls_other = root.eq_ignore_ascii_case("tls")
                && !path.to_ascii_lowercase().starts_with("tls.stores.default");
            if !ROOTS.iter().any(|r| r.eq_ignore_ascii_case(root)) || tls_other {
                doc.ignored.push((line_at, k.clone()));
                continue;
            }
            let mut segments = Vec::new();
            let mut at = line_at + "traefik.".len();
            for s in path.split('.') {
                segments.push((s, at));
                at += s.len() + 1;
            }
            insert(&mut doc.root, &segments, scalar(v, value_at));
        }
        doc
    }

    /// Appends a line the build generated (a default rule, a server URL) and returns the
    /// offset of `value` in it, so problems with it are located too.
    pub fn synthesize(&mut self, what: &str, value: &str) -> Node {
        self.text.push_str("# ");
        self.text.push_str(what);
        self.text.push_str(": ");
        let at = self.text.len();
        self.text.push_str(value);
        self.text.push('\n');
        scalar(value, at)
    }
}

/// The segment's key and list index: `servers[0]` is (`servers`, Some(0)).
fn key_index(s: &str) -> (&str, Option<usize>) {
    if let Some(open) = s.find('[') {
        if let Some(n) = s[open + 1..].strip_suffix(']').and_then(|n| n.parse().ok()) {
            return (&s[..open], Some(n));
        }
    }
    (s, None)
}

/// Inserts `value` at the path. A value and children under the same key keep the children
/// (`tls=true` with `tls.options=x` is the table), as Traefik's label decoder does.
fn insert(node: &mut Node, path: &[(&str, usize)], value: Node) {
    let Some(((seg, at), rest)) = path.split_first() else {
        let has_children = match &node.value {
            Value::Map(e) => !e.is_empty(),
            Value::List(l) => !l.is_empty(),
            _ => false,
        };
        if !has_children {
            *node = value;
        }
        return;
    };
    if !matches!(node.value, Value::Map(_)) {
        node.value = Value::Map(Vec::new());
    }
    let Value::Map(entries) = &mut node.value else {
        unreachable!()
    };
    let (key, index) = key_index(seg);
    let pos = match entries.iter().position(|e| e.key == key) {
        Some(p) => p,
        None => {
            let child = match index {
                Some(_) => Node {
                    at: *at,
                    value: Value::List(Vec::new()),
                },
                None => empty_map(*at),
            };
            entries.push(Entry {
                key: key.to_owned(),
                at: *at,
                value: child,
            });
            entries.len() - 1
        }
    };
    let child = &mut entries[pos].value;
    match index {
        None => insert(child, rest, value),
        Some(i) => {
            if !matches!(child.value, Value::List(_)) {
                child.value = Value::List(Vec::new());
            }
            let Value::List(items) = &mut child.value else {
                unreachable!()
            };
            while items.len() <= i {
                items.push(empty_map(*at));
            }
            insert(&mut items[i], rest, value);
        }
    }
}

// Tree access for the build, field names in any letter case as in Traefik's decoder.

pub fn entries(node: &Node) -> &[Entry] {
    match &node.value {
        Value::Map(e) => e,
        _ => &[],
    }
}

pub fn get<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    entries(node)
        .iter()
        .find(|e| e.key.eq_ignore_ascii_case(key))
        .map(|e| &e.value)
}

pub fn get_mut<'n>(node: &'n mut Node, key: &str) -> Option<&'n mut Node> {
    match &mut node.value {
        Value::Map(e) => e
            .iter_mut()
            .find(|e| e.key.eq_ignore_ascii_case(key))
            .map(|e| &mut e.value),
        _ => None,
    }
}

/// The table under `key`, created (at `at`) when missing.
pub fn table<'n>(node: &'n mut Node, key: &str, at: usize) -> &'n mut Node {
    if get(node, key).is_none() {
        set(node, key, empty_map(at));
    }
    get_mut(node, key).expect("just set")
}

/// Sets `key` (replacing a key of any letter case).
pub fn set(node: &mut Node, key: &str, value: Node) {
    if !matches!(node.value, Value::Map(_)) {
        node.value = Value::Map(Vec::new());
    }
    let Value::Map(entries) = &mut node.value else {
        unreachable!()
    };
    let at = value.at;
    match entries.iter_mut().find(|e| e.key.eq_ignore_ascii_case(key)) {
        Some(e) => e.value = value,
        None => entries.push(Entry {
            key: key.to_owned(),
            at,
            value,
        }),
    }
}

pub fn remove(node: &mut Node, key: &str) -> Option<Node> {
    let Value::Map(entries) = &mut node.value else {
        return None;
    };
    let pos = entries
        .iter()
        .position(|e| e.key.eq_ignore_ascii_case(key))?;
    Some(entries.remove(pos).value)
}

pub fn text(node: &Node) -> Option<&str> {
    match &node.value {
        Value::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_neutral_labels() {
        let tags: Vec<String> = [
            "my.http.routers.r.rule=Host(`a`)",
            "my.enable=true",
            "other=1",
            "my.flag",
            "mything=2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let l = neutral_labels(&tags, "my");
        assert_eq!(l["traefik.http.routers.r.rule"], "Host(`a`)");
        assert_eq!(l["traefik.enable"], "true");
        assert_eq!(l["traefik.mything"], "2", "plain prefix match, as Traefik");
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn labels_become_a_located_tree() {
        let mut labels = BTreeMap::new();
        labels.insert(
            "traefik.http.routers.R.rule".to_owned(),
            "Host(`x`)".to_owned(),
        );
        labels.insert(
            "traefik.http.services.S.loadbalancer.server.port".to_owned(),
            "8080".to_owned(),
        );
        labels.insert("traefik.frontend.rule".to_owned(), "v1".to_owned());
        labels.insert("traefik.enable".to_owned(), "true".to_owned());
        let doc = Doc::new(&labels);
        let rule = get(
            get(
                get(get(&doc.root, "http").unwrap(), "routers").unwrap(),
                "R",
            )
            .unwrap(),
            "rule",
        )
        .unwrap();
        assert_eq!(text(rule), Some("Host(`x`)"));
        assert_eq!(&doc.text[rule.at..rule.at + 9], "Host(`x`)");
        assert_eq!(doc.ignored.len(), 1);
        assert_eq!(doc.ignored[0].1, "traefik.frontend.rule");
        assert!(get(&doc.root, "enable").is_none());
    }

    #[test]
    fn indexed_segments_make_lists() {
        let mut labels = BTreeMap::new();
        labels.insert(
            "traefik.http.routers.R.tls.domains[1].main".to_owned(),
            "b".to_owned(),
        );
        labels.insert(
            "traefik.http.routers.R.tls.domains[0].main".to_owned(),
            "a".to_owned(),
        );
        let doc = Doc::new(&labels);
        let tls = get(
            get(
                get(get(&doc.root, "http").unwrap(), "routers").unwrap(),
                "R",
            )
            .unwrap(),
            "tls",
        )
        .unwrap();
        let Value::List(items) = &get(tls, "domains").unwrap().value else {
            panic!("not a list")
        };
        assert_eq!(text(get(&items[0], "main").unwrap()), Some("a"));
        assert_eq!(text(get(&items[1], "main").unwrap()), Some("b"));
    }

    #[test]
    fn extra_configuration() {
        let opts_default = crate::provider::consul::tests_support::options();
        let mut l = BTreeMap::new();
        l.insert("traefik.enable".to_owned(), "false".to_owned());
        l.insert("traefik.consulcatalog.canary".to_owned(), "T".to_owned());
        let e = extra_conf(&l, &opts_default).unwrap();
        assert!(!e.enable && e.canary && !e.connect);
        l.insert("traefik.consulcatalog.bogus".to_owned(), "true".to_owned());
        assert!(extra_conf(&l, &opts_default).unwrap_err().contains("bogus"));
        let mut l = BTreeMap::new();
        l.insert("traefik.enable".to_owned(), "yes".to_owned());
        assert!(extra_conf(&l, &opts_default).is_err());
    }
}
