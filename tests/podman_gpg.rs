//! GPG `signedBy`, the signature policy most admins already have, end to end through podman:
//! images signed by `skopeo copy --sign-by` (gpg keys made by `gpg --quick-gen-key`) on their
//! way into a real registry (Debian's docker-registry 2.8, plain HTTP on 127.0.0.1), the
//! signatures kept in a lookaside store (registries.d `lookaside`/`lookaside-staging`, a
//! `file://` directory), `podman pull` (which reads them from the lookaside and stores them with
//! the image in containers-storage), then `podman run` through the precreate hook (hooks.d
//! `when: always`, no annotations). The gate reads the signatures podman stored and judges them
//! by the same policy.json podman would use:
//!
//! - signed by the trusted key: admitted, runs on the composefs root built from its verified
//!   layers;
//! - signed by another gpg key: refused (no signature by a trusted key);
//! - unsigned: refused;
//! - the trusted key's signature of `app`, copied to where the lookaside holds another image's:
//!   refused (it signs another manifest and another name).
//!
//! Needs root, podman, runc, skopeo, umoci, gpg and docker-registry (scripts/setup,
//! scripts/runtime-setup); under CI=true nothing may be missing.

#[path = "fixtures/hooks.rs"]
mod fixture;
#[path = "fixtures/gpg.rs"]
mod gpg;
#[path = "fixtures/podman.rs"]
mod podman;
#[path = "fixtures/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};
use std::process::Command;

use fixture::*;
use gpg::{ok, GnupgHome};
use podman::*;

/// registries.d naming `lookaside` as the registry's signature store, for reading (podman) and
/// writing (skopeo).
fn lookaside_yaml(registry_host: &str, lookaside: &Path) -> String {
    let url = format!("file://{}", lookaside.display());
    format!("docker:\n  {registry_host}:\n    lookaside: {url}\n    lookaside-staging: {url}\n")
}

/// `skopeo copy` of `src` to `dest` (plain HTTP), signed by `fingerprint` when given, with the
/// registries.d in `registries_d` (where the signature is written).
fn push(home: &GnupgHome, registries_d: &Path, src: &str, dest: &str, fingerprint: Option<&str>) {
    let mut command = Command::new("skopeo");
    command
        .env("GNUPGHOME", home.path())
        .arg("--registries.d")
        .arg(registries_d)
        .args(["copy", "--quiet", "--dest-tls-verify=false"]);
    if let Some(fingerprint) = fingerprint {
        command.args(["--sign-by", fingerprint]);
    }
    ok("skopeo copy", command.arg(src).arg(dest).output().unwrap());
}

/// Every repository of `host` under `cfsgate/` admitted when signed by `key` (a gpg keyring).
fn write_policy(fx: &Fixture, host: &str, key: &Path) -> PathBuf {
    let signed_by = serde_json::json!({
        "type": "signedBy",
        "keyType": "GPGKeys",
        "keyPath": key,
    });
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {format!("{host}/cfsgate"): [signed_by]}}
    });
    let path = fx.path().join("gpg-policy.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
    path
}

/// The one `signature-N` file the lookaside holds for `repo` at manifest `digest`.
fn lookaside_signature(lookaside: &Path, repo: &str, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    lookaside.join(format!("cfsgate/{repo}@sha256={hex}/signature-1"))
}

/// The digest of the manifest podman stored for `name`.
fn stored_digest(pm: &Podman, name: &str) -> String {
    pm.image_record(name)["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn podman_pulled_gpg_signed_images_are_judged_by_signed_by() {
    if !require_root() {
        return;
    }
    let setup = PulledSetup::start();
    let (fx, host) = (&setup.fx, &setup.host);
    let name = |repo: &str| setup.name(repo);

    let home = GnupgHome::new();
    let trusted = home.generate(
        "cfsgate release <release@example.test>",
        "rsa3072",
        "sign",
        "0",
        None,
    );
    let stranger = home.generate(
        "someone else <else@example.test>",
        "ed25519",
        "sign",
        "0",
        None,
    );
    let lookaside = fx.path().join("lookaside");
    let skopeo_registries_d = fx.path().join("skopeo-registries.d");
    std::fs::create_dir_all(&skopeo_registries_d).unwrap();
    std::fs::write(
        skopeo_registries_d.join("lookaside.yaml"),
        lookaside_yaml(host, &lookaside),
    )
    .unwrap();
    for (repo, marker, signer) in [
        ("app", "gpg-signed", Some(trusted.as_str())),
        ("stranger", "stranger", Some(stranger.as_str())),
        ("unsigned", "unsigned", None),
        ("other", "other", None),
    ] {
        let src = image_layout(fx, repo, marker);
        push(
            &home,
            &skopeo_registries_d,
            &src,
            &format!("docker://{}", name(repo)),
            signer,
        );
    }
    let key = fx.path().join("release.gpg");
    home.export(&trusted, false, &key);
    let policy = write_policy(fx, host, &key);

    let pm = Podman::new(
        fx,
        &lookaside_yaml(host, &lookaside),
        install_hooks(fx, &policy),
    );
    pm.pull(&name("app"));
    pm.pull(&name("stranger"));
    pm.pull(&name("unsigned"));
    // The trusted key's signature of `app`, put where the lookaside keeps `other`'s, before
    // podman pulls `other` (podman copies it into containers-storage with the image).
    let app_digest = stored_digest(&pm, &name("app"));
    let app_signature = lookaside_signature(&lookaside, "app", &app_digest);
    assert!(
        app_signature.is_file(),
        "skopeo wrote no signature at {}",
        app_signature.display()
    );
    let other_manifest = registry::read_json(&fx.path().join("oci-other/index.json"));
    let other_digest = other_manifest["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let copied = lookaside_signature(&lookaside, "other", &other_digest);
    std::fs::create_dir_all(copied.parent().unwrap()).unwrap();
    std::fs::copy(&app_signature, &copied).unwrap();
    pm.pull(&name("other"));
    assert_eq!(stored_digest(&pm, &name("other")), other_digest);

    // Signed by the trusted gpg key: runs on the composefs root, judged as the name pulled.
    assert_ran_on_composefs(&pm.run(&name("app")), "gpg-signed", "gpg-signed, pulled");
    let record = assert_admitted_from_storage(fx, &pm, &name("app"), &app_digest);
    assert!(
        record["requirements"].to_string().contains(&trusted),
        "the admission does not name the signer's fingerprint: {record}"
    );

    // Signed by a key the policy does not trust.
    assert_podman_refused(
        &pm.run(&name("stranger")),
        &name("stranger"),
        "invalid GPG signature",
    );
    // Unsigned.
    assert_podman_refused(
        &pm.run(&name("unsigned")),
        &name("unsigned"),
        "A signature was required, but no signature exists",
    );
    // A good signature of the trusted key, but of another image.
    assert_podman_refused(
        &pm.run(&name("other")),
        &name("other"),
        &format!(
            "Signature for digest {app_digest} does not match (the manifest is {other_digest})"
        ),
    );
    assert_eq!(last_precreate(fx)["verdict"], "deny");

    assert!(
        mounts_under(&fx.run_dir).is_empty(),
        "left mounted: {:?}",
        mounts_under(&fx.run_dir)
    );
}
