//! `providers.consulCatalog`: Traefik's option names and defaults
//! (<https://doc.traefik.io/traefik/providers/consul-catalog/>). The default rule and the
//! constraints are compiled here, so a mistake in either is reported at its line when the
//! static configuration loads, not at the first catalog read.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::read::{Cx, Obj};
use crate::config::template::Template;
use crate::provider::constraints::Constraints;

/// Traefik's default `defaultRule`.
pub const DEFAULT_RULE: &str = "Host(`{{ normalize .Name }}`)";

/// A credential: shown as `***` by `Debug`, so it never reaches a log through a struct dump.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone)]
pub struct ConsulOptions {
    pub prefix: String,
    pub exposed_by_default: bool,
    /// `None` when set to `""`: routers without a rule are then dropped.
    pub default_rule: Option<Template>,
    pub constraints: Constraints,
    /// Health statuses that take traffic, lowercased (`any` for all).
    pub strict_checks: Vec<String>,
    pub refresh_interval: Duration,
    pub watch: bool,
    pub stale: bool,
    pub cache: bool,
    pub require_consistent: bool,
    /// Every service is a Connect service unless its tags say otherwise (with `connectAware`
    /// off, Traefik then ignores them: so does betaroute).
    pub connect_by_default: bool,
    pub endpoint: ConsulEndpoint,
    /// betaroute: the Consul KV key whose value (`true` / `false`) is `cohorts.beta.enabled`,
    /// the router's beta kill switch (`cohortsKey`); watched like the catalog.
    pub cohorts_key: Option<String>,
}

/// `providers.consulCatalog.endpoint`. Unset fields fall back to Consul's own environment
/// variables (`CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN`, `CONSUL_HTTP_TOKEN_FILE`...), as the
/// Consul client Traefik uses does; that is resolved by the client, not here.
#[derive(Debug, Clone, Default)]
pub struct ConsulEndpoint {
    /// `host:port` or a URL (`http://consul:8500`); `None`: the environment, else
    /// `127.0.0.1:8500`.
    pub address: Option<String>,
    pub scheme: Option<String>,
    pub datacenter: Option<String>,
    pub token: Option<Secret>,
    pub http_auth: Option<(String, Secret)>,
    /// How long a blocking query waits (`endpointWaitTime`); `None`: Consul's default, 5 min.
    pub wait_time: Option<Duration>,
    pub tls: Option<ClientTls>,
}

/// Traefik's `types.ClientTLS`.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

const KEYS: &[&str] = &[
    "cohortsKey",
    "prefix",
    "exposedByDefault",
    "defaultRule",
    "constraints",
    "strictChecks",
    "refreshInterval",
    "watch",
    "stale",
    "cache",
    "requireConsistent",
    "connectAware",
    "connectByDefault",
    "serviceName",
    "namespaces",
    "endpoint",
];

/// The position of byte `offset` of a string value written at `at` (after its opening quote).
/// Exact for values without escapes, which rules and templates seldom have.
fn inside(cx: &Cx, at: usize, offset: usize) -> usize {
    let quoted = cx.src.text[at.min(cx.src.text.len())..].starts_with(['"', '\'']);
    at + usize::from(quoted) + offset
}

const STATUSES: &[&str] = &["passing", "warning", "critical", "maintenance", "any"];

