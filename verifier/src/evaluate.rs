//! Policy evaluation: an image, a [`Policy`] and the time → a [`Decision`] with every reason.
//!
//! containers/image semantics: the most specific scope applies, and **all** its requirements
//! must pass. Per requirement:
//!
//! | requirement | passes when |
//! |---|---|
//! | `insecureAcceptAnything` | always (the image is not even read) |
//! | `reject` | never |
//! | `signedBy` (`keyType: GPGKeys`) | one GPG simple-signing signature passes every check of [`crate::signedby`] (a key or subkey of the keyring valid now, strict payload, manifest digest, `signedIdentity`) |
//! | `signedBy` with another `keyType`, `signedBaseLayer` | never: "not supported" |
//! | `sigstoreSigned` with `fulcio`/`pki` | a signature's certificate passes [`crate::keyless`] (for `fulcio` with a Rekor SET), then payload, digest and identity as below |
//! | `sigstoreSigned` | signatures by at least `threshold` (default 1) **distinct** trusted keys pass every link of [`crate::chain::judge`]; a key counts once however many signatures it made; a key with a validity window counts only for signatures made inside it |
//! | `sigstoreSigned` with `rekorPublicKey*` | as above, and a signature counts only when its Rekor bundle verifies offline with one of the Rekor keys (any one) and logs that signature, key and payload ([`crate::rekor`]); the SET's `integratedTime` is then the time validity windows are judged at (without Rekor keys: `now`) |
//! | `composefs` | with `sealed`: the image's seal checks ([`crate::root`]), giving the trusted composefs digest; `verity` is reported as [`Decision::required_verity`] |
//!
//! Whatever the requirements ([`crate::root`]): `io.cfsgate.*` manifest annotations reject,
//! even in warn mode; an admitted image's seal, when present, must match.
//!
//! Mode: in `enforce` a failing requirement rejects; in `warn` the image is admitted with
//! `would_reject = true` and the reasons recorded. An `Err` means the request could not be
//! evaluated at all (bad image name or reference, unreadable image): callers fail closed.

use std::path::{Path, PathBuf};

use cfsgate_image::{ContentSha256, FsVeritySha256};
use cfsgate_keyring::{KeyId, PublicKey};
use cfsgate_policy::ReferenceDigest;
use cfsgate_policy::{
    ComposefsRequirement, DockerReference, ImageRef, Location, Mode, Policy, Requirement,
    SigstoreSigned, StepRole, Timestamp, VerityMode,
};
use serde::Serialize;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::chain::{
    config_digest_of, describe_window, judge, load_canonical_image, load_image, parse_image_name,
    why_unsigned, JudgeContext, KeyHandle, LoadedKey, SignatureJudgement,
};
use crate::loaded::{EvalError, ImageError, ImageTransport, LoadedImage};
use crate::root::{hostile_reason, root_outcome, RootRequest};
use crate::verify::{describe_outcome, IdentityRequirement, SignatureOutcome};

