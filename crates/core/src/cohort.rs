//! The cohort of a request, defined once for the edge, the router's routing, its metrics and its
//! access log: they must never disagree, since comparing beta with main is the product's point.
//!
//! The edge sets [`DEFAULT_HEADER`]`: true` on beta requests, and the router's rules select beta
//! with ``Header(`X-RiksTV-Beta`, `true`)``, which compares the value exactly. So the cohort is
//! beta exactly when one value of the cohort header is [`BETA_VALUE`], byte for byte: `TRUE` or
//! `1` route to main and are counted as main.

use serde::Serialize;

/// The routing header the edge sets and the router's rules test, unless configured otherwise.
pub const DEFAULT_HEADER: &str = "X-RiksTV-Beta";

/// The one value that makes a request beta.
pub const BETA_VALUE: &str = "true";

/// The header the edge sets on holdback requests (value `holdback`), unless configured otherwise.
/// Like the beta header, it is a routing header: stripped from clients, covered by the signature.
pub const DEFAULT_COHORT_HEADER: &str = "X-BetaRoute-Cohort";

/// The traffic cohort of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cohort {
    Beta = 0,
    Main = 1,
    /// Beta-eligible users kept on main as a control group: routed as main, counted apart.
    Holdback = 2,
}

impl Cohort {
    pub fn as_str(self) -> &'static str {
        match self {
            Cohort::Beta => "beta",
            Cohort::Main => "main",
            Cohort::Holdback => "holdback",
        }
    }

    /// The cohort given the values of the cohort header (none when it is absent), by the same
    /// comparison as ``Header(`...`, `true`)``: any value exactly `true`.
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Cohort {
        if values.into_iter().any(|v| v == BETA_VALUE.as_bytes()) {
            Cohort::Beta
        } else {
            Cohort::Main
        }
    }

    /// The cohort given the beta header's values and the cohort header's: beta as
    /// [`Cohort::from_values`] says, else holdback when a cohort header value is exactly
    /// `holdback`, else main.
    pub fn of<'a, 'b>(
        beta: impl IntoIterator<Item = &'a [u8]>,
        cohort: impl IntoIterator<Item = &'b [u8]>,
    ) -> Cohort {
        match Cohort::from_values(beta) {
            Cohort::Beta => Cohort::Beta,
            _ if cohort
                .into_iter()
                .any(|v| v == crate::rollout::HOLDBACK_VALUE.as_bytes()) =>
            {
                Cohort::Holdback
            }
            _ => Cohort::Main,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_value_is_beta() {
        let of = |vals: &[&str]| Cohort::from_values(vals.iter().map(|v| v.as_bytes()));
        assert_eq!(of(&["true"]), Cohort::Beta);
        assert_eq!(of(&["false", "true"]), Cohort::Beta);
        for main in [
            &[][..],
            &["TRUE"],
            &["True"],
            &["1"],
            &["yes"],
            &[" true"],
            &[""],
        ] {
            assert_eq!(of(main), Cohort::Main, "{main:?}");
        }
    }

    #[cfg(feature = "rules")]
    #[test]
    fn agrees_with_the_header_matcher() {
        use crate::rules::{Prepared, Rule, SimpleRequest};
        let rule = Rule::compile("Header(`X-RiksTV-Beta`, `true`)").unwrap();
        for v in ["true", "TRUE", "1", "", "true "] {
            let req = SimpleRequest::get("http://a/").header(DEFAULT_HEADER, v);
            let routed = rule.matches(&Prepared::new(&req));
            assert_eq!(
                routed,
                Cohort::from_values([v.as_bytes()]) == Cohort::Beta,
                "{v:?}"
            );
        }
    }
}
