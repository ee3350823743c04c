//! The Traefik v3 rule engine: parse once, compile matchers, and find the router for a request
//! in a table indexed by host.
//!
//! ```
//! use betaroute_core::rules::{Rule, Table, Router, SimpleRequest};
//!
//! let table = Table::new(vec![
//!     Router::new("main", Rule::compile("Host(`api.example.com`)").unwrap(), None, "main-pool"),
//!     Router::new("beta", Rule::compile("Host(`api.example.com`) && Header(`X-RiksTV-Beta`, `true`)").unwrap(), None, "beta-pool"),
//! ]);
//! let req = SimpleRequest::get("http://api.example.com/v1").header("x-rikstv-beta", "true");
//! assert_eq!(table.find(&req).unwrap().name, "beta"); // the longer rule wins
//! ```

mod goregex;
mod matcher;
mod parse;
mod request;
mod simple;
mod table;
mod twin;

pub use matcher::{host_matches, HostKey, IpNet};
pub use parse::{parse, Expr, RuleError, RuleErrorKind, MATCHERS};
pub use request::{canonical_host, parse_query, routing_path, Prepared, RequestView};
pub use simple::SimpleRequest;
pub use table::{Router, Table};
pub use twin::{conjuncts, is_main_twin};

use matcher::Node;

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    text: String,
    node: Node,
    default_priority: i64,
}

impl Rule {
    /// Parses and compiles a rule; errors carry the byte span of the problem.
    pub fn compile(text: &str) -> Result<Rule, RuleError> {
        let node = Node::compile(&parse(text)?)?;
        // Traefik: the rule's length in bytes, minus the stars of each positive `**.` host, so a
        // double wildcard ranks below the single wildcards and exact hosts it covers.
        let mut hosts = Vec::new();
        node.positive_hosts(false, &mut hosts);
        let penalty = hosts.iter().filter(|h| h.starts_with("**.")).count() as i64 * 2;
        Ok(Rule {
            default_priority: text.len() as i64 - penalty,
            text: text.to_owned(),
            node,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The priority Traefik gives this rule when none is configured.
    pub fn default_priority(&self) -> i64 {
        self.default_priority
    }

    pub fn matches<R: RequestView + ?Sized>(&self, req: &Prepared<'_, R>) -> bool {
        self.node.eval(req)
    }

    /// The domains of the rule's `Host` matchers, lower case, as Traefik picks a TLS router's
    /// options by SNI (negated matchers included, as Traefik's parser does).
    pub fn host_domains(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.node.host_domains(&mut out);
        out
    }

    pub(crate) fn host_keys(&self) -> Option<Vec<HostKey>> {
        self.node.host_keys()
    }
}

#[cfg(test)]
mod tests;
