//! Human renderings of a [`Decision`]: the one-line verdict of `cfsgate verify` followed by
//! its details, and the full trace of `cfsgate policy explain`.
//!
//! | line | content |
//! |---|---|
//! | 1 | `accepted: …`, `accepted (warn mode, enforce would reject): …` or `rejected: …` |
//! | then | digests, signers, verified Rekor SETs, required verity, one line per requirement |
//! | explain | every lookup step, requirement, key, signature and link, as evaluated |
//!
//! [`explain_image`]: the evaluation `cfsgate policy explain` shows; [`explanation_json`]: the
//! decision as its `--json` prints it.

use std::path::Path;

use cfsgate_policy::Policy;

use crate::evaluate::{evaluate, unix_now, Decision, EvaluationRequest};
use crate::loaded::EvalError;

/// How `cfsgate policy explain` judges `image` under `policy`, as `reference` if given: at the
/// current time, without registry bundles, nothing built or stored (`repo`: a composefs
/// repository that may hold the sealed image).
pub fn explain_image(
    policy: &Policy,
    image: &str,
    reference: Option<&str>,
    repo: Option<&Path>,
) -> Result<Decision, EvalError> {
    evaluate(&EvaluationRequest {
        image,
        reference,
        policy,
        repo,
        now: unix_now(),
        bundles: &[],
        store_root: false,
        built_key: None,
    })
}

/// The schema of `cfsgate policy explain --json` (docs/json.md).
pub const EXPLAIN_SCHEMA: &str = "cfsgate.policy.explain/v1";

/// `decision` as a pretty-printed JSON object whose `schema` member is [`EXPLAIN_SCHEMA`].
pub fn explanation_json(decision: &Decision) -> Result<String, serde_json::Error> {
    with_schema(decision, EXPLAIN_SCHEMA)
}

/// The schema of `cfsgate verify --json` (docs/json.md).
pub const VERIFY_SCHEMA: &str = "cfsgate.verify/v1";

/// `decision` as `cfsgate verify --json` prints it: [`explanation_json`]'s object with the
/// `schema` [`VERIFY_SCHEMA`].
pub fn verification_json(decision: &Decision) -> Result<String, serde_json::Error> {
    with_schema(decision, VERIFY_SCHEMA)
}

/// `value` (serialised to a JSON object) pretty-printed with a `schema` member added.
fn with_schema(value: &impl serde::Serialize, schema: &str) -> Result<String, serde_json::Error> {
    let mut doc = serde_json::to_value(value)?;
    if let Some(map) = doc.as_object_mut() {
        map.insert("schema".into(), schema.into());
    }
    serde_json::to_string_pretty(&doc)
}

/// The first line: the verdict and why.
pub fn verdict_line(decision: &Decision) -> String {
    let reasons = decision.reasons.join("; ");
    match (decision.admitted, decision.would_reject) {
        (true, false) => {
            let mut why = format!("accepted by {}", decision.scope);
            if !decision.signers.is_empty() {
                why.push_str(&format!(
                    ", signed by {}",
                    decision
                        .signers
                        .iter()
                        .map(|k| k.short())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if let Some(digest) = &decision.composefs_digest {
                why.push_str(&format!(", composefs image {digest}"));
            }
            format!("accepted: {why}")
        }
        (true, true) => format!("accepted (warn mode; enforce would reject): {reasons}"),
        _ => format!("rejected: {reasons}"),
    }
}

/// `cfsgate verify`'s human output: the verdict line, then the details.
pub fn render_verdict(decision: &Decision) -> String {
    let mut out = verdict_line(decision);
    out.push('\n');
    out.push_str(&format!(
        "  scope: {} (mode {})\n",
        decision.scope, decision.mode
    ));
    if let Some(d) = &decision.manifest_digest {
        out.push_str(&format!("  manifest: {d}\n"));
    }
    if let Some(d) = &decision.config_digest {
        out.push_str(&format!("  config: {d}\n"));
    }
    if let Some(d) = &decision.composefs_digest {
        out.push_str(&format!("  composefs image: {d}\n"));
    }
    for entry in &decision.rekor {
        out.push_str(&format!("  rekor: SET verified ({entry})\n"));
    }
    if let Some(v) = &decision.required_verity {
        out.push_str(&format!("  required verity: {v}\n"));
    }
    for requirement in &decision.requirements {
        out.push_str(&format!("  {requirement}\n"));
    }
    out
}

/// `cfsgate policy explain`'s output: the verdict line, then every step.
pub fn render_explanation(decision: &Decision) -> String {
    let mut out = verdict_line(decision);
    out.push('\n');
    for line in &decision.explanation {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_that_cannot_be_read_is_an_error_naming_it() {
        let policy = cfsgate_policy::parse_policy(br#"{"default": [{"type": "reject"}]}"#)
            .expect("a policy");
        let error = explain_image(&policy, "dir:/nonexistent/image", None, None)
            .expect_err("no image to judge");
        assert!(matches!(error, EvalError::Image(_)), "{error:?}");
        assert!(error.to_string().contains("/nonexistent/image"), "{error}");
    }

    #[test]
    fn the_json_document_carries_its_schema_beside_the_members() {
        let value = serde_json::json!({ "admitted": false, "scope": "default" });
        let text = with_schema(&value, EXPLAIN_SCHEMA).expect("serialisable");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(doc["schema"], EXPLAIN_SCHEMA);
        assert_eq!(doc["admitted"], false);
        assert_eq!(doc["scope"], "default");
        assert!(text.contains('\n'), "pretty-printed: {text}");
    }
}
