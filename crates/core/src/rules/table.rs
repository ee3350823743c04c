//! The compiled route table: routers in precedence order, indexed by host.
//!
//! Precedence (Traefik): higher priority first; a router's priority is its configured one, else
//! its rule's default (the rule's length). Ties are broken by router name so the outcome never
//! depends on load order. Lookup only evaluates routers that can match the request's host: those
//! filed under its exact host, under a wildcard covering it, and the host-independent ones,
//! merged in precedence order. Matching cost thus does not grow with routers for other hosts.

use std::collections::HashMap;

use smallvec::SmallVec;

use super::matcher::HostKey;
use super::request::{Prepared, RequestView};
use super::Rule;

/// One router: a name, a compiled rule, an effective priority, and what it routes to.
#[derive(Debug, Clone)]
pub struct Router<T> {
    pub name: String,
    pub rule: Rule,
    pub priority: i64,
    /// Whether `priority` was configured (else it is the rule's default).
    pub explicit_priority: bool,
    pub target: T,
}

impl<T> Router<T> {
    /// `priority`: `None` or `Some(0)` (Traefik's "unset") takes the rule's default.
    pub fn new(name: &str, rule: Rule, priority: Option<i64>, target: T) -> Router<T> {
        let explicit = priority.filter(|&p| p != 0);
        Router {
            name: name.to_owned(),
            priority: explicit.unwrap_or_else(|| rule.default_priority()),
            explicit_priority: explicit.is_some(),
            rule,
            target,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Table<T> {
    /// Routers in precedence order; indexes below are positions in this vector.
    routers: Vec<Router<T>>,
    exact: HashMap<String, Vec<u32>>,
    one_label: HashMap<String, Vec<u32>>,
    any_labels: HashMap<String, Vec<u32>>,
    general: Vec<u32>,
}

impl<T> Table<T> {
    pub fn new(mut routers: Vec<Router<T>>) -> Table<T> {
        routers.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
        let mut t = Table {
            routers: Vec::new(),
            exact: HashMap::new(),
            one_label: HashMap::new(),
            any_labels: HashMap::new(),
            general: Vec::new(),
        };
        for (i, r) in routers.iter().enumerate() {
            let i = i as u32;
            match r.rule.host_keys() {
                None => t.general.push(i),
                Some(keys) => {
                    for key in keys {
                        let (map, k) = match key {
                            HostKey::Exact(k) => (&mut t.exact, k),
                            HostKey::OneLabel(k) => (&mut t.one_label, k),
                            HostKey::AnyLabels(k) => (&mut t.any_labels, k),
                        };
                        let list = map.entry(k).or_default();
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
            }
        }
        t.routers = routers;
        t
    }

    pub fn routers(&self) -> &[Router<T>] {
        &self.routers
    }

    pub fn len(&self) -> usize {
        self.routers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routers.is_empty()
    }

    /// The router for a request: the first, in precedence order, whose rule matches.
    pub fn find<R: RequestView + ?Sized>(&self, req: &R) -> Option<&Router<T>> {
        self.find_prepared(&Prepared::new(req))
    }

    pub fn find_prepared<R: RequestView + ?Sized>(
        &self,
        p: &Prepared<'_, R>,
    ) -> Option<&Router<T>> {
        let host = p.host.strip_suffix('.').unwrap_or(&p.host);
        // At most: exact, one-label wildcard, each any-labels suffix, general. Inline storage: no
        // allocation on the request path for ordinary hosts.
        let mut lists: SmallVec<[&[u32]; 8]> = SmallVec::new();
        if let Some(l) = self.exact.get(host) {
            lists.push(l);
        }
        if !self.one_label.is_empty() || !self.any_labels.is_empty() {
            let mut rest = host;
            let mut first = true;
            while let Some(dot) = rest.find('.') {
                rest = &rest[dot + 1..];
                if first {
                    if let Some(l) = self.one_label.get(rest) {
                        lists.push(l);
                    }
                    first = false;
                }
                if let Some(l) = self.any_labels.get(rest) {
                    lists.push(l);
                }
            }
        }
        lists.push(&self.general);
        // k-way merge in precedence order (every list is sorted by position).
        let mut heads: SmallVec<[usize; 8]> = smallvec::smallvec![0; lists.len()];
        loop {
            let mut best: Option<(usize, u32)> = None;
            for (li, list) in lists.iter().enumerate() {
                if let Some(&idx) = list.get(heads[li]) {
                    if best.is_none_or(|(_, b)| idx < b) {
                        best = Some((li, idx));
                    }
                }
            }
            let (li, idx) = best?;
            heads[li] += 1;
            let router = &self.routers[idx as usize];
            if router.rule.matches(p) {
                return Some(router);
            }
        }
    }
}
