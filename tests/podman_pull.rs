//! `podman pull` from a real registry (Debian's docker-registry 2.8, plain HTTP on 127.0.0.1),
//! then `podman run` through the precreate hook (hooks.d `when: always`, no annotations): the
//! gate judges the pulled image under the name it was pulled as, with the signatures podman
//! stored for it (issue #15).
//!
//! How the signatures get there: `cfsgate sign docker://…` pushes a cosign simple-signing
//! signature to the `sha256-<hex>.sig` tag; podman 4.3.1 (containers/image 5.23) reads that
//! tag on pull only when registries.d says `use-sigstore-attachments: true` for the registry,
//! and then stores the signatures with the image in containers-storage (big data
//! `signature-<manifest hex>`). podman reads registries.d from `$HOME/.config/containers/
//! registries.d` when that directory exists, else `/etc/containers/registries.d`
//! (containers/image `docker/registries_d.go`, `registriesDirPath`); neither containers.conf
//! nor `REGISTRIES_CONFIG_PATH` (that is registries.conf) names it. The test gives podman a
//! `HOME` of its own, so the host's configuration is not touched.
//!
//! - signed by the trusted key (`cfsgate sign`, `.sig` tag): admitted, runs on the composefs
//!   root built from its verified layers (plain policy, no seal);
//! - unsigned: refused;
//! - a valid signature of the trusted key, but for another image (the `.sig` manifest of the
//!   signed image copied to the unsigned one's tag): refused, the signed digest is not its own.
//!
//! The unsealed image is built once: the second start mounts the stored image, found by the
//! gate's keyed record under the verified config digest (the audit record says so); a record
//! rewritten without the key is not believed (built again); a stored image altered after it
//! was recorded is refused.

#[path = "fixtures/hooks.rs"]
mod fixture;
#[path = "fixtures/podman.rs"]
mod podman;
#[path = "fixtures/registry.rs"]
mod registry;

use std::path::PathBuf;
use std::process::Command;

use cfsgate_oci::registry::{ClientOptions, DockerRef, RegistryClient};
use fixture::*;
use podman::*;
use registry::skopeo_push;

/// The config digest (hex: the image ID) of the image named `name`.
fn record_config(pm: &Podman, name: &str) -> String {
    pm.image_record(name)["id"].as_str().unwrap().to_string()
}

/// The digest of the manifest `image` (docker://HOST/NAME:TAG) names in the registry.
fn manifest_digest(image: &str) -> cfsgate_oci::BlobDigest {
    let parsed = DockerRef::parse(image).unwrap();
    let options = ClientOptions {
        tls_verify: false,
        ..Default::default()
    };
    let client = RegistryClient::connect(&parsed, &options).unwrap();
    client
        .get_manifest(
            &parsed.repository,
            &parsed.manifest_reference(),
            None,
            1 << 20,
        )
        .unwrap()
        .expect("the manifest")
        .digest
}

/// Every repository of `host` under `cfsgate/` admitted when signed by the fixture's signer.
fn write_policy(fx: &Fixture, host: &str) -> PathBuf {
    let sigstore = serde_json::json!({
        "type": "sigstoreSigned",
        "keyPath": fx.path().join("signer.pub"),
        "signedIdentity": {"type": "matchRepository"}
    });
    let scopes: serde_json::Map<String, serde_json::Value> = ["app", "unsigned", "other"]
        .iter()
        .map(|n| (format!("{host}/cfsgate/{n}"), serde_json::json!([sigstore])))
        .collect();
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": scopes}
    });
    let path = fx.path().join("pull-policy.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
    path
}

