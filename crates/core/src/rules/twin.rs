//! The main router of a beta router: the same rule without the cohort header's matcher. A
//! comparison that names no baseline compares a beta router with this twin, the router its
//! requests would reach if they were not beta.

use super::parse::{parse, Expr};

/// The rule's top-level `&&` operands in a canonical spelling (spans dropped; hosts and header
/// names in lower case, as they match), sorted; `None` when the rule does not parse.
pub fn conjuncts(rule: &str) -> Option<Vec<String>> {
    let expr = parse(rule).ok()?;
    let mut out = Vec::new();
    flatten(&expr, &mut out);
    out.sort();
    Some(out)
}

/// Whether `main` is `beta` with one `Header(NAME, `true`)` operand left out. NAME is not
/// checked: the configuration layer does not know the cohort header (it is static
/// configuration), and a beta router is marked by exactly such an operand whatever its name.
pub fn is_main_twin(beta: &str, main: &str) -> bool {
    let (Some(b), Some(m)) = (conjuncts(beta), conjuncts(main)) else {
        return false;
    };
    if b.len() != m.len() + 1 {
        return false;
    }
    (0..b.len()).any(|i| {
        let is_marker = b[i].starts_with("Header(") && b[i].ends_with(",\"true\")");
        is_marker && b[..i].iter().chain(&b[i + 1..]).eq(m.iter())
    })
}

fn flatten(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::And(a, b) => {
            flatten(a, out);
            flatten(b, out);
        }
        other => out.push(canonical(other)),
    }
}

fn canonical(e: &Expr) -> String {
    match e {
        Expr::And(a, b) => {
            let mut parts = Vec::new();
            flatten(a, &mut parts);
            flatten(b, &mut parts);
            parts.sort();
            format!("({})", parts.join("&&"))
        }
        Expr::Or(a, b) => format!("({}||{})", canonical(a), canonical(b)),
        Expr::Not(a) => format!("!{}", canonical(a)),
        Expr::Call(c) => {
            let args: Vec<String> = c
                .args
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let folded = i == 0 && matches!(c.name, "Host" | "Header" | "HeaderRegexp");
                    format!(
                        "{:?}",
                        if folded {
                            a.to_ascii_lowercase()
                        } else {
                            a.clone()
                        }
                    )
                })
                .collect();
            format!("{}({})", c.name, args.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_twin_is_the_rule_without_the_cohort_header() {
        let beta = "Host(`api.example.com`) && Header(`X-RiksTV-Beta`, `true`)";
        assert!(is_main_twin(beta, "Host(`api.example.com`)"));
        assert!(is_main_twin(beta, "HOST(`API.example.com`)"));
        // Operands in any order and grouping, quotes of either kind.
        assert!(is_main_twin(
            "header(\"x-rikstv-beta\", \"true\") && PathPrefix(`/v1`) && Host(`a`)",
            "Host(`a`) && (PathPrefix(`/v1`))"
        ));
        assert!(is_main_twin(
            "(Host(`a`) || Host(`b`)) && Header(`X-RiksTV-Beta`, `true`)",
            "Host(`a`) || Host(`b`)"
        ));
    }

    #[test]
    fn other_rules_are_not_twins() {
        let beta = "Host(`api.example.com`) && Header(`X-RiksTV-Beta`, `true`)";
        assert!(!is_main_twin(beta, beta));
        assert!(!is_main_twin(beta, "Host(`other.example.com`)"));
        assert!(!is_main_twin(beta, "Host(`api.example.com`) && Path(`/x`)"));
        // A header of another value is not the cohort's.
        assert!(!is_main_twin(
            "Host(`a`) && Header(`X-RiksTV-Beta`, `false`)",
            "Host(`a`)"
        ));
        // Case matters in paths and values.
        assert!(!is_main_twin(
            "Path(`/A`) && Header(`X-RiksTV-Beta`, `true`)",
            "Path(`/a`)"
        ));
        assert!(!is_main_twin("Host(`a`", "Host(`a`)"));
    }
}
