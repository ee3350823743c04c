//! The other sections of a static configuration: providers, the access log, backend timeouts,
//! and Traefik's own settings that change nothing betaroute does.

use std::path::PathBuf;

use super::consul::{self, ConsulOptions};
use super::{AccessLog, Timeouts};
use crate::config::read::{Cx, Obj};

/// What `providers` configures.
#[derive(Default)]
pub struct Providers {
    pub files: Vec<PathBuf>,
    pub directory: Option<PathBuf>,
    pub watch: bool,
    pub consul: Option<ConsulOptions>,
}

pub fn providers(cx: &mut Cx, top: &mut Obj, resolve: &dyn Fn(&str) -> PathBuf) -> Providers {
    let mut files = Vec::new();
    let mut directory = None;
    let mut watch = false;
    let Some(mut p) = top.obj(cx, "providers") else {
        return Providers::default();
    };
    if let Some(mut f) = p.obj(cx, "file") {
        watch = f.boolean(cx, "watch").unwrap_or(false);
        let filename = f.string(cx, "filename");
        let dir = f.string(cx, "directory");
        match (filename, dir) {
            (Some(name), None) => files.push(resolve(&name)),
            (None, Some(d)) => directory = Some(resolve(&d)),
            _ => cx.error(
                f.at,
                "providers.file needs exactly one of filename or directory",
            ),
        }
        f.refuse(
            cx,
            "debugLogGeneratedTemplate",
            "is not supported (no Go templates yet)",
        );
        f.finish(
            cx,
            &[
                "filename",
                "directory",
                "watch",
                "debugLogGeneratedTemplate",
            ],
        );
    }
    p.ignore(
        cx,
        "providersThrottleDuration",
        "betaroute applies each new configuration as soon as it is validated",
    );
    for key in [
        "docker",
        "swarm",
        "kubernetesIngress",
        "kubernetesIngressNGINX",
        "kubernetesCRD",
        "kubernetesGateway",
        "knative",
        "rest",
        "nomad",
        "ecs",
        "consul",
        "etcd",
        "zooKeeper",
        "redis",
        "http",
        "plugin",
        "precedence",
    ] {
        p.refuse(
            cx,
            key,
            "is not supported yet: betaroute reads the file and consulCatalog providers",
        );
    }
    let consul = p
        .obj(cx, "consulCatalog")
        .map(|c| consul::read(cx, c, resolve));
    p.finish(cx, &["file", "consulCatalog", "providersThrottleDuration"]);
    Providers {
        files,
        directory,
        watch,
        consul,
    }
}

pub fn access_log(
    cx: &mut Cx,
    top: &mut Obj,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Option<AccessLog> {
    let node = top.get(cx, "accessLog")?;
    let mut a = Obj::of(cx, node, "accessLog")?;
    let format = a.string(cx, "format");
    let json = match format.as_deref() {
        None | Some("json") => true,
        Some("common") => false,
        Some(other) => {
            cx.error(
                a.at_key("format"),
                format!("accessLog: format {other:?} is not json or common"),
            );
            true
        }
    };
    let file = a.string(cx, "filePath").map(|f| resolve(&f));
    let enabled = a.boolean(cx, "enabled").unwrap_or(true);
    for key in ["filters", "fields", "bufferingSize", "addInternals", "otlp"] {
        a.ignore(
            cx,
            key,
            "betaroute logs every request with a fixed set of fields",
        );
    }
    a.finish(
        cx,
        &[
            "format",
            "filePath",
            "enabled",
            "filters",
            "fields",
            "bufferingSize",
            "addInternals",
            "otlp",
        ],
    );
    enabled.then_some(AccessLog { json, file })
}

/// The static `serversTransport`: the default transport (`default@internal`), whose timeouts
/// are also the proxy's defaults.
pub fn servers_transport(
    cx: &mut Cx,
    top: &mut Obj,
) -> (
    Timeouts,
    Option<crate::config::dynamic::transport::TransportSpec>,
) {
    let mut timeouts = Timeouts::default();
    let Some(st) = top.obj(cx, "serversTransport") else {
        return (timeouts, None);
    };
    let (spec, _) = crate::config::dynamic::transport::read(cx, st, false);
    if let Some(s) = &spec {
        if let Some(d) = s.dial_timeout {
            timeouts.dial = d;
        }
        if let Some(d) = s.response_header_timeout {
            timeouts.response_header = d;
        }
        if let Some(d) = s.idle_conn_timeout {
            timeouts.idle_conn = d;
        }
    }
    (timeouts, spec)
}

/// Traefik settings for its own logs, telemetry and dashboard: accepted with a word.
pub fn informational(cx: &mut Cx, top: &mut Obj) {
    for (key, why) in [
        ("global", "Traefik's version checks and anonymous usage do not apply"),
        ("log", "betaroute writes JSON log lines to standard error"),
        ("api", "betaroute's admin address serves Traefik's API (/api/http/routers, /api/overview...), /metrics and /ping; Traefik's dashboard is not served"),
        ("ping", "betaroute's admin address answers /ping"),
        ("metrics", "betaroute's admin address serves Prometheus metrics at /metrics"),
        ("tracing", "tracing is not implemented"),
        ("hostResolver", "CNAME flattening is not implemented"),
        ("experimental", "experimental features and plugins are not implemented (middlewares that use them are refused)"),
        ("certificatesResolvers", "ACME needs the network; routers that use a resolver are refused with their tls"),
        ("tcpServersTransport", "TCP routing is not supported"),
        ("ocsp", "TLS is not supported yet"),
    ] {
        top.ignore(cx, key, why);
    }
    top.refuse(cx, "spiffe", "is not supported");
    if let Some(mut core) = top.obj(cx, "core") {
        if let Some(s) = core.string(cx, "defaultRuleSyntax") {
            if !s.eq_ignore_ascii_case("v3") {
                cx.error(
                    core.at_key("defaultRuleSyntax"),
                    format!("core: defaultRuleSyntax {s:?}: only v3 rules are supported"),
                );
            }
        }
        core.finish(cx, &["defaultRuleSyntax"]);
    }
}
