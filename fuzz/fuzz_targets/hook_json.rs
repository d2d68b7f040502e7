//! Fuzz the JSON a runtime hook reads: the container state on stdin and the bundle's
//! `config.json` (OCI runtime-spec types, as the hook deserialises them). cfsgate's hook has no
//! library entry point yet, so this exercises the deserialisers it will use.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::{Spec, State};

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = serde_json::from_slice::<State>(data) {
        let _ = state.bundle();
        let _ = serde_json::to_vec(&state);
    }
    if let Ok(spec) = serde_json::from_slice::<Spec>(data) {
        let _ = spec.root().as_ref().map(|r| r.path().clone());
        let _ = spec.annotations();
        let _ = serde_json::to_vec(&spec);
    }
});
