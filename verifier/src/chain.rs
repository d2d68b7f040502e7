//! The trust chain of one image, link by link, each link checked on raw bytes before the
//! next is parsed:
//!
//! | # | link | failure |
//! |---|---|---|
//! | 1 | a trusted key verifies the signature over the exact payload bytes | [`SignatureOutcome::Untrusted`] |
//! | 1a | with Rekor keys required: the Rekor bundle verifies offline and logs this signature, key and payload ([`crate::rekor`]) | [`SignatureOutcome::RekorRejected`] |
//! | 1b | with a validity window: the signature's time (the SET's `integratedTime` when 1a ran, else the current time) is inside it | [`SignatureOutcome::OutsideValidity`] |
//! | 2 | the payload parses strictly | [`SignatureOutcome::BadPayload`] |
//! | 3 | signed manifest digest = sha256 of the manifest's exact bytes | [`SignatureOutcome::DigestMismatch`] |
//! | 4 | the claimed identity is accepted | [`SignatureOutcome::IdentityMismatch`] |
//! | 5 | the config blob hashes to the digest the manifest names (read by the oci crate) | [`SealFailure::ConfigMismatch`] |
//! | 6 | the config carries the seal label `containers.composefs.fsverity` | [`SealFailure::Unsealed`], [`SealFailure::BadLabel`] |
//! | 7 | the composefs image is the one sealed: the stored `images/<seal>` hashes (fs-verity) to its name, or, when not stored, the image rebuilt from the layers (each blob digest-checked) has the sealed digest | [`SealFailure::StoredImageAltered`], [`SealFailure::LayerInvalid`], [`SealFailure::Mismatch`] |
//!
//! Links 1–4 are judged per signature by [`judge`]; 5–7 per image by [`check_seal`], whose
//! result is the trusted composefs digest. Images come from a skopeo `dir:` directory
//! (`signature-N` files) or an OCI layout (the cosign `.sig` tag, see [`crate::ocisig`]).

use std::path::{Path, PathBuf};

use cfsgate_image::ContentSha256;
use cfsgate_keyring::kernel::Serial;
use cfsgate_keyring::{KernelKeyring, KeyId, KeySelector, PublicKey};
use cfsgate_oci::{BlobDigest, OciError, ResolvedImage};
use cfsgate_policy::{Timestamp, ValidityWindow};
use serde::Serialize;

use crate::dir::DirImage;
use crate::loaded::{
    classify_wrapper, FoundSignature, ImageError, ImageTransport, LoadedImage, SignatureContent,
};
use crate::ocisig::{read_oci_signatures, read_oci_signatures_from, REF_NAME_ANNOTATION};
use crate::rekor::{verify_bundle, RekorEntry, RekorError, RekorKey, SignedArtifact};
use crate::seal::{SealFailure, SealOk};
use crate::sigstore::{SigstoreSignature, BUNDLE_ANNOTATION, SIMPLE_SIGNING_MIME_TYPE};
use crate::verify::{
    judge_vouched_payload, sha256_of, IdentityRequirement, KeyFailure, SignatureOutcome,
};

/// Splits `dir:PATH` / `oci:PATH[:TAG|@sha256:HEX]` into transport, path and selector suffix.
pub fn parse_image_name(image: &str) -> Result<(ImageTransport, PathBuf, String), ImageError> {
    let bad = |reason: String| ImageError::BadName {
        image: image.to_string(),
        reason,
    };
    let parsed = cfsgate_oci::ImageRef::parse(image).map_err(|e| bad(e.to_string()))?;
    let suffix = match &parsed.selector {
        cfsgate_oci::Selector::Default => String::new(),
        cfsgate_oci::Selector::Tag(tag) => format!(":{tag}"),
        cfsgate_oci::Selector::Digest(digest) => format!("@{digest}"),
    };
    let transport = match parsed.kind {
        cfsgate_oci::SourceKind::Dir => ImageTransport::Dir,
        cfsgate_oci::SourceKind::OciLayout => ImageTransport::Oci,
        cfsgate_oci::SourceKind::ContainersStorage => ImageTransport::ContainersStorage,
    };
    Ok((transport, parsed.path, suffix))
}

