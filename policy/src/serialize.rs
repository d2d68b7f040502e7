//! Writes a [`Policy`] back as policy JSON that [`crate::parse_policy`] reads to the same
//! model (used by `cfsgate policy` tooling and the round-trip tests). Output is indented
//! with 4 spaces, fields in a fixed order, the `cfsgate` extension only where it is used.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::identity::SignedIdentity;
use crate::model::*;

/// JSON text of `policy`.
pub fn to_json(policy: &Policy) -> String {
    let mut out = String::new();
    out.push_str("{\n    \"default\": ");
    requirements(&mut out, &policy.default.requirements, 1);
    if !policy.transports.is_empty() {
        out.push_str(",\n    \"transports\": {");
        for (i, transport) in policy.transports.iter().enumerate() {
            sep(&mut out, i, 2);
            let _ = write!(out, "{}: {{", quote(&transport.name));
            for (j, scope) in transport.scopes.iter().enumerate() {
                sep(&mut out, j, 3);
                let _ = write!(out, "{}: ", quote(&scope.name));
                requirements(&mut out, &scope.requirements, 3);
            }
            close(&mut out, transport.scopes.is_empty(), 2, '}');
        }
        close(&mut out, false, 1, '}');
    }
    let mut modes = Vec::new();
    for transport in &policy.transports {
        let set: Vec<&Scope> = transport
            .scopes
            .iter()
            .filter(|s| s.mode_location.is_some())
            .collect();
        if !set.is_empty() {
            modes.push((transport.name.as_str(), set));
        }
    }
    if policy.extension_location.is_some()
        || policy.default.mode_location.is_some()
        || !modes.is_empty()
    {
        out.push_str(",\n    \"cfsgate\": {");
        let has_modes = policy.default.mode_location.is_some() || !modes.is_empty();
        if has_modes {
            out.push_str("\n        \"modes\": {");
            let mut n = 0;
            if policy.default.mode_location.is_some() {
                sep(&mut out, n, 3);
                let _ = write!(out, "\"default\": {}", quote(policy.default.mode.as_str()));
                n += 1;
            }
            if !modes.is_empty() {
                sep(&mut out, n, 3);
                out.push_str("\"transports\": {");
                for (i, (name, scopes)) in modes.iter().enumerate() {
                    sep(&mut out, i, 4);
                    let _ = write!(out, "{}: {{", quote(name));
                    for (j, scope) in scopes.iter().enumerate() {
                        sep(&mut out, j, 5);
                        let _ = write!(
                            out,
                            "{}: {}",
                            quote(&scope.name),
                            quote(scope.mode.as_str())
                        );
                    }
                    close(&mut out, false, 4, '}');
                }
                close(&mut out, false, 3, '}');
            }
            close(&mut out, false, 2, '}');
        }
        close(&mut out, !has_modes, 1, '}');
    }
    out.push_str("\n}\n");
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("    ");
    }
}

/// Comma (after the first item) and newline + indentation before an item.
fn sep(out: &mut String, index: usize, level: usize) {
    if index > 0 {
        out.push(',');
    }
    out.push('\n');
    indent(out, level);
}

fn close(out: &mut String, empty: bool, level: usize, bracket: char) {
    if !empty {
        out.push('\n');
        indent(out, level);
    }
    out.push(bracket);
}

/// Appends `text` as a JSON string literal, escaped as RFC 8785 (canonical JSON) requires: `"` and `\` escaped, the five control characters
/// with short forms as `\b \t \n \f \r`, other controls as `\u00xx` (lowercase hex),
/// everything else as its UTF-8 bytes. The workspace's one JSON string escaper: policy
/// serialization and the Rekor SET's canonical body (verifier) both write strings with it.
pub fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON string literal.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_json_string(&mut out, text);
    out
}

fn b64(data: &[u8]) -> String {
    quote(&base64::engine::general_purpose::STANDARD.encode(data))
}

fn requirements(out: &mut String, list: &[Requirement], level: usize) {
    out.push('[');
    for (i, requirement) in list.iter().enumerate() {
        sep(out, i, level + 1);
        out.push('{');
        let mut fields: Vec<(String, String)> =
            vec![("type".into(), quote(requirement.type_name()))];
        requirement_fields(&mut fields, requirement, level + 2);
        for (j, (key, value)) in fields.iter().enumerate() {
            sep(out, j, level + 2);
            let _ = write!(out, "{}: {}", quote(key), value);
        }
        close(out, false, level + 1, '}');
    }
    close(out, list.is_empty(), level, ']');
}

fn string_array<I: IntoIterator<Item = String>>(items: I) -> String {
    let items: Vec<String> = items.into_iter().collect();
    format!("[{}]", items.join(", "))
}

fn key_list_fields(fields: &mut Vec<(String, String)>, list: &KeyList, prefix: &str) {
    let name = |suffix: &str| {
        if prefix.is_empty() {
            let mut s = suffix.to_string();
            s.replace_range(0..1, &suffix[..1].to_lowercase());
            s
        } else {
            format!("{prefix}{suffix}")
        }
    };
    match list {
        KeyList::Path(file) => fields.push((name("KeyPath"), quote(&file.path.to_string_lossy()))),
        KeyList::Paths(files) => fields.push((
            name("KeyPaths"),
            string_array(files.iter().map(|f| quote(&f.path.to_string_lossy()))),
        )),
        KeyList::Data(data) => fields.push((name("KeyData"), b64(data))),
        KeyList::Datas(datas) => {
            fields.push((name("KeyDatas"), string_array(datas.iter().map(|d| b64(d)))))
        }
    }
}

