//! What a registry or token server answers, parsed: pure functions over bytes and header text,
//! called by the client ([`super::client`], [`super::fetch`], [`super::referrers`]) and fed
//! directly by the fuzz target `fuzz/fuzz_targets/registry_json.rs`.
//!
//! | input | parsed by | accepted |
//! |---|---|---|
//! | `WWW-Authenticate` | [`parse_challenge`] | `Scheme k="v", k2=v2`: a scheme, then `key=value` pairs (value quoted, or up to the next `,`), keys lowercased |
//! | a token server's JSON | [`parse_token_response`] | an object with a non-empty `token` or `access_token` string (`token` wins) |
//! | a manifest or index | [`manifest_media_type`] | JSON; its `mediaType`, else an index when it has `manifests`, else the `Content-Type` sent, else an OCI image manifest |
//! | a referrers index (API answer or `sha256-<hex>` tag) | [`parse_referrers_index`] | a JSON object whose `manifests` is an array |

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use crate::resolve::{MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST};

/// A challenge: its scheme as sent, and its parameters (keys lowercased).
pub type Challenge = (String, HashMap<String, String>);

/// `Scheme k="v", k2="v2"` → (scheme, params); `None` when it has no scheme or a parameter
/// without `=` or with an unterminated quote.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_once(',').map_or((after, ""), |(v, n)| (v, n))
        };
        params.insert(key, value.to_string());
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some((scheme.to_string(), params))
}

/// The token of a token server's answer; `Err` says why there is none.
pub fn parse_token_response(bytes: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Token {
        token: Option<String>,
        access_token: Option<String>,
    }
    let token: Token = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    token
        .token
        .or(token.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "sent no token".to_string())
}

/// The media type of a manifest or index: the one inside the JSON, else an index when it lists
/// `manifests`, else `sent` (the `Content-Type`) when not empty, else an OCI image manifest.
pub fn manifest_media_type(bytes: &[u8], sent: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    // JSON is UTF-8 (RFC 8259); serde_json checks it only in the strings it keeps, so a
    // manifest whose ignored members hold invalid bytes would pass for JSON (found by fuzzing).
    let text = std::str::from_utf8(bytes).map_err(|e| format!("invalid JSON: not UTF-8 ({e})"))?;
    let probe: Probe = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    Ok(match probe.media_type {
        Some(t) => t,
        None if probe.manifests.is_some() => MEDIA_OCI_INDEX.into(),
        None if !sent.is_empty() => sent.to_string(),
        None => MEDIA_OCI_MANIFEST.into(),
    })
}

/// A referrers index: a JSON object with a `manifests` array.
pub fn parse_referrers_index(bytes: &[u8]) -> Result<Value, String> {
    let index: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if !index["manifests"].is_array() {
        return Err("not an image index (no manifests array)".into());
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_is_json_only_when_all_of_it_is_utf8() {
        let mut bytes = br#"{"schemaVersion": 2, "x": "v"#.to_vec();
        bytes.extend([0xff, 0xfe]);
        bytes.extend(br#"", "mediaType": "application/vnd.oci.image.manifest.v1+json"}"#);
        let err = manifest_media_type(&bytes, "").unwrap_err();
        assert!(err.contains("not UTF-8"), "{err}");
        let good = br#"{"schemaVersion": 2, "x": "v", "mediaType": "application/vnd.oci.image.manifest.v1+json"}"#;
        assert_eq!(
            manifest_media_type(good, "").unwrap(),
            "application/vnd.oci.image.manifest.v1+json"
        );
    }

    #[test]
    fn parses_challenges() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        )
        .unwrap();
        assert_eq!(scheme, "Bearer");
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a/b:pull");
        let (scheme, p) = parse_challenge(r#"Basic realm="basic-realm""#).unwrap();
        assert_eq!(
            (scheme.as_str(), p["realm"].as_str()),
            ("Basic", "basic-realm")
        );
        assert!(parse_challenge("").is_none());
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
    }

    #[test]
    fn parses_tokens_and_indexes() {
        assert_eq!(parse_token_response(br#"{"token":"t"}"#).unwrap(), "t");
        assert_eq!(
            parse_token_response(br#"{"access_token":"a"}"#).unwrap(),
            "a"
        );
        assert!(parse_token_response(br#"{"token":""}"#).is_err());
        assert!(parse_token_response(b"[]").is_err());
        assert_eq!(
            manifest_media_type(br#"{"manifests":[]}"#, "").unwrap(),
            MEDIA_OCI_INDEX
        );
        assert_eq!(manifest_media_type(b"{}", "x/y").unwrap(), "x/y");
        assert!(parse_referrers_index(br#"{"manifests":{}}"#).is_err());
        assert!(parse_referrers_index(br#"{"manifests":[]}"#).is_ok());
    }
}
