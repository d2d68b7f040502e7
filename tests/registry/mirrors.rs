//! registries.conf: mirrors, insecure registries and blocked registries.

use super::*;

#[test]
fn registries_conf_mirrors_insecure_and_blocked() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let registry = Registry::start(&base.join("registry"), RegistryConfig::default());
    let host = registry.host();
    let layout = umoci_image(base, 1);
    skopeo_push(
        &format!("oci:{}:test", layout.display()),
        &format!("docker://{host}/mirror/app:v1"),
        &[],
    );
    let local = ok(
        &cfsgate(
            &["compute-id", &format!("oci:{}:test", layout.display())],
            None,
        ),
        "compute-id oci:",
    );
    // The primary location is a closed port; the mirror (plain HTTP, marked insecure) has it.
    let closed = registry::free_port();
    let conf = base.join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            r#"unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "registry.invalid/app"
location = "127.0.0.1:{closed}/app"
insecure = true
[[registry.mirror]]
location = "{host}/mirror/app"
insecure = true
[[registry]]
prefix = "registry.invalid/digests"
location = "127.0.0.1:{closed}/app"
insecure = true
[[registry.mirror]]
location = "{host}/mirror/app"
insecure = true
pull-from-mirror = "digest-only"
[[registry]]
prefix = "{host}/mirror"
blocked = true
"#
        ),
    )
    .unwrap();
    let conf_arg = conf.to_str().unwrap();
    let via_mirror = cfsgate(
        &[
            "compute-id",
            "--registries-conf",
            conf_arg,
            "docker://registry.invalid/app:v1",
        ],
        None,
    );
    assert_eq!(
        ok(&via_mirror, "compute-id via the mirror").trim(),
        local.trim()
    );
    // A digest-only mirror is not used for a tag: the closed location is, and fails.
    let tag_only = cfsgate(
        &[
            "compute-id",
            "--registries-conf",
            conf_arg,
            "docker://registry.invalid/digests:v1",
        ],
        None,
    );
    assert_eq!(tag_only.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&tag_only.stderr).contains(&format!("127.0.0.1:{closed}")));
    // By digest it is used.
    let index = read_json(&layout.join("index.json"));
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let by_digest = cfsgate(
        &[
            "compute-id",
            "--registries-conf",
            conf_arg,
            &format!("docker://registry.invalid/digests@{digest}"),
        ],
        None,
    );
    assert_eq!(
        ok(&by_digest, "compute-id by digest via the mirror").trim(),
        local.trim()
    );
    // The blocked prefix refuses the mirror's own name, for pulls and pushes alike.
    let blocked = cfsgate(
        &[
            "compute-id",
            "--tls-verify=false",
            "--registries-conf",
            conf_arg,
            &format!("docker://{host}/mirror/app:v1"),
        ],
        None,
    );
    assert_eq!(blocked.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&blocked.stderr).contains("is blocked by"),
        "{}",
        String::from_utf8_lossy(&blocked.stderr)
    );
    // A registries.conf that does not parse is an error, not an empty configuration.
    std::fs::write(&conf, "[[registry]\nblocked = true\n").unwrap();
    let broken = cfsgate(
        &[
            "compute-id",
            "--registries-conf",
            conf_arg,
            "docker://registry.invalid/app:v1",
        ],
        None,
    );
    assert_eq!(broken.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("invalid registries.conf"));
}
