//! Generated policies of a chosen size, for benchmarks and scaling tests: `scopes` docker
//! scopes `registry.example/team-N/app` (every third one with a `composefs` requirement and
//! every fifth in warn mode), each a `sigstoreSigned` requirement over a rotating subset of
//! `keys` with a 2-of-3 threshold when at least three keys are given.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::serialize::quote;

/// Policy JSON with `scopes` docker scopes whose requirements use the key files `keys`.
pub fn synthetic_policy_json(scopes: usize, keys: &[PathBuf]) -> String {
    let mut out = String::from(
        "{\n  \"default\": [{\"type\": \"reject\"}],\n  \"transports\": {\n    \"docker\": {\n",
    );
    for i in 0..scopes {
        let mut requirement = String::from("{\"type\": \"sigstoreSigned\"");
        if !keys.is_empty() {
            let chosen: Vec<String> = (0..keys.len().min(3))
                .map(|k| quote(&keys[(i + k) % keys.len()].to_string_lossy()))
                .collect();
            let _ = write!(requirement, ", \"keyPaths\": [{}]", chosen.join(", "));
            if chosen.len() >= 3 {
                requirement.push_str(", \"cfsgate\": {\"threshold\": 2}");
            }
        }
        requirement.push_str(", \"signedIdentity\": {\"type\": \"matchRepository\"}}");
        if i % 3 == 0 {
            requirement.push_str(
                ", {\"type\": \"composefs\", \"sealed\": true, \"verity\": \"userspace\"}",
            );
        }
        let comma = if i + 1 < scopes { "," } else { "" };
        let _ = writeln!(
            out,
            "      \"registry.example/team-{i}/app\": [{requirement}]{comma}"
        );
    }
    out.push_str("    }\n  },\n  \"cfsgate\": {\"modes\": {\"transports\": {\"docker\": {");
    let warn: Vec<String> = (0..scopes)
        .filter(|i| i % 5 == 0)
        .map(|i| format!("\"registry.example/team-{i}/app\": \"warn\""))
        .collect();
    out.push_str(&warn.join(", "));
    out.push_str("}}}}\n}\n");
    out
}
