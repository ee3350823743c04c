//! `betaroute rollout`: the policy file edited, validated and published by the real binary; the
//! bucket numbers it prints are the published vectors.

mod common;

use std::process::{Command, Output};

fn br(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_betaroute"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn edits_build_a_valid_policy_file() {
    let dir = common::temp_dir();
    for args in [
        &["rollout", "set", "percent", "5"][..],
        &["rollout", "holdback", "10"],
        &["rollout", "allow", "dev-anna"],
        &["rollout", "deny", "customer-42"],
        &["rollout", "allow", "customer-42"],
        &["rollout", "set", "salt", "q4"],
        &["rollout", "kill"],
    ] {
        let o = br(&dir, args);
        assert!(o.status.success(), "{args:?}: {:?}", text(&o));
    }
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("rollout.json")).unwrap()).unwrap();
    assert_eq!(policy["beta"], "off");
    assert_eq!(policy["percent"], 5);
    assert_eq!(policy["holdback"], 10);
    assert_eq!(
        policy["allow"],
        serde_json::json!(["customer-42", "dev-anna"])
    );
    assert_eq!(
        policy["deny"],
        serde_json::json!([]),
        "allow takes a subject out of deny"
    );
    assert_eq!(policy["salt"], "q4");
    let o = br(&dir, &["rollout", "resume"]);
    assert!(o.status.success());
    let (out, _) = text(&br(&dir, &["rollout", "show"]));
    assert!(out.contains("\"beta\": \"on\""), "{out}");

    // An edit that would make the policy invalid leaves the file as it was.
    let before = std::fs::read_to_string(dir.join("rollout.json")).unwrap();
    let o = br(&dir, &["rollout", "set", "percent", "5.555"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("steps of 0.01"), "{:?}", text(&o));
    let o = br(&dir, &["rollout", "set", "rules", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(dir.join("rollout.json")).unwrap(),
        before
    );

    let (out, err) = text(&br(&dir, &["rollout", "publish"]));
    assert_eq!(
        out,
        "npx wrangler kv key put policy --binding BETAROUTE_POLICY --path rollout.json --remote\n"
    );
    assert!(err.contains("60 s"), "{err}");
}

#[test]
fn validate_locates_the_problem() {
    let dir = common::temp_dir();
    std::fs::write(
        dir.join("p.json"),
        "{\n  \"beta\": \"on\",\n  \"percnt\": 5\n}\n",
    )
    .unwrap();
    let o = br(&dir, &["rollout", "validate", "p.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("p.json:3:3: unknown field `percnt`"),
        "{:?}",
        text(&o)
    );
    std::fs::write(dir.join("ok.json"), "{\"percent\": 12.5}").unwrap();
    assert!(br(&dir, &["rollout", "--file", "ok.json", "validate"])
        .status
        .success());
}

#[test]
fn bucket_prints_the_published_vectors() {
    let dir = common::temp_dir();
    let vectors: serde_json::Value =
        serde_json::from_str(betaroute_core::rollout::VECTORS_JSON).unwrap();
    for v in vectors["buckets"].as_array().unwrap() {
        let mut args = vec!["rollout", "bucket", "--salt", v["salt"].as_str().unwrap()];
        if v["prefix"] == "betaroute-holdback-v1" {
            args.push("--holdback");
        }
        args.push("--");
        args.push(v["subject"].as_str().unwrap());
        let o = br(&dir, &args);
        assert!(o.status.success(), "{v}: {:?}", text(&o));
        assert_eq!(text(&o).0.trim(), v["bucket"].to_string(), "{v}");
    }
}
