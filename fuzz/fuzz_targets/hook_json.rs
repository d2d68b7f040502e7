//! Fuzz the JSON a runtime hook reads, through the parsers the hook itself uses
//! (`cfsgate_gate::spec`): the runtime config on precreate's stdin (annotations, the image
//! lookup, the root replacement), the container state on createRuntime/poststop's stdin, the
//! bundle's `config.json`, and the admission record the hooks read back from the run dir.
#![no_main]

use std::path::Path;

use cfsgate_gate::annotations::{container_key, image_from_annotations};
use cfsgate_gate::spec::{parse_bundle_config, parse_container_state, parse_runtime_config};
use cfsgate_gate::AdmissionRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut config) = parse_runtime_config(data, "runtime config") {
        let _ = image_from_annotations(&config.annotations);
        let _ = container_key(&config.annotations);
        let _ = config.set_root(Path::new("/run/cfsgate/containers/k/rootfs"));
        let _ = serde_json::to_vec(&config.value);
    }
    if let Ok(state) = parse_container_state(data) {
        let _ = state.bundle_dir();
    }
    let _ = parse_bundle_config(data, Path::new("config.json"));
    let _ = AdmissionRecord::parse(data, Path::new("admission.json"));
});