/// What to evaluate.
#[derive(Debug, Clone, Copy)]
pub struct EvaluationRequest<'a> {
    /// `dir:PATH`, `oci:PATH[:TAG]` or `oci:PATH@sha256:HEX`.
    pub image: &'a str,
    /// The docker reference the image is used as (`--reference`): the `docker` scopes then
    /// apply, and signatures must claim an identity acceptable for it.
    pub reference: Option<&'a str>,
    /// The policy to evaluate the image against.
    pub policy: &'a Policy,
    /// A composefs repository whose `images/<digest>` may hold the sealed image.
    pub repo: Option<&'a Path>,
    /// The current time, unix seconds (validity windows).
    pub now: i64,
    /// Sigstore bundles found for the image (the referrers of a registry image): they count
    /// for a `sigstoreSigned` requirement only with `cfsgate.bundleIdentity: "digest-only"`.
    pub bundles: &'a [Vec<u8>],
    /// Build the composefs image of an admitted image into `repo` when it is not there (the
    /// runtime gate): an admitted decision then names the image to mount ([`crate::root`]).
    pub store_root: bool,
    /// With `store_root`: the key file of the gate's records of images it built from unsealed
    /// images' verified layers ([`crate::built`]); `None`: no records, every start builds.
    pub built_key: Option<&'a Path>,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// May the image run.
    pub admitted: bool,
    /// The matched scope's mode (`"enforce"` or `"warn"` in JSON).
    #[serde(serialize_with = "mode_name")]
    pub mode: Mode,
    /// Some requirement failed (in warn mode the image is admitted anyway).
    pub would_reject: bool,
    /// The transport whose scopes applied (`docker` with `--reference`).
    pub transport: String,
    /// Which scope applied, in words.
    pub scope: String,
    /// Each requirement and its result, in words.
    pub requirements: Vec<String>,
    /// sha256 of the image manifest, when it could be read.
    #[serde(serialize_with = "opt_sha256")]
    pub manifest_digest: Option<ContentSha256>,
    /// sha256 of the image config, when the seal check got that far.
    #[serde(serialize_with = "opt_sha256")]
    pub config_digest: Option<ContentSha256>,
    /// The trusted composefs image digest (fs-verity, hex), when the seal was verified.
    #[serde(serialize_with = "opt_hex")]
    pub composefs_digest: Option<FsVeritySha256>,
    /// The verity mode a `composefs` requirement demands (`"kernel"` or `"userspace"` in JSON).
    pub required_verity: Option<VerityMode>,
    /// Distinct keys whose signatures passed.
    pub signers: Vec<KeyId>,
    /// Primary fingerprints (uppercase hex) of the OpenPGP keys whose `signedBy`
    /// signature passed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub openpgp_signers: Vec<String>,
    /// The verified Rekor SETs of the signatures that counted (requirements with
    /// `rekorPublicKey*` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rekor: Vec<crate::rekor::RekorEntry>,
    /// Why it would be rejected (empty when every requirement passed).
    pub reasons: Vec<String>,
    /// Every step: the lookup, each requirement, each signature, each key.
    pub explanation: Vec<String>,
    /// Each signature's outcome, typed, as `explanation` words it: for every `sigstoreSigned`
    /// requirement judged, its image's signatures in storage order (not in the JSON).
    #[serde(skip)]
    pub signature_outcomes: Vec<SignatureOutcome>,
}

fn mode_name<S: serde::Serializer>(mode: &Mode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(mode.as_str())
}

fn opt_sha256<S: serde::Serializer>(d: &Option<ContentSha256>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.to_string()),
        None => s.serialize_none(),
    }
}

fn opt_hex<S: serde::Serializer>(d: &Option<FsVeritySha256>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.to_hex()),
        None => s.serialize_none(),
    }
}