/// Reads the manifest (exact bytes) and every signature of `image`.
pub fn load_image(image: &str) -> Result<LoadedImage, ImageError> {
    if cfsgate_oci::cstorage::is_storage_reference(image) {
        return crate::cstorage::load_storage_image(image);
    }
    let (transport, path, suffix) = parse_image_name(image)?;
    let path = path.canonicalize().map_err(|e| ImageError::Unreadable {
        image: image.to_string(),
        reason: format!("{}: {e}", path.display()),
    })?;
    load_canonical_image(image, transport, path, &suffix)
}

/// [`load_image`] of `image` (not containers-storage), already parsed by [`parse_image_name`]
/// and its `path` canonicalized (the evaluation did both for the policy's reference).
pub(crate) fn load_canonical_image(
    image: &str,
    transport: ImageTransport,
    path: PathBuf,
    suffix: &str,
) -> Result<LoadedImage, ImageError> {
    let unreadable = |reason: String| ImageError::Unreadable {
        image: image.to_string(),
        reason,
    };
    let oci_reference = format!("{}:{}{suffix}", transport.as_str(), path.display());
    match transport {
        ImageTransport::Dir => {
            let dir = DirImage::open(&path).map_err(|e| unreadable(e.to_string()))?;
            let manifest_bytes = dir
                .manifest_bytes()
                .map_err(|e| unreadable(e.to_string()))?;
            let signatures = dir
                .signatures()
                .map_err(|e| unreadable(e.to_string()))?
                .into_iter()
                .map(|file| {
                    let source = file.path.display().to_string();
                    let content = classify_wrapper(&file.bytes, &source);
                    FoundSignature { source, content }
                })
                .collect();
            Ok(LoadedImage {
                transport,
                manifest_digest: sha256_of(&manifest_bytes),
                manifest_bytes,
                path,
                oci_reference,
                signatures,
                indexes: Vec::new(),
                resolved: None,
            })
        }
        ImageTransport::ContainersStorage => crate::cstorage::load_storage_image(image),
        ImageTransport::Oci => {
            let (manifest_bytes, manifest_digest, indexes, resolved) =
                read_layout_manifest(&path, &oci_reference).map_err(unreadable)?;
            let signatures = match &resolved {
                // The layout the image was resolved from, its `oci-layout` already checked.
                Some(resolved) => {
                    read_oci_signatures_from(&resolved.source, &path, &manifest_digest)
                }
                None => read_oci_signatures(&path, &manifest_digest),
            }
            .map_err(|e| unreadable(e.to_string()))?
            .into_iter()
            .map(|found| FoundSignature {
                source: found.source,
                content: match found.signature {
                    Ok(signature) => SignatureContent::Sigstore(signature),
                    Err(reason) => SignatureContent::Malformed(reason),
                },
            })
            .collect();
            Ok(LoadedImage {
                transport,
                path,
                oci_reference,
                manifest_bytes,
                manifest_digest,
                signatures,
                indexes,
                resolved,
            })
        }
    }
}

