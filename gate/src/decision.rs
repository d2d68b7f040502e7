//! The admission decision: one call into the verifier's policy evaluation
//! (`cfsgate_verifier::evaluate`), mapped to what the hooks and the audit record need. Never
//! fails: an error (an unreadable policy, an image that cannot be read) is a denial whose reason
//! says what went wrong.

use std::path::Path;

use cfsgate_image::{ContentSha256, FsVeritySha256};
use cfsgate_mounter::VerityMode;
use cfsgate_policy::{Mode, Timestamp};

use crate::error::reason_of;
use crate::GateConfig;

/// What the policy said about one image, with everything the audit record needs.
#[derive(Debug, Clone, Default)]
pub struct GateDecision {
    /// May the container start.
    pub admitted: bool,
    /// The matched scope's mode; [`Mode::Enforce`] for a decision made without a policy (an
    /// error, a timeout).
    pub mode: Mode,
    /// Some requirement failed (in warn mode the image is admitted anyway).
    pub would_reject: bool,
    /// Which scope applied, in words.
    pub scope: Option<String>,
    /// Each requirement and its result, in words.
    pub requirements: Vec<String>,
    /// The image's manifest digest (sha256).
    pub manifest_digest: Option<ContentSha256>,
    /// The trusted composefs image digest (fs-verity), when the seal was verified.
    pub composefs_digest: Option<FsVeritySha256>,
    /// The verity mode a `composefs` requirement demands.
    pub required_verity: Option<VerityMode>,
    /// The keys whose signatures passed.
    pub signers: Vec<String>,
    /// Why, in words (at least one line).
    pub reasons: Vec<String>,
}

impl GateDecision {
    /// An enforced denial for `reason`.
    pub fn denied(reason: String) -> Self {
        GateDecision {
            admitted: false,
            mode: Mode::Enforce,
            reasons: vec![reason],
            ..GateDecision::default()
        }
    }
}

/// Evaluate `image` (as `reference`) under the policy file of `config`.
pub fn decide(config: &GateConfig, image: &str, reference: Option<&str>) -> GateDecision {
    let policy = match cfsgate_policy::load_policy_file(&config.policy) {
        Ok(p) => p,
        Err(e) => return GateDecision::denied(format!("policy unusable: {e}")),
    };
    let built_key = config.run_dir.join(cfsgate_verifier::built::KEY_FILE_NAME);
    let found = crate::sigbundles::image_bundles(config, image, reference);
    let mut decision = evaluate_image(
        &policy,
        image,
        reference,
        &config.repo,
        &built_key,
        &found.bundles,
    )
    .unwrap_or_else(GateDecision::denied);
    if !decision.admitted {
        decision.reasons.extend(found.problems);
    }
    decision
}

/// The one call into the policy evaluation; `Err` is the reason of a denial. `built_key`: the
/// gate's key file for its records of images built from unsealed images (in the run dir, on
/// tmpfs: `cfsgate_verifier::built`); `bundles`: the image's sigstore bundles
/// ([`crate::sigbundles`]).
pub fn evaluate_image(
    policy: &cfsgate_policy::Policy,
    image: &str,
    reference: Option<&str>,
    repo: &Path,
    built_key: &Path,
    bundles: &[Vec<u8>],
) -> Result<GateDecision, String> {
    let decision = cfsgate_verifier::evaluate(&cfsgate_verifier::EvaluationRequest {
        image,
        reference,
        policy,
        repo: Some(repo),
        now: Timestamp::now().0,
        bundles,
        store_root: true,
        built_key: Some(built_key),
    })
    .map_err(|e| reason_of(&e))?;
    let reasons = if decision.reasons.is_empty() {
        vec!["every requirement is satisfied".to_string()]
    } else {
        decision.reasons.clone()
    };
    Ok(GateDecision {
        admitted: decision.admitted,
        mode: decision.mode,
        would_reject: decision.would_reject,
        scope: Some(decision.scope.clone()),
        requirements: decision.requirements.clone(),
        manifest_digest: decision.manifest_digest,
        composefs_digest: decision.composefs_digest,
        required_verity: decision.required_verity,
        signers: decision.signers.iter().map(|k| k.to_string()).collect(),
        reasons,
    })
}
