//! The router's beta kill switch: `cohorts.beta.enabled` from the dynamic configuration, and an
//! override set through the admin API (`PUT /api/cohorts/beta`) on this replica. The override
//! wins while it is set, so a person (or, later, the judge) can turn beta off at once and a
//! person can turn it back on; `DELETE` hands control back to the configuration.
//!
//! When beta is off, the request path removes the beta header and the label header before
//! matching: beta and holdback requests are routed and counted as main.

use std::sync::atomic::{AtomicU8, Ordering};

use serde_json::{json, Value};

use crate::config::dynamic::BetaSwitch;

const NO_OVERRIDE: u8 = 0;
const FORCED_ON: u8 = 1;
const FORCED_OFF: u8 = 2;

/// The override of this replica: read on every request (one relaxed load).
#[derive(Debug, Default)]
pub struct BetaControl {
    state: AtomicU8,
}

/// Where the effective state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    Config,
    Api,
}

impl BetaControl {
    /// Whether beta routing is on, given the configuration's switch.
    pub fn enabled(&self, config: Option<&BetaSwitch>) -> bool {
        match self.state.load(Ordering::Relaxed) {
            FORCED_ON => true,
            FORCED_OFF => false,
            _ => config.is_none_or(|s| s.enabled),
        }
    }

    /// Sets (`Some`) or clears (`None`) the override.
    pub fn set(&self, enabled: Option<bool>) {
        let v = match enabled {
            None => NO_OVERRIDE,
            Some(true) => FORCED_ON,
            Some(false) => FORCED_OFF,
        };
        self.state.store(v, Ordering::Relaxed);
    }

    pub fn forced(&self) -> Option<bool> {
        match self.state.load(Ordering::Relaxed) {
            FORCED_ON => Some(true),
            FORCED_OFF => Some(false),
            _ => None,
        }
    }

    /// The state as the API shows it.
    pub fn view(&self, config: Option<&BetaSwitch>) -> Value {
        let source = match (self.forced(), config) {
            (Some(_), _) => Source::Api,
            (None, Some(_)) => Source::Config,
            (None, None) => Source::Default,
        };
        json!({
            "enabled": self.enabled(config),
            "source": match source {
                Source::Default => "default",
                Source::Config => "config",
                Source::Api => "api",
            },
            "config": config.map(|s| json!({"enabled": s.enabled, "provider": s.provider})),
            "override": self.forced(),
        })
    }
}

/// The body of `PUT /api/cohorts/beta`: `{"enabled": true|false}`.
pub fn parse_put(body: &[u8]) -> Result<bool, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not JSON ({e}); send {{\"enabled\": false}}"))?;
    let obj = v
        .as_object()
        .ok_or("the body must be an object: {\"enabled\": false}")?;
    if let Some(k) = obj.keys().find(|k| *k != "enabled") {
        return Err(format!("unknown field {k:?}: only \"enabled\" is accepted"));
    }
    obj.get("enabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| "\"enabled\" must be true or false".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_wins_until_cleared() {
        let c = BetaControl::default();
        let off = BetaSwitch {
            enabled: false,
            provider: "file".into(),
        };
        assert!(c.enabled(None));
        assert!(!c.enabled(Some(&off)));
        c.set(Some(true));
        assert!(c.enabled(Some(&off)));
        assert_eq!(c.view(Some(&off))["source"], "api");
        c.set(Some(false));
        assert!(!c.enabled(None));
        c.set(None);
        assert!(c.enabled(None));
        assert_eq!(c.view(None)["source"], "default");
        assert_eq!(c.view(Some(&off))["source"], "config");
    }

    #[test]
    fn put_bodies() {
        assert_eq!(parse_put(br#"{"enabled": false}"#), Ok(false));
        assert_eq!(parse_put(br#"{"enabled": true}"#), Ok(true));
        assert!(parse_put(b"off").unwrap_err().contains("not JSON"));
        assert!(parse_put(br#"{"enabled": "false"}"#)
            .unwrap_err()
            .contains("true or false"));
        assert!(parse_put(br#"{"enabled": false, "x": 1}"#)
            .unwrap_err()
            .contains("unknown field"));
        assert!(parse_put(b"[]").unwrap_err().contains("object"));
    }
}