/// The manifest an OCI layout reference names, read without its config: a config that
/// does not match is a chain failure judged later, not an unreadable image. A layout whose
/// only non-signature entry is taken when no tag is given (cosign `.sig` tags are skipped).
/// Also the indexes it was resolved through (none when only the manifest blob could be read)
/// and the resolution itself (manifest and config read and digest-checked once: the seal check
/// reuses it instead of reading the layout again).
fn read_layout_manifest(layout: &Path, reference: &str) -> Result<LayoutManifest, String> {
    let parsed = cfsgate_oci::ImageRef::parse(reference).map_err(|e| e.to_string())?;
    if parsed.selector == cfsgate_oci::Selector::Default {
        // Type-checked before the open and read under the index limit, as resolution reads it.
        let index = cfsgate_sys::file::read(
            &layout.join("index.json"),
            cfsgate_sys::file::Follow::NoSymlinks,
            cfsgate_sys::file::SizeLimit::new(
                "OCI index.json",
                cfsgate_oci::layout::MAX_INDEX_SIZE,
            ),
        )
        .map_err(|e| e.to_string())?;
        let index: serde_json::Value =
            serde_json::from_slice(&index).map_err(|e| format!("index.json: {e}"))?;
        let images: Vec<&serde_json::Value> = index
            .get("manifests")
            .and_then(|m| m.as_array())
            .map(|m| m.iter().filter(|e| !is_signature_entry(e)).collect())
            .unwrap_or_default();
        if let [only] = images.as_slice() {
            let digest = only
                .get("digest")
                .and_then(|d| d.as_str())
                .ok_or("index.json entry without digest")?;
            return read_layout_manifest(layout, &format!("oci:{}@{digest}", layout.display()));
        }
    }
    // Resolution reads the manifest by digest; the config is read too, so fall back to
    // reading the selected manifest blob directly when only the config is wrong.
    match cfsgate_oci::resolve(reference) {
        Ok(image) => Ok((
            image.manifest_bytes.clone(),
            image.manifest_digest.0,
            image.index_chain.iter().map(|d| d.0).collect(),
            Some(image),
        )),
        Err(
            OciError::DigestMismatch { .. }
            | OciError::SizeMismatch { .. }
            | OciError::BlobMissing { .. }
            | OciError::Config { .. }
            | OciError::Json { .. },
        ) => read_selected_blob(layout, &parsed.selector).map(|(b, d)| (b, d, Vec::new(), None)),
        Err(e) => Err(e.to_string()),
    }
}

/// What [`read_layout_manifest`] read: manifest bytes, their digest, the indexes walked and
/// the resolution when the config could be read too.
type LayoutManifest = (
    Vec<u8>,
    ContentSha256,
    Vec<ContentSha256>,
    Option<ResolvedImage>,
);

fn is_signature_entry(entry: &serde_json::Value) -> bool {
    entry
        .get("annotations")
        .and_then(|a| a.get(REF_NAME_ANNOTATION))
        .and_then(|t| t.as_str())
        .is_some_and(|t| t.starts_with("sha256-") && t.ends_with(".sig"))
}

/// The top-level manifest blob a selector names, digest-checked (no config read).
fn read_selected_blob(
    layout: &Path,
    selector: &cfsgate_oci::Selector,
) -> Result<(Vec<u8>, ContentSha256), String> {
    let index = std::fs::read(layout.join("index.json")).map_err(|e| e.to_string())?;
    let index: serde_json::Value = serde_json::from_slice(&index).map_err(|e| e.to_string())?;
    let entries = index
        .get("manifests")
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    let entry = entries
        .iter()
        .find(|e| match selector {
            cfsgate_oci::Selector::Tag(tag) => {
                e.get("annotations")
                    .and_then(|a| a.get(REF_NAME_ANNOTATION))
                    .and_then(|t| t.as_str())
                    == Some(tag.as_str())
            }
            cfsgate_oci::Selector::Digest(d) => {
                e.get("digest").and_then(|x| x.as_str()) == Some(d.to_string().as_str())
            }
            cfsgate_oci::Selector::Default => false,
        })
        .ok_or("no such manifest in index.json")?;
    let digest = entry
        .get("digest")
        .and_then(|d| d.as_str())
        .ok_or("entry without digest")?;
    let digest = BlobDigest::parse(digest).map_err(|e| e.to_string())?;
    let size = entry
        .get("size")
        .and_then(|s| s.as_u64())
        .ok_or("entry without size")?;
    let source = cfsgate_oci::ImageSource::open(cfsgate_oci::SourceKind::OciLayout, layout)
        .map_err(|e| e.to_string())?;
    let bytes = source
        .read_blob(
            "manifest",
            &digest,
            size,
            cfsgate_oci::layout::MAX_MANIFEST_SIZE,
        )
        .map_err(|e| e.to_string())?;
    Ok((bytes, digest.0))
}

