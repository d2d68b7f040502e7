//! Fuzz the containers-policy.json parser; an accepted policy serialised with `to_json` must
//! parse again, to a policy that serialises to the same text. The parser streams the file
//! (its own JSON reader, scope by scope), so an accepted policy must also be JSON that
//! serde_json accepts, and the whole-document reader must accept it too.
#![no_main]

use cfsgate_policy::{parse_policy, to_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(policy) = parse_policy(data) {
        assert!(
            serde_json::from_slice::<serde_json::Value>(data).is_ok(),
            "parse_policy accepted text serde_json refuses"
        );
        assert!(
            cfsgate_policy::json::parse(data).is_ok(),
            "parse_policy accepted text the whole-document reader refuses"
        );
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
