//! Human renderings of a [`Decision`]: the one-line verdict of `cfsgate verify` followed by
//! its details, and the full trace of `cfsgate policy explain`.
//!
//! | line | content |
//! |---|---|
//! | 1 | `accepted: …`, `accepted (warn mode, enforce would reject): …` or `rejected: …` |
//! | then | digests, signers, verified Rekor SETs, required verity, one line per requirement |
//! | explain | every lookup step, requirement, key, signature and link, as evaluated |

use crate::evaluate::Decision;

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
