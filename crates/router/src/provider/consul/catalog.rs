//! Reading the catalog as Traefik's Consul Catalog provider does: the service list, then each
//! service's instances with their health (`/v1/health/service/<name>`), one [`Item`] per
//! instance. The instance address is `Service.Address`, else `Node.Address`; the status is
//! aggregated from its checks as Consul's Go client does.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::client::{segment, ConsulClient, ConsulError};
use super::labels::{extra_conf, neutral_labels};
use crate::config::static_config::consul::ConsulOptions;

/// One service instance, as Traefik's `itemData`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    pub id: String,
    pub node: String,
    pub datacenter: String,
    pub name: String,
    pub namespace: String,
    pub address: String,
    pub port: String,
    pub status: String,
    /// Tags under the provider's prefix, as `traefik.`-prefixed labels.
    pub labels: BTreeMap<String, String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceEntry {
    pub node: Option<NodeInfo>,
    pub service: Option<ServiceInfo>,
    #[serde(default)]
    pub checks: Option<Vec<Check>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeInfo {
    #[serde(default, rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub datacenter: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceInfo {
    #[serde(default, rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub port: u32,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Check {
    #[serde(default, rename = "CheckID")]
    pub check_id: String,
    #[serde(default)]
    pub status: String,
}

/// Consul's `HealthChecks.AggregatedStatus`: maintenance, then critical, then warning, then
/// passing; a check in an unknown state makes the status unknown (`""`).
pub fn aggregated_status(checks: &[Check]) -> String {
    let (mut passing, mut warning, mut critical, mut maintenance) = (false, false, false, false);
    for c in checks {
        if c.check_id == "_node_maintenance" || c.check_id.starts_with("_service_maintenance:") {
            maintenance = true;
            continue;
        }
        match c.status.as_str() {
            "passing" => passing = true,
            "warning" => warning = true,
            "critical" => critical = true,
            _ => return String::new(),
        }
    }
    let status = if maintenance {
        "maintenance"
    } else if critical {
        "critical"
    } else if warning {
        "warning"
    } else {
        let _ = passing;
        "passing"
    };
    status.to_owned()
}

/// What a read of the catalog found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub items: Vec<Item>,
    /// Services skipped whole because their tags do not decode: (service, why).
    pub skipped: Vec<(String, String)>,
    /// The `cohortsKey` KV value: the beta kill switch, when the key is set and present.
    pub beta_enabled: Option<bool>,
}

/// Every instance of every service that is enabled, matches the constraints and is not a
/// Connect service, as Traefik filters them before reading instances; the rest of the
/// filtering (per-instance tags, status) is the build's.
pub async fn read_catalog(
    client: &ConsulClient,
    opts: &ConsulOptions,
) -> Result<Catalog, ConsulError> {
    let answer = client.get("/v1/catalog/services", &[], None, &[]).await?;
    let services: BTreeMap<String, Option<Vec<String>>> = answer.json("/v1/catalog/services")?;
    let tag_filter = format!("{}.enable=true", opts.prefix);
    let mut out = Catalog::default();
    let mut wanted = Vec::new();
    for (name, tags) in services {
        let tags = tags.unwrap_or_default();
        let extra = match extra_conf(&neutral_labels(&tags, &opts.prefix), opts) {
            Ok(e) => e,
            Err(why) => {
                out.skipped.push((name, why));
                continue;
            }
        };
        if extra.enable && !extra.connect && opts.constraints.matches(&tags) {
            wanted.push(name);
        }
    }
    // One request per service, several at once: a catalog of 1,000 services is read in the
    // time of a few dozen round trips, not a thousand.
    let mut reads = tokio::task::JoinSet::new();
    let mut names = wanted.into_iter();
    loop {
        while reads.len() < PARALLEL_READS {
            let Some(name) = names.next() else { break };
            let (client, prefix) = (client.clone(), opts.prefix.clone());
            let filter = (!opts.exposed_by_default).then(|| tag_filter.clone());
            reads.spawn(
                async move { read_service(&client, &prefix, &name, filter.as_deref()).await },
            );
        }
        match reads.join_next().await {
            None => break,
            Some(Ok(items)) => out.items.extend(items?),
            Some(Err(e)) => {
                return Err(ConsulError::Config(format!(
                    "catalog read task failed: {e}"
                )))
            }
        }
    }
    out.items.sort();
    if let Some(key) = &opts.cohorts_key {
        out.beta_enabled = read_switch(client, key).await?;
    }
    Ok(out)
}

/// The KV path of a key (each segment escaped).
pub fn kv_path(key: &str) -> String {
    let segments: Vec<String> = key.split('/').map(segment).collect();
    format!("/v1/kv/{}", segments.join("/"))
}

/// The kill switch's KV value: `true` / `false` (any case, surrounding spaces ignored), `None`
/// when the key does not exist. Any other value is an error: the last good configuration
/// stays, rather than guessing which way a switch was meant to go.
async fn read_switch(client: &ConsulClient, key: &str) -> Result<Option<bool>, ConsulError> {
    let path = kv_path(key);
    let answer = client.get(&path, &[("raw", "")], None, &[404]).await?;
    if answer.status == http::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&answer.body);
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        _ => Err(ConsulError::Garbage {
            url: path,
            reason: format!(
                "cohortsKey {key}: {:?} is not true or false",
                text.chars().take(40).collect::<String>()
            ),
        }),
    }
}

/// Health reads in flight at once (Consul's agent answers them from memory).
const PARALLEL_READS: usize = 16;

/// One service's instances (`tag_filter`: only those with that tag).
async fn read_service(
    client: &ConsulClient,
    prefix: &str,
    name: &str,
    tag_filter: Option<&str>,
) -> Result<Vec<Item>, ConsulError> {
    let path = format!("/v1/health/service/{}", segment(name));
    let query: Vec<(&str, &str)> = tag_filter.map(|t| ("tag", t)).into_iter().collect();
    let answer = client.get(&path, &query, None, &[]).await?;
    let entries: Option<Vec<ServiceEntry>> = answer.json(&path)?;
    let mut out = Vec::new();
    for e in entries.unwrap_or_default() {
        let (Some(node), Some(svc)) = (e.node, e.service) else {
            continue;
        };
        let address = if svc.address.is_empty() {
            node.address.clone()
        } else {
            svc.address.clone()
        };
        let tags = svc.tags.unwrap_or_default();
        out.push(Item {
            id: svc.id,
            node: node.node,
            datacenter: node.datacenter,
            name: name.to_owned(),
            namespace: svc
                .namespace
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".into()),
            address,
            port: svc.port.to_string(),
            status: aggregated_status(&e.checks.unwrap_or_default()),
            labels: neutral_labels(&tags, prefix),
            tags,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, status: &str) -> Check {
        Check {
            check_id: id.into(),
            status: status.into(),
        }
    }

    #[test]
    fn status_aggregation_as_consul() {
        assert_eq!(aggregated_status(&[]), "passing");
        assert_eq!(
            aggregated_status(&[check("serfHealth", "passing"), check("a", "warning")]),
            "warning"
        );
        assert_eq!(
            aggregated_status(&[check("a", "warning"), check("b", "critical")]),
            "critical"
        );
        assert_eq!(
            aggregated_status(&[
                check("b", "critical"),
                check("_service_maintenance:api-1", "critical")
            ]),
            "maintenance"
        );
        assert_eq!(
            aggregated_status(&[check("_node_maintenance", "critical")]),
            "maintenance"
        );
        assert_eq!(aggregated_status(&[check("a", "bogus")]), "");
    }
}
