//! GPG `signedBy` with the tools admins use: keys made by `gpg --quick-gen-key` in a
//! temporary GNUPGHOME (RSA 3072; ed25519 with a signing subkey; an ed25519 key that has
//! since expired; one that has since been revoked), an image signed by
//! `skopeo copy --sign-by FPR` into `dir:`, and `cfsgate verify --policy` with a `signedBy`
//! requirement: accepted with the signer's exported key (binary or armoured, alone or in a
//! keyring of several), refused with another key, another identity, an expired or a revoked
//! key; gpg itself (the reference) refuses those last two the same way. Needs gpg, skopeo and
//! umoci (scripts/setup); under CI=true the test must not skip.

#[path = "fixtures/gpg.rs"]
mod gpg;

use std::path::{Path, PathBuf};
use std::process::Command;

use gpg::{have, ok, GnupgHome};

const CFSGATE: &str = env!("CARGO_BIN_EXE_cfsgate");
const APP: &str = "registry.example/app:1";

/// A one-layer OCI layout made by umoci (tag `t`).
fn layout(work: &Path) -> PathBuf {
    let layout = work.join("layout");
    let image = format!("{}:t", layout.display());
    let file = work.join("hello");
    std::fs::write(&file, "signed by gpg\n").unwrap();
    let umoci = |args: &[&str]| ok("umoci", Command::new("umoci").args(args).output().unwrap());
    umoci(&["init", "--layout", layout.to_str().unwrap()]);
    umoci(&["new", "--image", &image]);
    umoci(&[
        "insert",
        "--rootless",
        "--image",
        &image,
        file.to_str().unwrap(),
        "/hello",
    ]);
    layout
}

/// `cfsgate verify` of `image` as `reference` under a `docker` default scope of `signedBy`
/// with `keys` (one path: `keyPath`, several: `keyPaths`): (admitted, the decision JSON).
fn verify(work: &Path, image: &Path, reference: &str, keys: &[&Path]) -> (bool, serde_json::Value) {
    let key_field = match keys {
        [one] => serde_json::json!({"keyPath": one}),
        many => serde_json::json!({"keyPaths": many}),
    };
    let mut requirement = serde_json::json!({"type": "signedBy", "keyType": "GPGKeys"});
    requirement
        .as_object_mut()
        .unwrap()
        .extend(key_field.as_object().unwrap().clone());
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {"": [requirement]}}
    });
    let path = work.join("policy.json");
    std::fs::write(&path, policy.to_string()).unwrap();
    let out = Command::new(CFSGATE)
        .args(["verify", "--json", "--policy"])
        .arg(&path)
        .args(["--reference", reference])
        .arg(format!("dir:{}", image.display()))
        .output()
        .unwrap();
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let admitted = decision["admitted"].as_bool().unwrap();
    assert_eq!(admitted, out.status.success(), "{decision:#}");
    (admitted, decision)
}

fn reasons(decision: &serde_json::Value) -> String {
    decision["reasons"].to_string()
}