/// Evaluates `req`; see the module docs.
pub fn evaluate(req: &EvaluationRequest) -> Result<Decision, EvalError> {
    let (image_ref, canonical) = policy_image_ref(req)?;
    let matched = req.policy.requirements_for(&image_ref);
    let mut ev = Evaluation {
        req,
        image: None,
        canonical,
        explanation: Vec::new(),
        signature_outcomes: Vec::new(),
        signers: Vec::new(),
        openpgp_signers: Vec::new(),
        rekor: Vec::new(),
        composefs_digest: None,
        config_digest: None,
        required_verity: None,
    };
    ev.line(match req.reference {
        Some(reference) => format!(
            "image {} used as docker reference {reference} ({})",
            req.image,
            image_ref.identity()
        ),
        None => format!("image {} (transport {})", req.image, image_ref.transport()),
    });
    if let Some(pinned) = image_ref
        .docker_reference()
        .and_then(DockerReference::digest)
    {
        ev.check_pinned_digest(pinned)?;
    }
    let steps: Vec<String> = matched
        .tried
        .iter()
        .map(|step| {
            let key = match step.role {
                StepRole::GlobalDefault => "default".to_string(),
                StepRole::TransportDefault => "\"\" (transport default)".to_string(),
                _ => format!("{:?}", step.key),
            };
            format!("{key}{}", if step.matched { " ✓" } else { " ✗" })
        })
        .collect();
    ev.line(format!(
        "scope lookup in transport {:?}: {}",
        matched.image_transport,
        steps.join(", ")
    ));
    let mode = matched.mode();
    ev.line(format!(
        "scope applied: {} (mode {})",
        matched.describe(),
        mode.as_str()
    ));
    let identity = IdentityRequirement {
        rule: Default::default(),
        image_reference: image_ref.docker_reference().cloned(),
    };
    let mut requirements = Vec::new();
    let mut reasons = Vec::new();
    let locations = matched.requirement_locations();
    for (i, requirement) in matched.requirements().iter().enumerate() {
        let location = locations.get(i).copied().unwrap_or_default();
        ev.line(format!(
            "requirement {} ({}, line {}):",
            i + 1,
            requirement.type_name(),
            location.line
        ));
        let result = ev.requirement(requirement, location, &identity)?;
        match &result {
            Ok(summary) => {
                ev.line(format!("  → passed: {summary}"));
                requirements.push(format!("{}: passed ({summary})", requirement.type_name()));
            }
            Err(reason) => {
                ev.line(format!("  → failed: {reason}"));
                requirements.push(format!("{}: failed ({reason})", requirement.type_name()));
                reasons.push(format!("{}: {reason}", requirement.type_name()));
            }
        }
    }
    // The gate reads every image it may start (even under insecureAcceptAnything): its
    // manifest is checked below and its root built from it.
    if req.store_root {
        ev.image()?;
    }
    let hostile = ev
        .image
        .as_ref()
        .and_then(|i| hostile_reason(&i.manifest_bytes));
    if let Some(reason) = &hostile {
        ev.line(format!("manifest annotations: {reason}"));
        reasons.push(reason.clone());
    }
    let mut would_reject = !reasons.is_empty();
    let mut admitted = hostile.is_none() && (!would_reject || mode == Mode::Warn);
    // A seal, when present, must match, whatever the requirements; the gate needs the root.
    if admitted && ev.composefs_digest.is_none() && ev.image.is_some() {
        ev.line("composefs root:".into());
        match ev.root(false)? {
            Ok(summary) => {
                ev.line(format!("  → {summary}"));
                if ev.composefs_digest.is_some() {
                    requirements.push(format!("composefs root: {summary}"));
                }
            }
            Err(reason) => {
                ev.line(format!("  → failed: {reason}"));
                requirements.push(format!("composefs root: failed ({reason})"));
                reasons.push(format!("composefs root: {reason}"));
                would_reject = true;
                admitted = mode == Mode::Warn;
            }
        }
    }
    ev.line(match (admitted, would_reject) {
        (true, false) => "decision: admitted (every requirement passed)".to_string(),
        (true, true) => "decision: admitted in warn mode; enforce mode would reject".to_string(),
        _ => "decision: rejected".to_string(),
    });
    let manifest_digest = ev.image.as_ref().map(|i| i.manifest_digest);
    if ev.config_digest.is_none() {
        ev.config_digest = ev.image.as_ref().and_then(config_digest_of);
    }
    Ok(Decision {
        admitted,
        mode,
        would_reject,
        transport: matched.image_transport.clone(),
        scope: matched.describe(),
        requirements,
        manifest_digest,
        config_digest: ev.config_digest,
        composefs_digest: ev.composefs_digest,
        required_verity: ev.required_verity,
        signers: ev.signers,
        openpgp_signers: ev.openpgp_signers,
        rekor: ev.rekor,
        reasons,
        explanation: ev.explanation,
        signature_outcomes: ev.signature_outcomes,
    })
}

/// A local image name parsed, its path canonicalized (once: loading the image reuses it).
type CanonicalImage = (ImageTransport, PathBuf, String);

/// The image as the policy sees it: its transport and canonical path, or `--reference`; and
/// for a path image, that parse (none for a containers-storage reference).
fn policy_image_ref(
    req: &EvaluationRequest,
) -> Result<(ImageRef, Option<CanonicalImage>), EvalError> {
    if cfsgate_oci::cstorage::is_storage_reference(req.image) {
        let image_ref = crate::cstorage::storage_policy_ref(req.image, req.reference)?;
        return Ok((image_ref, None));
    }
    let (transport, path, suffix) = parse_image_name(req.image)?;
    let path = path.canonicalize().map_err(|e| ImageError::Unreadable {
        image: req.image.to_string(),
        reason: format!("{}: {e}", path.display()),
    })?;
    let placed = |e: cfsgate_policy::ImageRefError| EvalError::PolicyIdentity {
        image: req.image.to_string(),
        reason: e.to_string(),
    };
    let local = match transport {
        ImageTransport::Dir => ImageRef::dir(&path),
        ImageTransport::Oci => ImageRef::oci("oci", &path),
        ImageTransport::ContainersStorage => ImageRef::oci("containers-storage", &path),
    }
    .map_err(placed)?;
    let canonical = Some((transport, path, suffix));
    let image_ref = match req.reference {
        None => local,
        Some(reference) => {
            let parsed = DockerReference::parse_normalized(reference).map_err(|e| {
                EvalError::BadReference {
                    reference: reference.to_string(),
                    reason: e.to_string(),
                }
            })?;
            local
                .with_docker_reference(parsed)
                .map_err(|e| EvalError::BadReference {
                    reference: reference.to_string(),
                    reason: e.to_string(),
                })?
        }
    };
    Ok((image_ref, canonical))
}

