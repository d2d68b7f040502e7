//! The audit log through the `cfsgate` binary: many processes appending at once keep one
//! intact chain; a removed, edited or reordered record is named by `audit verify`.

#[path = "fixtures/hooks.rs"]
mod fixture;

use std::path::Path;

use fixture::*;

/// One `hook create-runtime` for a root nobody admitted: one deny record, from its own process.
fn deny_one(fx: &Fixture, i: usize) {
    let bundle = bundle_for(fx.path(), &format!("b{i}"), &fx.path().join("nowhere"));
    let mut args = vec!["hook".to_string(), "create-runtime".to_string()];
    args.extend(fx.check_args());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cfsgate(&argv, Some(&state_json(&format!("ctr-{i}"), &bundle)));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn verify(log: &Path) -> (Option<i32>, String) {
    let out = cfsgate(
        &["audit", "verify", "--audit-log", log.to_str().unwrap()],
        None,
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn write_lines(path: &Path, lines: &[&str]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

#[test]
fn concurrent_appends_keep_the_chain_and_tampering_is_named() {
    let fx = Fixture::new();
    const WRITERS: usize = 8;
    const EACH: usize = 8;
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let fx = &fx;
            s.spawn(move || {
                for j in 0..EACH {
                    deny_one(fx, w * EACH + j);
                }
            });
        }
    });
    let total = WRITERS * EACH;
    let (code, text) = verify(&fx.audit_log);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&format!("{total} records")), "{text}");
    let original = std::fs::read_to_string(&fx.audit_log).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert_eq!(lines.len(), total);
    // Every container's record is there exactly once.
    let mut ids: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["container_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total);

    // show / summary see them.
    let out = cfsgate(
        &[
            "audit",
            "show",
            "--verdict",
            "deny",
            "--json",
            "--audit-log",
            fx.audit_log.to_str().unwrap(),
        ],
        None,
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["schema"], "cfsgate.audit.show/v1");
    assert_eq!(shown["chain"]["intact"], true);
    assert_eq!(shown["records"].as_array().unwrap().len(), total);
    assert!(shown["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["verified"] == true && r["record"]["verdict"] == "deny"));
    let out = cfsgate(
        &[
            "audit",
            "show",
            "--verdict",
            "admit",
            "--audit-log",
            fx.audit_log.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.stdout.is_empty());
    let out = cfsgate(
        &[
            "audit",
            "summary",
            "--json",
            "--audit-log",
            fx.audit_log.to_str().unwrap(),
        ],
        None,
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["records"], total);

    // Removed: record 11 gone, line 11 now holds record 12.
    let mut removed = lines.clone();
    removed.remove(10);
    write_lines(&fx.audit_log, &removed);
    let (code, text) = verify(&fx.audit_log);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("line 11 (removed)") && text.contains("1 record(s) removed"),
        "{text}"
    );

    // Reordered: lines 5 and 9 swapped.
    let mut reordered = lines.clone();
    reordered.swap(4, 8);
    write_lines(&fx.audit_log, &reordered);
    let (code, text) = verify(&fx.audit_log);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("line 5 (reordered)") && !text.contains("removed"),
        "{text}"
    );
    assert!(text.contains("record 5 is at audit.jsonl line 9"), "{text}");
    // The views say so too: show marks records from the break on, summary warns; both exit 1.
    let log = fx.audit_log.to_str().unwrap();
    let out = cfsgate(&["audit", "show", "--audit-log", log], None);
    assert_eq!(out.status.code(), Some(1));
    let shown = String::from_utf8_lossy(&out.stdout);
    let first = shown.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("WARNING: chain broken at") && first.contains("reordered"),
        "{shown}"
    );
    assert_eq!(
        shown
            .lines()
            .filter(|l| l.starts_with("UNVERIFIED #"))
            .count(),
        total - 4
    );
    assert_eq!(shown.lines().filter(|l| l.starts_with('#')).count(), 4);
    let out = cfsgate(&["audit", "summary", "--audit-log", log], None);
    assert_eq!(out.status.code(), Some(1));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.starts_with("WARNING: chain broken at"), "{summary}");
    assert!(
        summary.contains(&format!("{} of the {total} records", total - 4)),
        "{summary}"
    );
    let out = cfsgate(&["audit", "summary", "--json", "--audit-log", log], None);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["chain"]["intact"], false);
    assert_eq!(summary["chain"]["problem"]["kind"], "reordered");
    assert_eq!(summary["chain"]["problem"]["line"], 5);

    // Edited: a denial turned into an admission on line 20.
    let mut edited = lines.clone();
    let changed = edited[19].replace("\"verdict\":\"deny\"", "\"verdict\":\"admit\"");
    assert_ne!(changed, edited[19]);
    edited[19] = &changed;
    write_lines(&fx.audit_log, &edited);
    let (code, text) = verify(&fx.audit_log);
    assert_eq!(code, Some(1));
    assert!(text.contains("line 20 (edited)"), "{text}");

    // Restored, intact again.
    std::fs::write(&fx.audit_log, &original).unwrap();
    assert_eq!(verify(&fx.audit_log).0, Some(0));
}
