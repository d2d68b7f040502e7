//! `--json` through the `cfsgate` binary: every command whose output a program reads prints one
//! document naming its versioned schema (docs/json.md), parsed here and checked against what
//! the same run did (a real signed, sealed image; a real admission mounted by the precreate
//! hook; the audit log it wrote).

#[path = "fixtures/hooks.rs"]
mod fixture;

use fixture::*;

/// Run cfsgate with `args` (and `stdin`), expecting exit 0; its stdout as JSON.
fn json_of(args: &[&str], stdin: Option<&[u8]>) -> serde_json::Value {
    let out = cfsgate(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {:?}", out.stdout))
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn every_json_document_names_its_schema_and_says_what_happened() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let rootfs = fx.rootfs("json", "json");
    let image = fx.image("json", &rootfs, Variant::Good);
    let digest = fx.store(&rootfs);
    let repo = fx.repo.to_str().unwrap();
    let policy = fx.policy.to_str().unwrap();
    let reference = "registry.example/app:latest";

    let images = json_of(&["--repo", repo, "images", "--json"], None);
    assert_eq!(images["schema"], "cfsgate.images/v1");
    let listed: Vec<&str> = images["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["digest"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [digest.as_str()]);

    let fsck = json_of(&["--repo", repo, "fsck", "--json"], None);
    assert_eq!(fsck["schema"], "cfsgate.fsck/v1");
    assert_eq!(fsck["ok"], true);
    assert_eq!(fsck["images_checked"], 1);

    let args = [
        "--repo",
        repo,
        "verify",
        &image,
        "--policy",
        policy,
        "--reference",
        reference,
        "--json",
    ];
    let verify = json_of(&args, None);
    assert_eq!(verify["schema"], "cfsgate.verify/v1");
    assert_eq!(verify["admitted"], true);
    assert_eq!(verify["composefs_digest"], digest.as_str());

    let args = [
        "--repo",
        repo,
        "policy",
        "explain",
        policy,
        &image,
        "--reference",
        reference,
        "--json",
    ];
    let explain = json_of(&args, None);
    assert_eq!(explain["schema"], "cfsgate.policy.explain/v1");
    assert_eq!(explain["admitted"], true);
    assert!(explain["explanation"].as_array().unwrap().len() > 3);

    // mounts list: empty, then the admission precreate made, then empty again after poststop.
    let run_dir = fx.run_dir.to_str().unwrap();
    let list = || json_of(&["mounts", "list", "--run-dir", run_dir, "--json"], None);
    std::fs::create_dir_all(&fx.run_dir).unwrap();
    let empty = list();
    assert_eq!(empty["schema"], "cfsgate.mounts.list/v1");
    assert_eq!(empty["mounts"], serde_json::json!([]));
    let mut args = vec![
        "hook".to_string(),
        "precreate".into(),
        "--annotations".into(),
    ];
    args.extend(fx.gate_args());
    let config = json_of(&strs(&args), Some(&runtime_config(&image, reference, &[])));
    let root = std::path::PathBuf::from(config["root"]["path"].as_str().unwrap());
    let mounts = list();
    let mounts = mounts["mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    let record = &mounts[0]["record"];
    assert_eq!(record["composefs_digest"], format!("sha256:{digest}"));
    assert_eq!(record["rootfs"], root.to_str().unwrap());
    assert_eq!(record["image"], image.as_str());
    assert_eq!(mounts[0]["state"], root.parent().unwrap().to_str().unwrap());
    let bundle = bundle_for(fx.path(), "json", &root);
    for stage in ["create-runtime", "poststop"] {
        let mut args = vec!["hook".to_string(), stage.into()];
        args.extend(fx.check_args());
        let out = cfsgate(&strs(&args), Some(&state_json("ctr-json", &bundle)));
        assert!(out.status.success(), "{stage}");
    }
    assert_eq!(list()["mounts"], serde_json::json!([]));

    // The audit log of those three stages.
    let log = fx.audit_log.to_str().unwrap();
    let verified = json_of(&["audit", "verify", "--json", "--audit-log", log], None);
    assert_eq!(verified["schema"], "cfsgate.audit.verify/v1");
    assert_eq!(verified["intact"], true);
    let recorded = verified["records"].as_u64().unwrap();
    assert!(recorded >= 3, "{verified}");
    let shown = json_of(&["audit", "show", "--json", "--audit-log", log], None);
    assert_eq!(shown["schema"], "cfsgate.audit.show/v1");
    assert_eq!(shown["records"][0]["record"]["stage"], "precreate");
    assert_eq!(
        shown["records"][0]["record"]["composefs_digest"],
        format!("sha256:{digest}")
    );
    let summary = json_of(&["audit", "summary", "--json", "--audit-log", log], None);
    assert_eq!(summary["schema"], "cfsgate.audit.summary/v1");
    assert_eq!(summary["records"].as_u64(), Some(recorded));
}
