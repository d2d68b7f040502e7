//! The adversarial end-to-end suite (issue 10): every way to break a link of the trust chain
//! that we could think of — substitution, replay, downgrade, confusion, resource exhaustion,
//! races — driven through the real `cfsgate` binary with real keys, images and mounts. Each
//! attack must be refused with a precise reason (asserted on the text; exit 1 = rejected,
//! 2 = could not evaluate) and leave no mount, no temporary file and a repository that passes
//! `cfsgate fsck`. Every attack has an untampered control that must pass, so a refusal is
//! caused by the attack. Each refusal is printed as `REFUSED [case] exit N: reason`
//! (`cargo test --test adversarial -- --nocapture` shows the list).

#[path = "fixtures/hooks.rs"]
mod fixture;

#[path = "adversarial/common.rs"]
mod common;
#[path = "adversarial/confusion.rs"]
mod confusion;
#[path = "adversarial/downgrade.rs"]
mod downgrade;
#[path = "adversarial/duplicates.rs"]
mod duplicates;
#[path = "adversarial/exhaustion.rs"]
mod exhaustion;
#[path = "adversarial/failed_import.rs"]
mod failed_import;
#[path = "adversarial/hook_attacks.rs"]
mod hook_attacks;
#[path = "adversarial/ocibuild.rs"]
mod ocibuild;
#[path = "adversarial/races.rs"]
mod races;
#[path = "adversarial/replay.rs"]
mod replay;
#[path = "adversarial/special_files.rs"]
mod special_files;
#[path = "adversarial/substitution.rs"]
mod substitution;
