//! Fuzz the containers-policy.json parser; an accepted policy serialised with `to_json` must
//! parse again, to a policy that serialises to the same text.
#![no_main]

use cfsgate_policy::{parse_policy, to_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(policy) = parse_policy(data) {
        let text = to_json(&policy);
        match parse_policy(text.as_bytes()) {
            // Locations differ (the text is laid out anew); the serialisation must be a fixpoint.
            Ok(again) => assert_eq!(
                to_json(&again),
                text,
                "to_json → parse_policy → to_json changes the policy"
            ),
            Err(e) => panic!("the policy's own to_json does not parse: {e}\n{text}"),
        }
    }
});