/// How a trusted key is used.
#[derive(Debug, Clone)]
pub enum KeyHandle {
    /// A public key verified in this process.
    Public(PublicKey),
    /// A key of a kernel keyring, verified through the keyring (the kernel itself for
    /// `asymmetric` keys).
    Kernel {
        /// The keyring holding the key.
        keyring: KernelKeyring,
        /// The key's serial number in it.
        serial: Serial,
    },
}

/// A trusted key, ready to verify: its id, where it came from, its validity window.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    /// The sha256 of the key's SPKI.
    pub id: KeyId,
    /// `file /etc/…`, `keyData`, `keyring cfsgate key "release" (serial N)`.
    pub label: String,
    /// When signatures by the key count (from the policy; open without the extension).
    pub window: ValidityWindow,
    /// How to verify with it.
    pub handle: KeyHandle,
}

impl LoadedKey {
    /// Verifies `signature` over exactly `payload`.
    pub fn verify(&self, payload: &[u8], signature: &[u8]) -> Result<(), String> {
        match &self.handle {
            KeyHandle::Public(key) => key.verify(payload, signature).map_err(|e| e.to_string()),
            KeyHandle::Kernel { keyring, serial } => keyring
                .verify(&KeySelector::Serial(*serial), payload, signature)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }
}

/// The id of a kernel `asymmetric` key, whose certificate the kernel never gives back:
/// sha256 of `kernel:<keyring serial>:<key serial>` (stable while the key exists).
pub fn kernel_key_id(keyring: &KernelKeyring, serial: Serial) -> KeyId {
    KeyId(sha256_of(format!("kernel:{}:{serial}", keyring.serial()).as_bytes()).0)
}

/// One key tried on one signature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyAttempt {
    /// The sha256 of the key's SPKI.
    pub key_id: KeyId,
    /// Where the key came from, as in [`LoadedKey::label`].
    pub label: String,
    /// `verified`, `verified, but outside its validity window …`, or the failure.
    pub result: String,
    /// Whether the signature verified with this key (inside its window or not).
    pub verified: bool,
}

/// Links 1–4 for one signature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignatureJudgement {
    /// Where the signature was found, as in [`FoundSignature::source`].
    pub source: String,
    /// What the signature established.
    pub outcome: SignatureOutcome,
    /// Each trusted key tried on it until one counted: in policy order, except that the keys
    /// in [`JudgeContext::counted`] (already counted for an earlier signature) come last when
    /// every key is a public key.
    pub attempts: Vec<KeyAttempt>,
    /// The verified Rekor SET of the key that counted, when Rekor keys were required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rekor: Option<RekorEntry>,
}

/// What a signature is judged against besides its keys and identity.
#[derive(Debug, Clone, Copy)]
pub struct JudgeContext<'a> {
    /// The current time (unix seconds): validity windows are judged at it when no Rekor SET
    /// gives the signature's time.
    pub now: i64,
    /// `Some`: a signature counts only with a Rekor SET signed by one of these keys (an empty
    /// list therefore accepts nothing); `None`: SETs are not required nor read.
    pub rekor_keys: Option<&'a [RekorKey]>,
    /// Keys that already counted for an earlier signature of the same requirement: tried after
    /// the others. A key counts once however many signatures it made, and signatures of one
    /// image are usually by different keys, so the others first saves the failed signature
    /// checks of the keys that already counted. The outcome is the same because two ids never
    /// verify one signature: a public key's id is the sha256 of its canonical SPKI. A kernel
    /// keyring key's id names the keyring entry, not the key (the same key may also be listed
    /// as a file), so with any kernel key among the keys this is ignored: policy order then
    /// credits a key listed twice to the same id for every signature, as before.
    pub counted: &'a [KeyId],
}

