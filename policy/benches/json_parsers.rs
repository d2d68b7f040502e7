//! The policy JSON stack against a serde-based one (issue #19), on the 1,000-scope / 50-key
//! synthetic policy of `benches/verify.sh` and `tests/lint_and_scale.rs`.
//!
//! Run: `cargo bench -p cfsgate-policy --bench json_parsers`. Prints, for one run on one
//! machine (no timed assertions; ratios are to yardsticks measured in the same run):
//!
//! | row | what is timed |
//! |---|---|
//! | `parse_policy` | cfsgate's hand-written stack: bytes → validated [`Policy`] with locations |
//! | `serde derive` | `serde_json::from_slice` into `#[derive(Deserialize)]` types of the whole schema (`deny_unknown_fields`, internally tagged `type`, maps that refuse repeated keys), plus the scope validation `parse_policy` does; no locations |
//! | `serde derive, counted reader` | the same through `from_reader` over a byte-counting reader: the only way to learn where a value is from inside serde_json |
//! | `serde_json::Value` | yardstick: a plain untyped parse (duplicate keys silently kept last) |
//!
//! Then it feeds the serde parser the malformed policies of `tests/parsing.rs` and prints
//! where serde_json says the error is against where the test requires it (the key's or the
//! value's first character).
//!
//! The serde types are a measurement device, not a second parser: they decode the schema
//! but do not build the model (a lower bound of a serde stack's cost).

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cfsgate_policy::transport::validate_scope;
use cfsgate_policy::{parse_policy, synthetic};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// Timed runs per parser: the median of this many is printed.
const RUNS: usize = 101;

/// Scopes in the synthetic policy (the `benches/verify.sh` policy).
const SCOPES: usize = 1000;

/// Key files the synthetic policy rotates over.
const KEYS: usize = 50;

/// A JSON object read into a vector, refusing a key seen before in the same object
/// (serde's maps keep the last of two equal keys).
#[derive(Debug)]
struct UniqueMap<V>(Vec<(String, V)>);

impl<V> Default for UniqueMap<V> {
    fn default() -> Self {
        UniqueMap(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = UniqueMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                let mut seen: HashMap<String, ()> = HashMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if seen.insert(key.clone(), ()).is_some() {
                        return Err(de::Error::custom(format!("duplicate key {key:?}")));
                    }
                    entries.push((key, map.next_value()?));
                }
                Ok(UniqueMap(entries))
            }
        }
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

/// The policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by Debug only: the bench measures decoding
struct PolicyFile {
    default: Vec<Requirement>,
    #[serde(default)]
    transports: UniqueMap<UniqueMap<Vec<Requirement>>>,
    cfsgate: Option<Extension>,
}