#[test]
fn podman_pulled_images_are_judged_by_the_signatures_podman_stored() {
    if !require_root() {
        return;
    }
    let setup = PulledSetup::start();
    let (fx, host) = (&setup.fx, &setup.host);
    let name = |repo: &str| setup.name(repo);
    for (repo, marker) in [
        ("app", "pulled"),
        ("unsigned", "unsigned"),
        ("other", "other"),
    ] {
        push_image(fx, repo, marker, &format!("docker://{}", name(repo)));
    }
    let sign = cfsgate(
        &[
            "sign",
            "--tls-verify=false",
            "--key",
            fx.signer.to_str().unwrap(),
            "--identity",
            &format!("{host}/cfsgate/app"),
            &format!("docker://{}", name("app")),
        ],
        None,
    );
    assert!(sign.status.success(), "{}", text(&sign.stderr));
    // The trusted key's signature of `app`, put where podman looks for `other`'s.
    let app = manifest_digest(&format!("docker://{}", name("app")));
    let other = manifest_digest(&format!("docker://{}", name("other")));
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{host}/cfsgate/app:sha256-{}.sig", app.hex()),
        &format!("docker://{host}/cfsgate/other:sha256-{}.sig", other.hex()),
    ]));

    let policy = write_policy(fx, host);
    let pm = Podman::new(
        fx,
        &Podman::sigstore_attachments(host),
        install_hooks(fx, &policy),
    );
    for repo in ["app", "unsigned", "other"] {
        pm.pull(&name(repo));
    }
    // podman kept the signatures it found (and only those).
    let stored = |repo: &str, digest: &cfsgate_oci::BlobDigest| {
        pm.image_record(&name(repo))["big-data-names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| *n == format!("signature-{}", digest.hex()))
    };
    assert!(stored("app", &app), "podman stored no signature for app");
    assert!(
        stored("other", &other),
        "podman stored no signature for other"
    );
    // For the unsigned image podman writes an empty signature list (size 0).
    let unsigned = pm.image_record(&name("unsigned"));
    let sizes = unsigned["big-data-sizes"].as_object().unwrap();
    assert!(
        sizes
            .iter()
            .all(|(k, v)| !k.starts_with("signature-") || *v == 0),
        "{unsigned}"
    );

    // Signed by the trusted key: runs on the composefs root, judged as the name pulled.
    assert_ran_on_composefs(&pm.run(&name("app")), "pulled", "signed, pulled");
    let record = assert_admitted_from_storage(fx, &pm, &name("app"), &app.to_string());
    let requirements = |r: &serde_json::Value| r["requirements"].to_string();
    assert!(
        requirements(&record).contains("built from the verified layers and stored"),
        "{record}"
    );
    let digest = record["composefs_digest"].as_str().unwrap().to_string();
    let hex = digest.strip_prefix("sha256:").unwrap().to_string();

    // The second start mounts what the first built: found by the gate's keyed record under
    // the verified config digest, not built again.
    let built_record = fx
        .repo
        .join("oci/built")
        .join(format!("{}.json", record_config(&pm, &name("app"))));
    assert!(
        built_record.is_file(),
        "no record {}",
        built_record.display()
    );
    assert_ran_on_composefs(&pm.run(&name("app")), "pulled", "second start");
    let second = last_precreate(fx);
    assert!(
        requirements(&second).contains("stored when first built from these verified layers"),
        "{second}"
    );
    assert_eq!(second["composefs_digest"], digest);

    // A record rewritten by someone without the gate's key (pointing at another image) is not
    // believed: the image is built again from its verified layers.
    let mut forged = registry::read_json(&built_record);
    forged["image"] = "0".repeat(64).into();
    std::fs::write(&built_record, forged.to_string()).unwrap();
    assert_ran_on_composefs(&pm.run(&name("app")), "pulled", "forged record");
    let third = last_precreate(fx);
    assert!(
        requirements(&third).contains("built from the verified layers and stored"),
        "{third}"
    );
    assert_eq!(third["composefs_digest"], digest);
    assert_eq!(registry::read_json(&built_record)["image"], hex.as_str());

    // The stored image altered behind the gate's back (replaced, as a writer of the repository
    // could): detected when the record leads to it, and refused.
    let stored = fx.repo.join("images").join(&hex);
    let mut bytes = std::fs::read(&stored).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let replacement = fx.repo.join("images").join(".altered");
    std::fs::write(&replacement, &bytes).unwrap();
    std::fs::rename(&replacement, &stored).unwrap();
    assert_podman_refused(&pm.run(&name("app")), &name("app"), "was altered");

    // Unsigned: refused.
    assert_podman_refused(
        &pm.run(&name("unsigned")),
        &name("unsigned"),
        "unsigned: no sigstore signature",
    );
    // The trusted key's signature of another manifest: refused.
    assert_podman_refused(
        &pm.run(&name("other")),
        &name("other"),
        &format!("signed manifest {app}, but the manifest is {other}"),
    );
    assert_eq!(last_precreate(fx)["verdict"], "deny");

    assert!(
        mounts_under(&fx.run_dir).is_empty(),
        "left mounted: {:?}",
        mounts_under(&fx.run_dir)
    );
}

