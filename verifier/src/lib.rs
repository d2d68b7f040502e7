//! `cfsgate-verifier`: from an image and trusted keys to a verdict with reasons, and the
//! signing that produces what it verifies.
//!
//! This first slice handles cosign "simple signing" signatures stored in skopeo `dir:`
//! images (`manifest.json` + `signature-N`), with containers/image's `sigstoreSigned`
//! semantics.
//!
//! | module | purpose |
//! |---|---|
//! | [`sigstore`] | the `\x00sigstore-json\n` signature wrapper: parse, write |
//! | [`payload`] | the cosign simple-signing payload: strict parse, write |
//! | [`dir`] | reading `manifest.json` and `signature-N` of a `dir:` image |
//! | [`verify`] | the checks of one signature, in fail-closed order ([`SignatureOutcome`]) |
//! | [`sign`] | writing the next `signature-N`, or a layer of an OCI layout's `.sig` tag |
//! | [`ocisig`] | cosign signature manifests (`sha256-<hex>.sig`) in OCI layouts |
//! | [`gpg`] | OpenPGP keyrings and the verification of one simple-signing (GPG) signature blob, as gpgme judges it |
//! | [`atomic`] | the GPG simple-signing payload ("atomic container signature"): strict parse, manifest digest match |
//! | [`signedby`] | the `signedBy` requirement: keys, signatures, payload, digest, identity |
//! | [`cstorage`] | `containers-storage:` images: manifest, stored signatures, the name the policy judges |
//! | [`chain`] | the trust chain link by link: signature, payload, manifest, config, seal, composefs image |
//! | [`bundle`] | sigstore bundles (v0.1–v0.3): the parser |
//! | [`bundle_verify`] | offline verification of a key-signed bundle (message signature or DSSE) against trusted logs: SET, inclusion proof, checkpoint |
//! | [`bundle_keyless`] | offline verification of any bundle (keyless Fulcio certificate or key) against a whole `trusted_root.json`: chain, SCT, identity, timestamps |
//! | [`bundle_files`] | a bundle verified offline from files (`sigstore verify-bundle`) |
//! | [`bundle_tlog`] | a bundle's tlog entries: logged bodies (Rekor v1 and v2 kinds), SET, inclusion proof |
//! | [`checkpoint`] | transparency log checkpoints (signed notes, cosignatures) |
//! | [`trusted_root`] | sigstore's `trusted_root.json`: tlogs, ctlogs, CAs, TSAs and their validity windows |
//! | [`tsa`] | RFC 3161 timestamps (CMS SignedData of a TSTInfo) checked against trusted TSAs |
//! | [`sct`] | signed certificate timestamps embedded in Fulcio certificates |
//! | [`sigalg`] | signature algorithms named apart from the key (CMS, X.509, SCT), sigstore's prehashed ECDSA |
//! | [`asn1`] | a minimal strict DER reader for CMS and TSTInfo |
//! | [`bundle_sign`] | key-signed bundles of an image manifest (DSSE, in-toto statement; what `sign --format bundle` pushes) and their verification by key |
//! | [`bundle_registry`] | bundles as OCI referrers in a registry: fetched for `verify`, signed and pushed for `sign --format bundle` |
//! | [`cert`] | X.509 certificates: parsing, SAN / Fulcio fields, chain verification as Go's `crypto/x509` (Fulcio, PKI) |
//! | [`key_policy`] | the one-scope policy of `verify --key`/`--keyring` |
//! | [`keyless`] | `sigstoreSigned` with `fulcio` or `pki`: the signature's certificate chained, its subject matched, its key verifying |
//! | [`rekor`] | offline verification of a signature's Rekor bundle (signed entry timestamp) |
//! | [`built`] | the gate's keyed records of composefs images built from unsealed images' verified layers (found by config digest) |
//! | [`root`] | the composefs root of an image: the seal checked when present, else the image built from the verified layers (stored for the gate) |
//! | [`evaluate`](mod@evaluate) | a policy's decision for an image: scopes, requirements, thresholds, windows, warn mode |
//! | [`explain`] | human renderings of a decision |

pub mod asn1;
pub mod atomic;
pub mod audit;
pub mod built;
pub mod bundle;
pub mod bundle_cert;
pub mod bundle_error;
pub mod bundle_files;
pub mod bundle_keyless;
pub mod bundle_merkle;
pub mod bundle_registry;
pub mod bundle_sign;
pub mod bundle_tlog;
pub mod bundle_verify;
pub mod cert;
pub mod chain;
pub mod checkpoint;
pub mod cstorage;
pub mod dir;
pub mod doctor;
pub mod evaluate;
pub mod explain;
pub mod gpg;
pub mod key_policy;
pub mod keyless;
pub mod loaded;
pub mod ocisig;
pub mod payload;
pub mod rekor;
pub mod root;
pub mod sct;
pub mod seal;
pub mod sigalg;
pub mod sign;
pub mod signedby;
pub mod sigstore;
pub mod trust_keys;
pub mod trusted_root;
pub mod tsa;
pub mod verify;

pub use chain::{check_seal, judge, load_image, LoadedKey};
pub use dir::{DirError, DirImage};
pub use evaluate::{evaluate, Decision, EvaluationRequest};
pub use loaded::{EvalError, LoadedImage};
pub use payload::{PayloadError, SimpleSigningPayload};
pub use rekor::{RekorEntry, RekorError, RekorKey};
pub use seal::{SealFailure, SealOk};
pub use sign::{sign_dir_image, sign_oci_image, SignError, SignedFile, SignedLayer};
pub use sigstore::{SigstoreParseError, SigstoreSignature};
pub use verify::{sha256_of, IdentityRequirement, KeyFailure, SignatureOutcome};