struct Evaluation<'r, 'a> {
    req: &'r EvaluationRequest<'a>,
    image: Option<LoadedImage>,
    /// The image's name as [`policy_image_ref`] parsed and canonicalized it.
    canonical: Option<CanonicalImage>,
    explanation: Vec<String>,
    signature_outcomes: Vec<SignatureOutcome>,
    signers: Vec<KeyId>,
    openpgp_signers: Vec<String>,
    rekor: Vec<crate::rekor::RekorEntry>,
    composefs_digest: Option<FsVeritySha256>,
    config_digest: Option<ContentSha256>,
    required_verity: Option<VerityMode>,
}

/// `Ok(summary)` passed, `Err(reason)` failed; the outer `Err` is "cannot evaluate".
type RequirementResult = Result<Result<String, String>, EvalError>;

impl Evaluation<'_, '_> {
    fn line(&mut self, text: String) {
        self.explanation.push(text);
    }

    fn image(&mut self) -> Result<&LoadedImage, EvalError> {
        if self.image.is_none() {
            let image = match &self.canonical {
                Some((transport, path, suffix)) => {
                    load_canonical_image(self.req.image, *transport, path.clone(), suffix)?
                }
                None => load_image(self.req.image)?,
            };
            self.explanation.push(format!(
                "  manifest {} ({} signature(s) found)",
                image.manifest_digest,
                image.signatures.len()
            ));
            self.image = Some(image);
        }
        // Just set above when it was empty.
        self.image.as_ref().ok_or_else(|| {
            EvalError::Image(ImageError::Unreadable {
                image: self.req.image.to_string(),
                reason: "not loaded".into(),
            })
        })
    }

    /// A digest in `--reference` must be the manifest's own: checked before any requirement,
    /// whatever the policy says (even `insecureAcceptAnything`), on the manifest's exact bytes.
    fn check_pinned_digest(&mut self, pinned: &ReferenceDigest) -> Result<(), EvalError> {
        let image = self.image()?;
        let actual = match pinned.algorithm() {
            "sha256" => hex::encode(Sha256::digest(&image.manifest_bytes)),
            "sha384" => hex::encode(Sha384::digest(&image.manifest_bytes)),
            "sha512" => hex::encode(Sha512::digest(&image.manifest_bytes)),
            // ReferenceDigest::parse accepts no other algorithm.
            other => other.to_string(),
        };
        if actual != pinned.hex() {
            return Err(EvalError::PinnedDigestMismatch {
                reference: self.req.reference.unwrap_or_default().to_string(),
                image: self.req.image.to_string(),
                pinned: pinned.to_string(),
                actual: format!("{}:{actual}", pinned.algorithm()),
            });
        }
        self.line(format!(
            "  manifest matches the digest {pinned} the reference pins"
        ));
        Ok(())
    }

    fn requirement(
        &mut self,
        requirement: &Requirement,
        location: Location,
        identity: &IdentityRequirement,
    ) -> RequirementResult {
        if let Some(reason) = requirement.unsupported_reason() {
            return Ok(Err(reason.to_string()));
        }
        match requirement {
            Requirement::InsecureAcceptAnything => Ok(Ok("accepts any image".into())),
            Requirement::Reject => Ok(Err("the policy rejects every image of this scope".into())),
            Requirement::SigstoreSigned(s) => self.sigstore(s, location, identity),
            Requirement::SignedBy(s) => {
                let now = self.req.now;
                let r =
                    crate::signedby::evaluate_signed_by(s, location, self.image()?, identity, now);
                self.explanation.extend(r.lines);
                self.openpgp_signers.extend(r.signers);
                Ok(r.outcome)
            }
            Requirement::Composefs(c) => self.composefs(c),
            // unsupported_reason covers the rest.
            _ => Ok(Err(format!("{} is not supported", requirement.type_name()))),
        }
    }