fn identity_json(identity: &SignedIdentity) -> String {
    let mut parts = vec![format!("\"type\": {}", quote(identity.type_name()))];
    match identity {
        SignedIdentity::ExactReference(r) => {
            parts.push(format!("\"dockerReference\": {}", quote(r)))
        }
        SignedIdentity::ExactRepository(r) => {
            parts.push(format!("\"dockerRepository\": {}", quote(r)))
        }
        SignedIdentity::RemapIdentity {
            prefix,
            signed_prefix,
        } => {
            parts.push(format!("\"prefix\": {}", quote(prefix)));
            parts.push(format!("\"signedPrefix\": {}", quote(signed_prefix)));
        }
        _ => {}
    }
    format!("{{{}}}", parts.join(", "))
}

fn cert_fields(parts: &mut Vec<String>, source: &CertSource, path: &str, data: &str) {
    match source {
        CertSource::Path(file) => parts.push(format!(
            "{}: {}",
            quote(path),
            quote(&file.path.to_string_lossy())
        )),
        CertSource::Data(bytes) => parts.push(format!("{}: {}", quote(data), b64(bytes))),
    }
}

fn material_fields(parts: &mut Vec<String>, material: &KeyMaterial) {
    match material {
        KeyMaterial::File(path) => {
            parts.push(format!("\"keyPath\": {}", quote(&path.to_string_lossy())))
        }
        KeyMaterial::Data(data) => parts.push(format!("\"keyData\": {}", b64(data))),
        KeyMaterial::Keyring { keyring, selector } => {
            parts.push(format!("\"keyring\": {}", quote(keyring)));
            match selector {
                KeyringSelector::All => {}
                KeyringSelector::Description(d) => {
                    parts.push(format!("\"description\": {}", quote(d)))
                }
                KeyringSelector::Serial(s) => parts.push(format!("\"serial\": {s}")),
            }
        }
    }
}

fn requirement_fields(fields: &mut Vec<(String, String)>, requirement: &Requirement, level: usize) {
    match requirement {
        Requirement::InsecureAcceptAnything | Requirement::Reject => {}
        Requirement::SignedBy(s) => {
            fields.push(("keyType".into(), quote(s.key_type.as_str())));
            key_list_fields(fields, &s.keys, "");
            fields.push(("signedIdentity".into(), identity_json(&s.signed_identity)));
        }
        Requirement::SignedBaseLayer {
            base_layer_identity,
        } => {
            fields.push((
                "baseLayerIdentity".into(),
                identity_json(base_layer_identity),
            ));
        }
        Requirement::SigstoreSigned(s) => {
            let mut extension_keys: &[TrustedKey] = &[];
            match &s.trust_root {
                TrustRoot::PublicKeys {
                    standard,
                    extension,
                } => {
                    if let Some(list) = standard {
                        key_list_fields(fields, list, "");
                    }
                    extension_keys = extension;
                }
                TrustRoot::Fulcio(f) => {
                    let mut parts = Vec::new();
                    cert_fields(&mut parts, &f.ca, "caPath", "caData");
                    parts.push(format!("\"oidcIssuer\": {}", quote(&f.oidc_issuer)));
                    parts.push(format!("\"subjectEmail\": {}", quote(&f.subject_email)));
                    fields.push(("fulcio".into(), format!("{{{}}}", parts.join(", "))));
                }
                TrustRoot::Pki(p) => {
                    let mut parts = Vec::new();
                    cert_fields(&mut parts, &p.ca_roots, "caRootsPath", "caRootsData");
                    if let Some(i) = &p.ca_intermediates {
                        cert_fields(&mut parts, i, "caIntermediatesPath", "caIntermediatesData");
                    }
                    if let Some(e) = &p.subject_email {
                        parts.push(format!("\"subjectEmail\": {}", quote(e)));
                    }
                    if let Some(h) = &p.subject_hostname {
                        parts.push(format!("\"subjectHostname\": {}", quote(h)));
                    }
                    fields.push(("pki".into(), format!("{{{}}}", parts.join(", "))));
                }
            }
            if let Some(rekor) = &s.rekor_public_keys {
                key_list_fields(fields, rekor, "rekorPublic");
            }
            fields.push(("signedIdentity".into(), identity_json(&s.signed_identity)));
            if let Some(ext) = &s.extension {
                let mut parts = Vec::new();
                if ext.threshold_explicit {
                    parts.push(format!("\"threshold\": {}", ext.threshold));
                }
                if ext.bundle_digest_only {
                    parts.push("\"bundleIdentity\": \"digest-only\"".to_string());
                }
                if !extension_keys.is_empty() {
                    let mut keys = String::from("[");
                    for (i, key) in extension_keys.iter().enumerate() {
                        sep(&mut keys, i, level + 2);
                        let mut kp = Vec::new();
                        material_fields(&mut kp, &key.material);
                        if let Some(t) = key.window.not_before {
                            kp.push(format!("\"notBefore\": {}", quote(&t.to_string())));
                        }
                        if let Some(t) = key.window.not_after {
                            kp.push(format!("\"notAfter\": {}", quote(&t.to_string())));
                        }
                        let _ = write!(keys, "{{{}}}", kp.join(", "));
                    }
                    close(&mut keys, false, level + 1, ']');
                    parts.push(format!("\"keys\": {keys}"));
                }
                fields.push(("cfsgate".into(), format!("{{{}}}", parts.join(", "))));
            }
        }
        Requirement::Composefs(c) => {
            fields.push(("sealed".into(), c.sealed.to_string()));
            if let Some(v) = c.verity {
                fields.push(("verity".into(), quote(v.as_str())));
            }
        }
    }
}