/// Judges one signature against the trusted keys (see the module table).
pub fn judge(
    found: &FoundSignature,
    manifest_digest: &ContentSha256,
    keys: &[LoadedKey],
    identity: &IdentityRequirement,
    context: JudgeContext,
) -> SignatureJudgement {
    let mut judgement = SignatureJudgement {
        source: found.source.clone(),
        outcome: SignatureOutcome::NotSigstore,
        attempts: Vec::new(),
        rekor: None,
    };
    judgement.outcome = judge_links(
        found,
        manifest_digest,
        keys,
        identity,
        context,
        &mut judgement,
    );
    judgement
}

/// Link 1a for a signature `key` verified: the SET's entry, or why it does not count.
fn check_rekor(
    signature: &SigstoreSignature,
    key: &LoadedKey,
    rekor_keys: &[RekorKey],
) -> Result<RekorEntry, RekorError> {
    let bundle = signature
        .annotations
        .get(BUNDLE_ANNOTATION)
        .ok_or(RekorError::Missing)?;
    verify_bundle(
        bundle.as_bytes(),
        rekor_keys,
        &SignedArtifact {
            payload: &signature.payload,
            signature: &signature.signature,
            signer: key.id,
        },
    )
}

fn judge_links(
    found: &FoundSignature,
    manifest_digest: &ContentSha256,
    keys: &[LoadedKey],
    identity: &IdentityRequirement,
    context: JudgeContext,
    judgement: &mut SignatureJudgement,
) -> SignatureOutcome {
    let attempts = &mut judgement.attempts;
    let signature = match &found.content {
        SignatureContent::SimpleSigning(_) => return SignatureOutcome::NotSigstore,
        SignatureContent::Malformed(reason) => {
            return SignatureOutcome::Malformed {
                reason: reason.clone(),
            }
        }
        SignatureContent::Sigstore(signature) => signature,
    };
    if signature.mime_type != SIMPLE_SIGNING_MIME_TYPE {
        return SignatureOutcome::NotSimpleSigning {
            mime_type: signature.mime_type.clone(),
        };
    }
    let mut outside = None;
    let mut rekor_rejected = None;
    let mut signer = None;
    let reorder = keys
        .iter()
        .all(|key| matches!(key.handle, KeyHandle::Public(_)));
    let is_counted = |key: &&LoadedKey| reorder && context.counted.contains(&key.id);
    let not_counted = keys.iter().filter(|key| !is_counted(key));
    for key in not_counted.chain(keys.iter().filter(is_counted)) {
        // The same key may be listed twice (with and without a window): verify once.
        let verification = match attempts.iter().find(|a| a.key_id == key.id) {
            Some(previous) if previous.verified => Ok(()),
            Some(previous) => Err(previous.result.clone()),
            None => key.verify(&signature.payload, &signature.signature),
        };
        let verified = verification.is_ok();
        // Link 1a, then the time link 1b is judged at.
        let rekor = match (&verification, context.rekor_keys) {
            (Ok(()), Some(rekor_keys)) => Some(check_rekor(signature, key, rekor_keys)),
            _ => None,
        };
        let (at, time_source) = match &rekor {
            Some(Ok(entry)) => (entry.integrated_time, "Rekor SET time"),
            _ => (context.now, "current time"),
        };
        let rekor_note = match &rekor {
            Some(Ok(entry)) => format!("; Rekor SET verified ({entry})"),
            _ => String::new(),
        };
        let mut counts = false;
        let result = match (verification, &rekor) {
            (Err(reason), _) => reason,
            (Ok(()), Some(Err(e))) => {
                rekor_rejected.get_or_insert((key.id, e.to_string()));
                format!("verified, but its Rekor SET is not accepted: {e}")
            }
            (Ok(()), _) if key.window.contains(Timestamp(at)) => {
                counts = true;
                format!("verified{rekor_note}")
            }
            (Ok(()), _) => {
                outside.get_or_insert((key.id, at, describe_window(&key.window)));
                format!(
                    "verified{rekor_note}, but the signature time {} ({time_source}) is outside the key's validity window ({})",
                    Timestamp(at),
                    describe_window(&key.window)
                )
            }
        };
        attempts.push(KeyAttempt {
            key_id: key.id,
            label: key.label.clone(),
            result,
            verified,
        });
        if counts {
            signer = Some(key.id);
            judgement.rekor = rekor.and_then(Result::ok);
            break;
        }
    }
    let attempts = &judgement.attempts;
    let Some(key_id) = signer else {
        if let Some((key_id, at, window)) = outside {
            return SignatureOutcome::OutsideValidity { key_id, at, window };
        }
        if let Some((key_id, reason)) = rekor_rejected {
            return SignatureOutcome::RekorRejected { key_id, reason };
        }
        return SignatureOutcome::Untrusted {
            per_key: attempts
                .iter()
                .map(|a| KeyFailure {
                    key_id: a.key_id,
                    reason: a.result.clone(),
                })
                .collect(),
        };
    };
    judge_vouched_payload(key_id, &signature.payload, manifest_digest, identity)
}

