//! Fuzz the strict simple-signing payload parser, and the reference parsers its
//! `docker-reference` goes through when a signature is matched against a policy
//! (`DockerReference::parse_normalized`, and the transport reference parser on the raw text).
#![no_main]

use cfsgate_policy::{DockerReference, ImageRef};
use cfsgate_verifier::payload::SimpleSigningPayload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = SimpleSigningPayload::parse(data) {
        let _ = DockerReference::parse_normalized(&payload.docker_reference);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ImageRef::parse(text);
    }
});