    fn sigstore(
        &mut self,
        requirement: &SigstoreSigned,
        location: Location,
        identity: &IdentityRequirement,
    ) -> RequirementResult {
        let identity = IdentityRequirement {
            rule: requirement.signed_identity.clone(),
            image_reference: identity.image_reference.clone(),
        };
        let threshold = requirement.threshold().max(1) as usize;
        self.line(format!(
            "  signedIdentity {}, threshold {threshold} distinct key(s)",
            requirement.signed_identity.type_name()
        ));
        let keyless = match crate::keyless::KeylessRoot::load(&requirement.trust_root) {
            Ok(keyless) => keyless,
            Err(reason) => return Ok(Err(reason)),
        };
        self.explanation
            .extend(keyless.iter().map(|r| format!("  {}", r.describe())));
        let mut keys = Vec::new();
        let mut unusable = Vec::new();
        for trusted in requirement.trusted_keys(location) {
            match load_trusted_key(&trusted) {
                Ok(loaded) => {
                    for key in &loaded {
                        self.line(format!(
                            "  key {} ({}){}: loaded",
                            key.id.short(),
                            key.label,
                            window_note(key)
                        ));
                    }
                    keys.extend(loaded);
                }
                Err(reason) => {
                    self.line(format!(
                        "  key at line {}: cannot be used: {reason}",
                        trusted.location.line
                    ));
                    unusable.push(reason);
                }
            }
        }
        if keys.is_empty() && keyless.is_none() {
            return Ok(Err(format!(
                "no trusted key could be loaded ({})",
                unusable.join("; ")
            )));
        }
        let rekor_keys = match &requirement.rekor_public_keys {
            None => None,
            Some(list) => {
                let mut loaded = Vec::new();
                let mut unusable = Vec::new();
                for (material, at) in list.materials(location) {
                    match load_rekor_key(&material) {
                        Ok(key) => {
                            self.line(format!(
                                "  Rekor key {} ({}): loaded",
                                key.id.short(),
                                key.label
                            ));
                            loaded.push(key);
                        }
                        Err(reason) => {
                            self.line(format!(
                                "  Rekor key at line {}: cannot be used: {reason}",
                                at.line
                            ));
                            unusable.push(reason);
                        }
                    }
                }
                if loaded.is_empty() {
                    return Ok(Err(format!(
                        "no Rekor public key could be loaded ({}): no signature can count",
                        unusable.join("; ")
                    )));
                }
                self.line(format!(
                    "  a signature counts only with a Rekor SET from one of {} Rekor key(s); windows judged at its time",
                    loaded.len()
                ));
                Some(loaded)
            }
        };
        let now = self.req.now;
        let image = self.image()?;
        let mut counted: Vec<KeyId> = Vec::new();
        let mut judgements: Vec<SignatureJudgement> = Vec::with_capacity(image.signatures.len());
        for found in &image.signatures {
            let context = JudgeContext {
                now,
                rekor_keys: rekor_keys.as_deref(),
                counted: &counted,
            };
            let judgement = match &keyless {
                Some(root) => root.judge(found, &image.manifest_digest, &identity, context),
                None => judge(found, &image.manifest_digest, &keys, &identity, context),
            };
            if let SignatureOutcome::Accepted { key_id, .. } = judgement.outcome {
                if !counted.contains(&key_id) {
                    counted.push(key_id);
                }
            }
            judgements.push(judgement);
        }
        let mut signers: Vec<KeyId> = Vec::new();
        self.signature_outcomes
            .extend(judgements.iter().map(|j| j.outcome.clone()));
        for judgement in &judgements {
            self.line(format!(
                "  signature {}: {}",
                judgement.source,
                describe_outcome(&judgement.outcome)
            ));
            for attempt in &judgement.attempts {
                self.line(format!(
                    "    key {} ({}): {}",
                    attempt.key_id.short(),
                    attempt.label,
                    attempt.result
                ));
            }
            if let (Some(entry), SignatureOutcome::Accepted { .. }) =
                (&judgement.rekor, &judgement.outcome)
            {
                self.line(format!("    Rekor SET verified ({entry})"));
                if !self.rekor.contains(entry) {
                    self.rekor.push(entry.clone());
                }
            }
            if let SignatureOutcome::Accepted { key_id, .. } = judgement.outcome {
                if !signers.contains(&key_id) {
                    signers.push(key_id);
                }
            }
        }
        self.bundles(requirement, &keys, rekor_keys.is_some(), &mut signers)?;
        for signer in &signers {
            if !self.signers.contains(signer) {
                self.signers.push(*signer);
            }
        }
        if signers.len() >= threshold {
            return Ok(Ok(format!(
                "signed by {} distinct trusted key(s) ({}), {threshold} required",
                signers.len(),
                signers
                    .iter()
                    .map(KeyId::short)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Err(why_unsigned(&judgements, signers.len(), threshold)))
    }

    /// The image's sigstore bundles under `requirement`: fail closed unless it opts in with
    /// `cfsgate.bundleIdentity: "digest-only"` (a bundle claims no docker reference); with
    /// Rekor keys required, a bundle (verified by key only) never counts.
    fn bundles(
        &mut self,
        requirement: &SigstoreSigned,
        keys: &[LoadedKey],
        rekor_required: bool,
        signers: &mut Vec<KeyId>,
    ) -> Result<(), EvalError> {
        if self.req.bundles.is_empty() {
            return Ok(());
        }
        let image = self.image()?;
        // What a bundle may name: the manifest, or an index naming it by digest (cosign signs
        // the digest a tag resolves to: for a multi-arch tag, the index).
        let subjects: Vec<([u8; 32], String)> =
            std::iter::once((image.manifest_digest.0, "the manifest digest".to_string()))
                .chain(
                    image
                        .indexes
                        .iter()
                        .map(|d| (d.0, format!("the index {d}, which names the manifest"))),
                )
                .collect();
        let opted_in = requirement
            .extension
            .as_ref()
            .is_some_and(|e| e.bundle_digest_only);
        let now = Timestamp(self.req.now);
        let usable: Vec<PublicKey> = keys
            .iter()
            .filter(|k| k.window.contains(now))
            .filter_map(|k| match &k.handle {
                KeyHandle::Public(key) => Some(key.clone()),
                KeyHandle::Kernel { .. } => None,
            })
            .collect();
        for (i, bytes) in self.req.bundles.iter().enumerate() {
            let line = if !opted_in {
                "sigstore bundle names no docker reference: signedIdentity cannot be checked (not counted; cfsgate.bundleIdentity \"digest-only\" opts in)".to_string()
            } else if rekor_required {
                "not counted: Rekor keys are required and a bundle is verified by key only".into()
            } else {
                match crate::bundle_sign::verify_bundle_over(bytes, &subjects, &usable) {
                    Ok((verified, what)) => {
                        if !signers.contains(&verified.signer) {
                            signers.push(verified.signer);
                        }
                        format!(
                            "accepted: signed by key {} over {what} (bundleIdentity digest-only)",
                            verified.signer.short()
                        )
                    }
                    Err(e) => format!("rejected: {e}"),
                }
            };
            self.line(format!("  sigstore bundle {}: {line}", i + 1));
        }
        Ok(())
    }

    fn composefs(&mut self, requirement: &ComposefsRequirement) -> RequirementResult {
        if let Some(verity) = requirement.verity {
            self.line(format!("  verity mode required: {}", verity.as_str()));
            // Kernel enforcement is the stricter of the two when scopes ask differently.
            if self.required_verity != Some(VerityMode::Kernel) {
                self.required_verity = Some(verity);
            }
        }
        if !requirement.sealed {
            return Ok(Ok("no seal required".into()));
        }
        self.root(true)
    }

    /// The composefs root ([`crate::root::image_root`]): sets the digests when there is one.
    fn root(&mut self, require_seal: bool) -> RequirementResult {
        let request = RootRequest {
            repo: self.req.repo,
            store: self.req.store_root,
            built_key: self.req.built_key,
            require_seal,
        };
        let (outcome, root) = root_outcome(self.image()?, request);
        if let Some(root) = root {
            self.config_digest = Some(root.config_digest);
            self.composefs_digest = Some(root.composefs_digest);
            let line = format!("  config {} matches the manifest", root.config_digest);
            self.line(line);
        }
        Ok(outcome)
    }
}

fn window_note(key: &LoadedKey) -> String {
    if key.window.not_before.is_none() && key.window.not_after.is_none() {
        String::new()
    } else {
        format!(", valid {}", describe_window(&key.window))
    }
}

pub use crate::trust_keys::{load_rekor_key, load_trusted_key};

/// The current time as unix seconds (for [`EvaluationRequest::now`]).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
