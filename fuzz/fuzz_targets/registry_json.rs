//! Fuzz what a registry and its token server answer (`cfsgate_oci::registry::wire` and the
//! parsers behind it): the input's first byte picks what the rest is.
//!
//! | first byte % 4 | the rest is | fed to | property beyond "no panic" |
//! |---|---|---|---|
//! | 0 | a `WWW-Authenticate` header (lossy UTF-8) | `parse_challenge` | an accepted challenge with an alphanumeric scheme and token-character keys, written back as `Scheme k="v", …`, parses to the same scheme and parameters (when no value holds a `"`) |
//! | 1 | a token server's JSON | `parse_token_response` | an accepted token is not empty |
//! | 2 | a manifest or index (`Content-Type` empty) | `manifest_media_type`, then as the fetch does: an index parsed as `ImageIndex` and a child picked for linux/amd64 and linux/arm64 (its digest parsed), else `ImageManifest` with its config's and layers' digests parsed | a media type is only returned for UTF-8 bytes that parse as JSON |
//! | 3 | a referrers index | `parse_referrers_index`, then each listed descriptor's `digest` parsed | an accepted index has a `manifests` array |
#![no_main]

use cfsgate_oci::registry::wire::{
    manifest_media_type, parse_challenge, parse_referrers_index, parse_token_response,
};
use cfsgate_oci::resolve::{descriptor_digest, select_child};
use cfsgate_oci::{BlobDigest, Platform};
use libfuzzer_sys::fuzz_target;
use oci_spec::image::{ImageIndex, ImageManifest};

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

fn is_token_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => {
            let header = String::from_utf8_lossy(rest);
            let Some((scheme, params)) = parse_challenge(&header) else {
                return;
            };
            assert!(!scheme.is_empty());
            let plain = scheme.bytes().all(|b| b.is_ascii_alphanumeric())
                && params
                    .iter()
                    .all(|(k, v)| is_token_key(k) && !v.contains('"'));
            if plain {
                let mut keys: Vec<&String> = params.keys().collect();
                keys.sort();
                let written: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{k}=\"{}\"", params[*k]))
                    .collect();
                let again = parse_challenge(&format!("{scheme} {}", written.join(", ")))
                    .expect("a written challenge parses");
                assert_eq!(again.0, scheme);
                assert_eq!(again.1, params);
            }
        }
        1 => {
            if let Ok(token) = parse_token_response(rest) {
                assert!(!token.is_empty());
            }
        }
        2 => {
            let Ok(media_type) = manifest_media_type(rest, "") else {
                return;
            };
            // JSON syntax in UTF-8 (a `Value` would also refuse numbers out of f64's range,
            // which are JSON and which serde ignores in members it skips).
            assert!(std::str::from_utf8(rest).is_ok());
            assert!(serde_json::from_slice::<serde::de::IgnoredAny>(rest).is_ok());
            if INDEX_TYPES.contains(&media_type.as_str()) {
                let Ok(index) = serde_json::from_slice::<ImageIndex>(rest) else {
                    return;
                };
                for arch in ["amd64", "arm64"] {
                    if let Some(child) = select_child(&index, &Platform::new("linux", arch, None))
                    {
                        let _ = descriptor_digest(child);
                    }
                }
            } else if let Ok(manifest) = serde_json::from_slice::<ImageManifest>(rest) {
                let _ = descriptor_digest(manifest.config());
                for layer in manifest.layers() {
                    let _ = descriptor_digest(layer);
                }
            }
        }
        _ => {
            let Ok(index) = parse_referrers_index(rest) else {
                return;
            };
            let listed = index["manifests"].as_array().expect("a manifests array");
            for descriptor in listed {
                if let Some(digest) = descriptor.get("digest").and_then(|d| d.as_str()) {
                    let _ = BlobDigest::parse(digest);
                }
            }
        }
    }
});