#[test]
fn skopeo_sign_by_signatures_are_verified_like_gpg_does() {
    if !(have("gpg") && have("skopeo") && have("umoci")) {
        assert!(
            std::env::var_os("CI").is_none(),
            "gpg, skopeo and umoci must be installed (scripts/setup)"
        );
        eprintln!("gpg, skopeo or umoci missing: skipped");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let home = GnupgHome::new();
    let layout = layout(w);

    let rsa = home.generate(
        "cfsgate rsa <rsa@example.test>",
        "rsa3072",
        "sign",
        "0",
        None,
    );
    // ed25519: a certification-only primary key with a signing subkey (gpg signs with it).
    let ed = home.generate(
        "cfsgate ed25519 <ed@example.test>",
        "ed25519",
        "cert",
        "0",
        None,
    );
    ok(
        "gpg --quick-add-key",
        home.gpg(&["--quick-add-key", &ed, "ed25519", "sign", "0"]),
    );
    let other = home.generate(
        "cfsgate other <other@example.test>",
        "ed25519",
        "sign",
        "0",
        None,
    );
    // Made and used in 2020, valid for a day.
    let faked = "20200101T000000";
    let expired = home.generate(
        "cfsgate expired <old@example.test>",
        "ed25519",
        "sign",
        "1d",
        Some(faked),
    );
    let revoked = home.generate(
        "cfsgate revoked <rev@example.test>",
        "ed25519",
        "sign",
        "0",
        None,
    );

    let image = |name: &str| w.join(name);
    home.sign_copy(&layout, &rsa, APP, &image("by-rsa"));
    home.sign_copy(&layout, &ed, APP, &image("by-ed25519"));
    // skopeo's gpgme runs gpg, which reads gpg.conf: sign "in 2020" with the expiring key.
    std::fs::write(
        home.path().join("gpg.conf"),
        format!("faked-system-time {faked}\n"),
    )
    .unwrap();
    home.sign_copy(&layout, &expired, APP, &image("by-expired"));
    std::fs::remove_file(home.path().join("gpg.conf")).unwrap();
    home.sign_copy(&layout, &revoked, APP, &image("by-revoked"));
    // Revoke it afterwards with the certificate gpg wrote at generation (its armour line is
    // prefixed with ':' against accidental import).
    let rev = home.path().join(format!("openpgp-revocs.d/{revoked}.rev"));
    let text = std::fs::read_to_string(&rev)
        .unwrap()
        .replace(":-----BEGIN", "-----BEGIN");
    std::fs::write(&rev, text).unwrap();
    ok(
        "gpg --import revocation",
        home.gpg(&["--import", rev.to_str().unwrap()]),
    );

    let key = |name: &str| w.join(name);
    home.export(&rsa, false, &key("rsa.gpg"));
    home.export(&ed, true, &key("ed25519.asc"));
    home.export(&other, false, &key("other.gpg"));
    home.export(&expired, false, &key("expired.gpg"));
    home.export(&revoked, true, &key("revoked.asc"));
    // One armoured keyring holding two keys, as `gpg --export -a A B` writes it.
    let both = ok(
        "gpg --export",
        home.gpg(&["--export", "--armor", &other, &rsa]),
    );
    std::fs::write(key("both.asc"), both.stdout).unwrap();

    // Accepted with the signer's key, reported by primary fingerprint.
    let (admitted, d) = verify(w, &image("by-rsa"), APP, &[&key("rsa.gpg")]);
    assert!(admitted, "{d:#}");
    assert_eq!(d["openpgp_signers"], serde_json::json!([rsa]));
    let (admitted, d) = verify(w, &image("by-ed25519"), APP, &[&key("ed25519.asc")]);
    assert!(admitted, "{d:#}");
    assert_eq!(d["openpgp_signers"], serde_json::json!([ed]));
    assert!(d["explanation"].to_string().contains("GPG subkey"), "{d:#}");
    let (admitted, d) = verify(w, &image("by-rsa"), APP, &[&key("both.asc")]);
    assert!(admitted, "{d:#}");
    let (admitted, d) = verify(
        w,
        &image("by-ed25519"),
        APP,
        &[&key("other.gpg"), &key("ed25519.asc")],
    );
    assert!(admitted, "{d:#}");

    // Refused with another key.
    let (admitted, d) = verify(w, &image("by-rsa"), APP, &[&key("other.gpg")]);
    assert!(
        !admitted && reasons(&d).contains("invalid GPG signature"),
        "{d:#}"
    );
    let (admitted, d) = verify(w, &image("by-ed25519"), APP, &[&key("rsa.gpg")]);
    assert!(
        !admitted && reasons(&d).contains("invalid GPG signature"),
        "{d:#}"
    );
    // Refused as another identity (default matchRepoDigestOrExact: the tag must match too).
    for reference in ["registry.example/other:1", "registry.example/app:2"] {
        let (admitted, d) = verify(w, &image("by-rsa"), reference, &[&key("rsa.gpg")]);
        assert!(
            !admitted && reasons(&d).contains("is not accepted"),
            "{reference}: {d:#}"
        );
    }

    // Expired and revoked keys: refused, as gpg itself refuses them.
    let (admitted, d) = verify(w, &image("by-expired"), APP, &[&key("expired.gpg")]);
    assert!(!admitted && reasons(&d).contains("GPG signature"), "{d:#}");
    assert!(home
        .status(&image("by-expired").join("signature-1"))
        .contains("EXPKEYSIG"));
    let (admitted, d) = verify(w, &image("by-revoked"), APP, &[&key("revoked.asc")]);
    assert!(!admitted && reasons(&d).contains("GPG signature"), "{d:#}");
    assert!(home
        .status(&image("by-revoked").join("signature-1"))
        .contains("REVKEYSIG"));
    // The controls: gpg accepts the others.
    for name in ["by-rsa", "by-ed25519"] {
        assert!(
            home.status(&image(name).join("signature-1"))
                .contains("GOODSIG"),
            "{name}"
        );
    }
}
