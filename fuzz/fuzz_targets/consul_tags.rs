//! Consul tags: any lines, taken as the tags of two instances of one service (and as a default
//! rule template and constraints), through the Consul Catalog provider's build and the
//! combination `serve` uses: a layer with located diagnostics, never a panic.
#![no_main]

use betaroute_router::config::dynamic::combine;
use betaroute_router::config::static_config::parse_static_str;
use betaroute_router::config::Format;
use betaroute_router::provider::consul::build::build;
use betaroute_router::provider::consul::catalog::{Catalog, Item};
use betaroute_router::provider::consul::labels::neutral_labels;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.lines();
    let rule = lines.next().unwrap_or_default();
    let constraints = lines.next().unwrap_or_default();
    let tags: Vec<String> = lines.map(str::to_owned).collect();
    let stat = format!(
        "[entryPoints.web]\naddress = \":80\"\n[providers.consulCatalog]\ndefaultRule = {}\nconstraints = {}\n",
        serde_json::to_string(rule).unwrap(),
        serde_json::to_string(constraints).unwrap()
    );
    let Ok(st) = parse_static_str("fuzz.toml", &stat, Format::Toml) else { return };
    let opts = st.consul.expect("consulCatalog is set");
    let item = |id: &str, tags: Vec<String>| Item {
        id: id.into(),
        node: "n".into(),
        datacenter: "dc1".into(),
        name: "svc".into(),
        namespace: "default".into(),
        address: "127.0.0.1".into(),
        port: "80".into(),
        status: "passing".into(),
        labels: neutral_labels(&tags, "traefik"),
        tags,
    };
    let half = tags.len() / 2;
    let catalog = Catalog {
        items: vec![item("a", tags[..half].to_vec()), item("b", tags.clone())],
        skipped: Vec::new(),
    };
    let layer = build(&catalog, &opts);
    let (config, _) = combine(&[&layer], &Default::default());
    for d in &config.diagnostics {
        let _ = d.to_string();
    }
});
