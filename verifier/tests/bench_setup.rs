//! Fixture builder for `benches/verify.sh` (ignored by `cargo test`; run with
//! `BENCH_DIR=… cargo test --release --test bench_setup -- --ignored`). Writes into BENCH_DIR:
//!
//! | path | what |
//! |---|---|
//! | `layout/` | umoci image (make-umoci-image.sh, 1 MiB), sealed as tag `sealed`, 3 signatures by 3 of the 5 keys |
//! | `repo/` | repository with the sealed image imported (`images/<digest>`) |
//! | `k0..k4.pub` | the 5 trusted keys (P-256 and Ed25519 alternately) |
//! | `sealed-policy.json` | docker `""`: sigstoreSigned over the 5 keys, threshold 3, + composefs sealed |
//! | `big-policy.json` | `synthetic_policy_json(1000 scopes, 50 keys)` |
//! | `dir-img/` | a `dir:` image signed by keys 2 and 3 of the 50, satisfying scope `registry.example/team-502/app` |

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cfsgate_keyring::KeyType;
use common::key_pair;

#[test]
#[ignore = "benchmark fixture builder, run by benches/verify.sh"]
fn build_bench_fixtures() {
    let out = PathBuf::from(std::env::var("BENCH_DIR").expect("BENCH_DIR"));
    std::fs::create_dir_all(&out).unwrap();
    let layout = out.join("layout");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/oci/make-umoci-image.sh");
    let work = out.join("work");
    std::fs::create_dir_all(&work).unwrap();
    assert!(Command::new("sh")
        .arg(script)
        .arg(&layout)
        .arg(&work)
        .arg("1")
        .status()
        .unwrap()
        .success());
    let sealed = format!("oci:{}:sealed", layout.display());
    cfsgate_oci::seal::seal(
        &format!("oci:{}:test", layout.display()),
        &layout,
        "sealed",
        Default::default(),
    )
    .unwrap();
    let repo = cfsgate_image::store::Repository::create_or_open(out.join("repo")).unwrap();
    cfsgate_oci::import(&repo, &sealed, None).unwrap();
    let keys: Vec<_> = (0..5)
        .map(|i| {
            let kind = if i % 2 == 0 {
                KeyType::P256
            } else {
                KeyType::Ed25519
            };
            key_pair(&out, &format!("k{i}"), kind)
        })
        .collect();
    for (key, _) in &keys[2..] {
        cfsgate_verifier::sign_oci_image(&sealed, key, "registry.example/bench/app").unwrap();
    }
    let key_list: Vec<String> = keys
        .iter()
        .map(|(_, p)| serde_json::to_string(&p.display().to_string()).unwrap())
        .collect();
    std::fs::write(
        out.join("sealed-policy.json"),
        format!(
            r#"{{"default": [{{"type": "reject"}}], "transports": {{"docker": {{"": [
                {{"type": "sigstoreSigned", "keyPaths": [{}], "signedIdentity": {{"type": "matchRepository"}},
                  "cfsgate": {{"threshold": 3}}}},
                {{"type": "composefs", "sealed": true, "verity": "kernel"}}]}}}}}}"#,
            key_list.join(", ")
        ),
    )
    .unwrap();

    let many: Vec<_> = (0..50)
        .map(|i| key_pair(&out, &format!("m{i}"), KeyType::Ed25519))
        .collect();
    let paths: Vec<PathBuf> = many.iter().map(|(_, p)| p.clone()).collect();
    std::fs::write(
        out.join("big-policy.json"),
        cfsgate_policy::synthetic::synthetic_policy_json(1000, &paths),
    )
    .unwrap();
    let dir_img = out.join("dir-img");
    std::fs::create_dir_all(&dir_img).unwrap();
    std::fs::write(dir_img.join("manifest.json"), b"{\"schemaVersion\":2}").unwrap();
    // Scope team-502 trusts keys (502 + k) % 50 for k in 0..3, two of which must sign.
    for k in [2, 3] {
        cfsgate_verifier::sign_dir_image(&dir_img, &many[k].0, "registry.example/team-502/app")
            .unwrap();
    }
}