/// One requirement, by its `type`. Variants without fields are written `{}` so that
/// `deny_unknown_fields` applies to them (a unit variant of an internally tagged enum
/// ignores any other keys).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
#[allow(dead_code)]
// As a serde user would write it first (the model boxes its large variants).
#[allow(clippy::large_enum_variant)]
enum Requirement {
    #[serde(rename = "insecureAcceptAnything")]
    InsecureAcceptAnything {},
    #[serde(rename = "reject")]
    Reject {},
    #[serde(rename = "signedBy", rename_all = "camelCase")]
    SignedBy {
        key_type: String,
        key_path: Option<String>,
        key_paths: Option<Vec<String>>,
        key_data: Option<String>,
        signed_identity: Option<IdentityRule>,
    },
    #[serde(rename = "signedBaseLayer", rename_all = "camelCase")]
    SignedBaseLayer { base_layer_identity: IdentityRule },
    #[serde(rename = "sigstoreSigned", rename_all = "camelCase")]
    SigstoreSigned {
        key_path: Option<String>,
        key_paths: Option<Vec<String>>,
        key_data: Option<String>,
        key_datas: Option<Vec<String>>,
        fulcio: Option<Fulcio>,
        pki: Option<Pki>,
        rekor_public_key_path: Option<String>,
        rekor_public_key_paths: Option<Vec<String>>,
        rekor_public_key_data: Option<String>,
        rekor_public_key_datas: Option<Vec<String>>,
        signed_identity: Option<IdentityRule>,
        cfsgate: Option<SigstoreExtension>,
    },
    #[serde(rename = "composefs")]
    Composefs {
        sealed: Option<bool>,
        verity: Option<Verity>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
#[allow(dead_code)]
enum IdentityRule {
    #[serde(rename = "matchExact")]
    MatchExact {},
    #[serde(rename = "matchRepoDigestOrExact")]
    MatchRepoDigestOrExact {},
    #[serde(rename = "matchRepository")]
    MatchRepository {},
    #[serde(rename = "exactReference", rename_all = "camelCase")]
    ExactReference { docker_reference: String },
    #[serde(rename = "exactRepository", rename_all = "camelCase")]
    ExactRepository { docker_repository: String },
    #[serde(rename = "remapIdentity", rename_all = "camelCase")]
    RemapIdentity {
        prefix: String,
        signed_prefix: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Fulcio {
    ca_path: Option<String>,
    ca_data: Option<String>,
    oidc_issuer: Option<String>,
    subject_email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Pki {
    ca_roots_path: Option<String>,
    ca_roots_data: Option<String>,
    ca_intermediates_path: Option<String>,
    ca_intermediates_data: Option<String>,
    subject_email: Option<String>,
    subject_hostname: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct SigstoreExtension {
    threshold: Option<u32>,
    keys: Option<Vec<Key>>,
    bundle_identity: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Key {
    key_path: Option<String>,
    key_data: Option<String>,
    keyring: Option<String>,
    description: Option<String>,
    serial: Option<i32>,
    not_before: Option<String>,
    not_after: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Verity {
    Kernel,
    Userspace,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ModeName {
    Enforce,
    Warn,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Extension {
    modes: Option<Modes>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Modes {
    default: Option<ModeName>,
    transports: Option<UniqueMap<UniqueMap<ModeName>>>,
}

/// The serde stack's result: the decoded file, its scopes validated as `parse_policy`
/// validates them.
fn serde_parse(file: Result<PolicyFile, serde_json::Error>) -> Result<PolicyFile, String> {
    let file = file.map_err(|e| format!("{}:{}: {e}", e.line(), e.column()))?;
    for (transport, scopes) in &file.transports.0 {
        for (scope, _) in &scopes.0 {
            if !scope.is_empty() {
                validate_scope(transport, scope)?;
            }
        }
    }
    Ok(file)
}

/// A reader that counts the bytes serde_json has pulled (`IoRead` pulls one at a time),
/// so a visitor could learn its offset.
struct Counted<'a> {
    bytes: &'a [u8],
    consumed: usize,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.bytes.len().min(buf.len());
        let (head, tail) = self.bytes.split_at(n);
        buf.get_mut(..n).unwrap_or_default().copy_from_slice(head);
        self.bytes = tail;
        self.consumed += n;
        Ok(n)
    }
}

fn median(mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

/// The malformed policies of `tests/parsing.rs` (`fails_at` cases) and the position that
/// test requires: the first character of the marker's first (or last) occurrence.
const CASES: &[(&str, &str, &str, bool)] = &[
    (
        "unknown top-level field",
        "{\"default\": [{\"type\": \"reject\"}],\n \"extra\": 1}",
        "\"extra\"",
        false,
    ),
    (
        "unknown field of a reject requirement",
        "{\"default\": [\n  {\"type\": \"reject\", \"keyPath\": \"/k\"}]}",
        "\"keyPath\"",
        false,
    ),
    (
        "unknown field of a signedIdentity",
        "{\"default\": [{\"type\": \"sigstoreSigned\", \"keyPath\": \"/k.pub\",\n   \"signedIdentity\": {\"type\": \"matchExact\", \"dockerReference\": \"x:y\"}}]}",
        "\"dockerReference\"",
        false,
    ),
    (
        "repeated top-level key",
        "{\"default\": [{\"type\": \"reject\"}],\n\"default\": [{\"type\": \"insecureAcceptAnything\"}]}",
        "\"default\"",
        true,
    ),
    (
        "repeated scope",
        "{\"default\": [{\"type\": \"reject\"}], \"transports\": {\"docker\": {\n  \"a.example/x\": [{\"type\": \"reject\"}],\n  \"a.example/x\": [{\"type\": \"insecureAcceptAnything\"}]}}}",
        "\"a.example/x\"",
        true,
    ),
    (
        "repeated `type`",
        "{\"default\": [{\"type\": \"reject\", \"type\": \"insecureAcceptAnything\"}]}",
        "\"type\": \"insecureAcceptAnything\"",
        false,
    ),
    ("missing `default`", "{\"transports\": {}}", "{", false),
    (
        "unknown requirement type",
        "{\"default\": [{\"type\": \"signedByX\"}]}",
        "\"signedByX\"",
        false,
    ),
    (
        "bad verity value",
        "{\"default\": [{\"type\": \"composefs\",\n \"verity\": \"maybe\"}]}",
        "\"maybe\"",
        false,
    ),
];

fn line_column(text: &str, index: usize) -> (usize, usize) {
    let before = &text[..index];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let keys: Vec<PathBuf> = (0..KEYS)
        .map(|i| dir.path().join(format!("key-{i}.pub")))
        .collect();
    let text = synthetic::synthetic_policy_json(SCOPES, &keys);
    let bytes = text.as_bytes();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "policy: {SCOPES} scopes / {KEYS} keys, {} bytes; {RUNS} runs each, median; loadavg {}",
        bytes.len(),
        load.trim()
    );

    // Each parser accepts the policy before it is timed.
    parse_policy(bytes).expect("parse_policy accepts the synthetic policy");
    serde_parse(serde_json::from_slice(bytes)).expect("serde accepts the synthetic policy");

    let hand = median(|| {
        std::hint::black_box(parse_policy(std::hint::black_box(bytes)).is_ok());
    });
    let derive = median(|| {
        std::hint::black_box(serde_parse(serde_json::from_slice(bytes)).is_ok());
    });
    let counted = median(|| {
        let reader = Counted { bytes, consumed: 0 };
        std::hint::black_box(serde_parse(serde_json::from_reader(reader)).is_ok());
    });
    let value = median(|| {
        std::hint::black_box(serde_json::from_slice::<serde_json::Value>(bytes).is_ok());
    });
    let row = |name: &str, t: Duration| {
        println!(
            "{name:32} {:8.3} ms  {:5.2}x parse_policy  {:5.2}x serde_json::Value",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / hand.as_secs_f64(),
            t.as_secs_f64() / value.as_secs_f64()
        );
    };
    row("parse_policy (hand-written)", hand);
    row("serde derive", derive);
    row("serde derive, counted reader", counted);
    row("serde_json::Value", value);

    println!("\nerror positions (required by tests/parsing.rs vs serde_json's):");
    let mut same = 0;
    for (name, case, marker, last) in CASES {
        let index = if *last {
            case.rfind(marker)
        } else {
            case.find(marker)
        }
        .expect("marker in case");
        let (line, column) = line_column(case, index);
        let hand = parse_policy(case.as_bytes())
            .err()
            .map(|e| (e.location.line as usize, e.location.column as usize));
        let serde: Result<PolicyFile, serde_json::Error> = serde_json::from_str(case);
        let verdict = match &serde {
            Ok(_) => "accepted".to_string(),
            Err(e) => {
                if (e.line(), e.column()) == (line, column) {
                    same += 1;
                }
                format!("{e}")
            }
        };
        println!(
            "  {name:38} required {line}:{column}, parse_policy {:?}, serde: {verdict}",
            hand
        );
    }
    println!(
        "  serde_json at the required position: {same} of {}",
        CASES.len()
    );
}