/// An OCI layout image index tagged `multi`: linux/amd64 is a runnable image whose `/etc/motd`
/// says `marker`, linux/arm64 an image of one file; pushed with `skopeo copy --all` to `dest`.
fn push_multi_arch(fx: &Fixture, marker: &str, dest: &str) {
    let layout = fx.path().join("oci-multi");
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    let arm = fx.path().join("rootfs-arm");
    std::fs::create_dir_all(arm.join("etc")).unwrap();
    std::fs::write(arm.join("etc/motd"), "arm64\n").unwrap();
    let mut descriptors = Vec::new();
    for (arch, rootfs) in [("amd64", fx.rootfs("multi", marker)), ("arm64", arm)] {
        let tagged = format!("{}:{arch}", layout.display());
        run(Command::new("umoci").args(["new", "--image", &tagged]));
        run(Command::new("umoci")
            .args(["insert", "--image", &tagged])
            .arg(&rootfs)
            .arg("/"));
        let index = registry::read_json(&layout.join("index.json"));
        let entry = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == arch)
            .unwrap()
            .clone();
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": entry["digest"], "size": entry["size"],
            "platform": {"os": "linux", "architecture": arch},
        }));
    }
    let top = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descriptors});
    let bytes = serde_json::to_vec(&top).unwrap();
    let digest = cfsgate_oci::BlobDigest::of(&bytes);
    std::fs::write(layout.join("blobs/sha256").join(digest.hex()), &bytes).unwrap();
    let mut index = registry::read_json(&layout.join("index.json"));
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest.to_string(), "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }));
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    skopeo_push(&format!("oci:{}:multi", layout.display()), dest, &["--all"]);
}

