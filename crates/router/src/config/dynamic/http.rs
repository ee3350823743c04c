//! One dynamic configuration file, read key by key: Traefik's `http` section as its v3 reference
//! defines it. What betaroute implements is read; what it does not is refused by name at its
//! line (its router is then not served); anything else is an unknown key, as in Traefik. Routers,
//! services and middlewares each have their reader module.

use super::drafts::Part;
use super::{comparison, middleware, router, service, tls, transport};
use crate::config::read::{Cx, Obj};
use crate::config::source::Node;

pub fn read_file(cx: &mut Cx, tree: &Node) -> Part {
    let mut part = Part::default();
    let Some(mut top) = Obj::of(cx, tree, "dynamic configuration") else {
        return part;
    };
    for (key, what) in [
        ("tcp", "TCP routers and services"),
        ("udp", "UDP routers and services"),
    ] {
        top.refuse(
            cx,
            key,
            &format!("is not supported yet: {what} in this file are not served"),
        );
    }
    if let Some(mut http) = top.obj(cx, "http") {
        if let Some(mut routers) = http.obj(cx, "routers") {
            for e in routers.named() {
                if let Some(r) = router::read(cx, e) {
                    part.routers.push(r);
                }
            }
        }
        if let Some(mut services) = http.obj(cx, "services") {
            for e in services.named() {
                part.services.push(service::read(cx, e));
            }
        }
        if let Some(mut middlewares) = http.obj(cx, "middlewares") {
            for e in middlewares.named() {
                if let Some(m) = middleware::read(cx, e) {
                    part.middlewares.push(m);
                }
            }
        }
        if let Some(mut transports) = http.obj(cx, "serversTransports") {
            for e in transports.named() {
                part.transports
                    .push(transport::read_named(cx, &e.key, e.at, &e.value));
            }
        }
        if let Some(mut comparisons) = http.obj(cx, "comparisons") {
            for e in comparisons.named() {
                if let Some(c) = comparison::read(cx, e) {
                    part.comparisons.push(c);
                }
            }
        }
        http.refuse(
            cx,
            "models",
            "(entry point router models) is not supported yet",
        );
        http.finish(
            cx,
            &[
                "routers",
                "services",
                "middlewares",
                "serversTransports",
                "models",
                "comparisons",
            ],
        );
    }
    if let Some(t) = top.obj(cx, "tls") {
        part.tls = Some(tls::read(cx, t));
    }
    if let Some(mut cohorts) = top.obj(cx, "cohorts") {
        part.beta_enabled = read_cohorts(cx, &mut cohorts);
        cohorts.finish(cx, &["beta"]);
    }
    top.finish(cx, &["http", "tcp", "udp", "tls", "cohorts"]);
    part
}

/// betaroute's `cohorts` section: `cohorts.beta.enabled`, the router's beta kill switch.
fn read_cohorts(cx: &mut Cx, cohorts: &mut Obj) -> Option<bool> {
    let mut beta = cohorts.obj(cx, "beta")?;
    let enabled = beta.boolean(cx, "enabled");
    beta.finish(cx, &["enabled"]);
    enabled
}
