//! Fuzz the sigstore signature wrapper parser (the JSON around payload and signature); the
//! payload it yields is fed on to the simple-signing parser, as verification does.
#![no_main]

use cfsgate_verifier::payload::SimpleSigningPayload;
use cfsgate_verifier::sigstore::SigstoreSignature;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sig) = SigstoreSignature::parse(data, "fuzz") {
        let _ = SimpleSigningPayload::parse(&sig.payload);
    }
});