pub fn read(cx: &mut Cx, mut c: Obj, resolve: &dyn Fn(&str) -> PathBuf) -> ConsulOptions {
    let prefix = c.string(cx, "prefix").unwrap_or_else(|| "traefik".into());
    let default_rule = match c.get(cx, "defaultRule") {
        None => Some(Template::parse(DEFAULT_RULE).expect("the default rule is a valid template")),
        Some(node) => {
            let text =
                crate::config::read::string(cx, node, &c.child("defaultRule")).unwrap_or_default();
            if text.is_empty() {
                None
            } else {
                match Template::parse(&text) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        let at = inside(cx, node.at, e.offset);
                        cx.error(at, format!("{}: {e}", c.child("defaultRule")));
                        None
                    }
                }
            }
        }
    };
    let constraints = match c.get(cx, "constraints") {
        None => Constraints::default(),
        Some(node) => {
            let text =
                crate::config::read::string(cx, node, &c.child("constraints")).unwrap_or_default();
            let parsed = Constraints::parse(&text).unwrap_or_else(|e| {
                let at = inside(cx, node.at, e.offset);
                cx.error(at, format!("{}: {}", c.child("constraints"), e.message));
                Constraints::default()
            });
            for (pattern, why) in parsed.invalid_patterns() {
                cx.warn(
                    node.at,
                    format!("{}: TagRegex(`{pattern}`) is not a valid regular expression ({why}): as in Traefik, it matches no tag", c.child("constraints")),
                );
            }
            parsed
        }
    };
    let strict_checks = match c.strings(cx, "strictChecks") {
        None => vec!["passing".into(), "warning".into()],
        Some(list) => list
            .into_iter()
            .filter_map(|(s, at)| {
                let l = s.to_ascii_lowercase();
                if STATUSES.contains(&l.as_str()) {
                    Some(l)
                } else {
                    cx.error(
                        at,
                        format!(
                            "{}: {s:?} is not a health status ({})",
                            c.child("strictChecks"),
                            STATUSES.join(", ")
                        ),
                    );
                    None
                }
            })
            .collect(),
    };
    let refresh_interval = c
        .duration(cx, "refreshInterval")
        .unwrap_or(Duration::from_secs(15));
    if refresh_interval.is_zero() {
        cx.error(
            c.at_key("refreshInterval"),
            format!("{}: must be more than 0", c.child("refreshInterval")),
        );
    }
    let watch = c.boolean(cx, "watch").unwrap_or(false);
    let stale = c.boolean(cx, "stale").unwrap_or(false);
    let cache = c.boolean(cx, "cache").unwrap_or(false);
    let require_consistent = c.boolean(cx, "requireConsistent").unwrap_or(false);
    if stale && require_consistent {
        cx.error(
            c.at_key("stale"),
            format!(
                "{}: stale and requireConsistent exclude each other",
                c.what()
            ),
        );
    }
    if c.boolean(cx, "connectAware") == Some(true) {
        cx.refuse(
            c.at_key("connectAware"),
            format!("{}: connectAware (Consul Connect service mesh) is not supported: betaroute does not speak Connect's mTLS; Connect-tagged services are ignored as with connectAware = false", c.what()),
        );
    }
    let connect_by_default = c.boolean(cx, "connectByDefault").unwrap_or(false);
    if connect_by_default {
        cx.warn(
            c.at_key("connectByDefault"),
            format!("{}: connectByDefault without connectAware: every service is taken as a Connect service and ignored, as in Traefik, unless its tags say {prefix}.consulcatalog.connect=false", c.what()),
        );
    }
    c.ignore(
        cx,
        "serviceName",
        "it names Traefik's own service for Consul Connect, which betaroute does not support",
    );
    c.refuse(
        cx,
        "namespaces",
        "(Consul Enterprise namespaces) are not supported: betaroute reads the default namespace",
    );
    let endpoint = c
        .obj(cx, "endpoint")
        .map(|e| endpoint(cx, e, resolve))
        .unwrap_or_default();
    let cohorts_key = c.string(cx, "cohortsKey").and_then(|k| {
        let key = k.trim_matches('/').to_owned();
        if key.is_empty() || key.contains(['?', '#']) || key.split('/').any(|s| s.is_empty()) {
            cx.error(
                c.at_key("cohortsKey"),
                format!(
                    "{}: {k:?} is not a Consul KV key (segments separated by /)",
                    c.child("cohortsKey")
                ),
            );
            return None;
        }
        Some(key)
    });
    let options = ConsulOptions {
        prefix,
        exposed_by_default: c.boolean(cx, "exposedByDefault").unwrap_or(true),
        default_rule,
        constraints,
        strict_checks,
        refresh_interval,
        watch,
        stale,
        cache,
        require_consistent,
        connect_by_default,
        endpoint,
        cohorts_key,
    };
    c.finish(cx, KEYS);
    options
}

fn endpoint(cx: &mut Cx, mut e: Obj, resolve: &dyn Fn(&str) -> PathBuf) -> ConsulEndpoint {
    let scheme = e.string(cx, "scheme");
    if let Some(s) = &scheme {
        if !matches!(s.as_str(), "http" | "https") {
            cx.error(
                e.at_key("scheme"),
                format!("{}: {s:?} is not http or https", e.child("scheme")),
            );
        }
    }
    let http_auth = e.obj(cx, "httpAuth").and_then(|mut a| {
        let user = a.string(cx, "username").unwrap_or_default();
        let password = a.string(cx, "password").unwrap_or_default();
        a.finish(cx, &["username", "password"]);
        (!user.is_empty() || !password.is_empty()).then_some((user, Secret(password)))
    });
    let tls = e.obj(cx, "tls").map(|mut t| {
        let path = |cx: &mut Cx, t: &mut Obj, k: &str| t.string(cx, k).map(|p| resolve(&p));
        let tls = ClientTls {
            ca: path(cx, &mut t, "ca"),
            cert: path(cx, &mut t, "cert"),
            key: path(cx, &mut t, "key"),
            insecure_skip_verify: t.boolean(cx, "insecureSkipVerify").unwrap_or(false),
        };
        if tls.cert.is_some() != tls.key.is_some() {
            cx.error(t.at, format!("{}: cert and key go together", t.what()));
        }
        t.refuse(
            cx,
            "caOptional",
            "is not supported (Traefik v2's option; a CA given is always used)",
        );
        t.finish(
            cx,
            &["ca", "cert", "key", "insecureSkipVerify", "caOptional"],
        );
        tls
    });
    let out = ConsulEndpoint {
        address: e.string(cx, "address").filter(|a| !a.is_empty()),
        scheme,
        datacenter: e.string(cx, "datacenter").filter(|d| !d.is_empty()),
        token: e.string(cx, "token").filter(|t| !t.is_empty()).map(Secret),
        http_auth,
        wait_time: e.duration(cx, "endpointWaitTime").filter(|d| !d.is_zero()),
        tls,
    };
    e.finish(
        cx,
        &[
            "address",
            "scheme",
            "datacenter",
            "token",
            "httpAuth",
            "endpointWaitTime",
            "tls",
        ],
    );
    out
}