/// Images signed only with sigstore bundles (`cfsgate sign --format bundle`, listed in the
/// registry's `sha256-<hex>` referrers tag: distribution 2.8 has no referrers API), pulled by
/// podman (which neither fetches nor keeps bundles): the precreate hook with `--fetch-bundles`
/// fetches them from the registry the image's name points at (registries.conf says it is plain
/// HTTP), keeps them in the repository and judges them under a policy that opts into bundles.
/// - a bundle by the trusted key over the image's manifest: admitted;
/// - a multi-arch image whose bundle names the index (what cosign signs for the tag): admitted,
///   through the manifest list podman kept with the image;
/// - a bundle by another key: refused;
/// - with the registry gone and no fetching, the kept bundles still admit.
#[test]
fn podman_pulled_images_are_judged_by_their_sigstore_bundles() {
    if !require_root() {
        return;
    }
    let setup = PulledSetup::start();
    let (fx, host) = (&setup.fx, &setup.host);
    let name = |repo: &str| setup.name(repo);
    push_image(
        fx,
        "bundled",
        "bundled",
        &format!("docker://{}", name("bundled")),
    );
    push_image(
        fx,
        "stranger",
        "stranger",
        &format!("docker://{}", name("stranger")),
    );
    push_multi_arch(fx, "multi", &format!("docker://{}", name("multi")));
    let stranger_key = fx.stranger.clone();
    for (repo, key) in [
        ("bundled", &fx.signer),
        ("multi", &fx.signer),
        ("stranger", &stranger_key),
    ] {
        let out = cfsgate(
            &[
                "sign",
                "--format",
                "bundle",
                "--tls-verify=false",
                "--key",
                key.to_str().unwrap(),
                "--identity",
                &format!("{host}/cfsgate/{repo}"),
                &format!("docker://{}", name(repo)),
            ],
            None,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let sigstore = serde_json::json!({
        "type": "sigstoreSigned",
        "keyPath": fx.path().join("signer.pub"),
        "signedIdentity": {"type": "matchRepository"},
        "cfsgate": {"bundleIdentity": "digest-only"},
    });
    let scopes: serde_json::Map<String, serde_json::Value> = ["bundled", "multi", "stranger"]
        .iter()
        .map(|n| (format!("{host}/cfsgate/{n}"), serde_json::json!([sigstore])))
        .collect();
    let policy = fx.path().join("bundle-policy.json");
    std::fs::write(
        &policy,
        serde_json::json!({"default": [{"type": "reject"}], "transports": {"docker": scopes}})
            .to_string(),
    )
    .unwrap();
    let registries_conf = fx.path().join("registries.conf");
    std::fs::write(
        &registries_conf,
        format!("[[registry]]\nlocation = \"{host}\"\ninsecure = true\n"),
    )
    .unwrap();
    let registries_conf_arg = format!("--arg=--registries-conf={}", registries_conf.display());
    let fetching = fx.install_hooks(
        &policy,
        "hooks-fetch.d",
        &["--arg=--fetch-bundles", &registries_conf_arg],
    );
    let pm = Podman::new(fx, &Podman::sigstore_attachments(host), fetching);
    for repo in ["bundled", "multi", "stranger"] {
        pm.pull(&name(repo));
    }
    let signer_id = text(
        &run(Command::new(BIN)
            .args(["key", "id"])
            .arg(fx.path().join("signer.pub")))
        .stdout,
    )
    .trim()
    .to_string();

    let out = pm.run(&name("bundled"));
    assert_ran_on_composefs(&out, "bundled", "bundle over the manifest");
    let record = last_precreate(fx);
    assert_eq!(record["verdict"], "admit", "{record}");
    assert!(
        record["signers"].to_string().contains(&signer_id),
        "{record}"
    );
    let manifest = record["manifest_digest"].as_str().unwrap();
    let kept = fx
        .repo
        .join("oci/bundles")
        .join(manifest.strip_prefix("sha256:").unwrap());
    assert_eq!(
        std::fs::read_dir(&kept).map(|d| d.count()).unwrap_or(0),
        1,
        "the fetched bundle is kept in {}",
        kept.display()
    );

    let multi = manifest_digest(&format!("docker://{}", name("multi")));
    let out = pm.run(&name("multi"));
    assert_ran_on_composefs(&out, "multi", "bundle over the index");
    let record = last_precreate(fx);
    assert_eq!(record["verdict"], "admit", "{record}");
    assert_ne!(
        record["manifest_digest"],
        multi.to_string(),
        "the platform's manifest is judged"
    );
    assert!(fx.repo.join("oci/bundles").join(multi.hex()).is_dir());

    assert_podman_refused(
        &pm.run(&name("stranger")),
        &name("stranger"),
        "sigstoreSigned",
    );

    // The registry gone, a hook that does not fetch: what was kept still admits.
    setup.stop_registry();
    let offline = fx.install_hooks(&policy, "hooks-kept.d", &[]);
    assert_ran_on_composefs(
        &pm.run_with(&offline, &name("bundled")),
        "bundled",
        "kept bundle",
    );
    assert_ran_on_composefs(
        &pm.run_with(&offline, &name("multi")),
        "multi",
        "kept index bundle",
    );
    assert_podman_refused(
        &pm.run_with(&offline, &name("stranger")),
        &name("stranger"),
        "sigstoreSigned",
    );
    assert!(
        mounts_under(&fx.run_dir).is_empty(),
        "left mounted: {:?}",
        mounts_under(&fx.run_dir)
    );
}