/// `notBefore … notAfter` as RFC 3339, for messages.
pub fn describe_window(window: &ValidityWindow) -> String {
    let bound = |t: Option<Timestamp>| t.map_or("-".to_string(), |t| t.to_string());
    format!(
        "notBefore {}, notAfter {}",
        bound(window.not_before),
        bound(window.not_after)
    )
}

/// Links 5–7: the seal of `image`, checked against the stored composefs image in `repo`
/// (when given and present) or the image rebuilt from the layers; no label is a failure.
pub fn check_seal(image: &LoadedImage, repo: Option<&Path>) -> Result<SealOk, SealFailure> {
    let request = crate::root::RootRequest {
        repo,
        store: false,
        require_seal: true,
        built_key: None,
    };
    crate::root::image_root(image, request)?.ok_or(SealFailure::Unsealed)
}

/// The config digest of an image, when its config can be read (for reports).
pub fn config_digest_of(image: &LoadedImage) -> Option<ContentSha256> {
    if let Some(resolved) = &image.resolved {
        return Some(resolved.config_digest.0);
    }
    cfsgate_oci::resolve(&image.oci_reference)
        .ok()
        .map(|r| r.config_digest.0)
}

/// The one reason a sigstoreSigned requirement failed, most informative first.
pub(crate) fn why_unsigned(
    judgements: &[SignatureJudgement],
    distinct: usize,
    threshold: usize,
) -> String {
    let outcomes = || judgements.iter().map(|j| &j.outcome);
    if distinct > 0 {
        return format!(
            "only {distinct} distinct trusted key(s) signed, {threshold} required (a key counts once however many signatures it made)"
        );
    }
    if outcomes().all(|o| *o == SignatureOutcome::NotSigstore) {
        return "unsigned: no sigstore signature".into();
    }
    if let Some(o) = outcomes().find(|o| {
        matches!(
            o,
            SignatureOutcome::OutsideValidity { .. }
                | SignatureOutcome::RekorRejected { .. }
                | SignatureOutcome::CertificateRejected { .. }
        )
    }) {
        return crate::verify::describe_outcome(o);
    }
    if let Some(o) = outcomes().find(|o| {
        matches!(
            o,
            SignatureOutcome::DigestMismatch { .. }
                | SignatureOutcome::IdentityMismatch { .. }
                | SignatureOutcome::BadPayload { .. }
        )
    }) {
        return format!(
            "signed by a trusted key, but no such signature matches this image and identity ({})",
            crate::verify::describe_outcome(o)
        );
    }
    "signed, but not by any trusted key".into()
}
