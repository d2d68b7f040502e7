//! `cfsgate policy check FILE`: a policy file validated and linted, as the text printed.
//!
//! The text is one line per finding, `FILE:LINE:COL: severity: message`, then `FILE: N
//! finding(s), E error(s)`; a file that does not parse gets its error (`FILE:LINE:COL: …`) and
//! `FILE: invalid policy` instead. The policy passes when it parses and no finding is an error
//! (warnings are allowed).

use std::fmt::Write as _;
use std::path::Path;

use crate::{lint, load_policy_file, LoadError, Severity};

/// What checking a policy file found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// The lines to print (see the module docs), each ending in a newline.
    pub text: String,
    /// The policy parses and no finding is an error.
    pub passed: bool,
}

/// Check the policy file at `file`, whose relative key paths are judged from `/`; `Err` only
/// when the file cannot be read.
pub fn check_policy_file(file: &Path) -> Result<CheckReport, LoadError> {
    let policy = match load_policy_file(file) {
        Ok(policy) => policy,
        Err(LoadError::Invalid { path, error }) => {
            let path = path.display();
            return Ok(CheckReport {
                text: format!("{path}:{error}\n{path}: invalid policy\n"),
                passed: false,
            });
        }
        Err(e) => return Err(e),
    };
    let findings = lint(&policy, Path::new("/"));
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let mut text = String::new();
    for finding in &findings {
        let _ = writeln!(text, "{}:{finding}", file.display());
    }
    let _ = writeln!(
        text,
        "{}: {} finding(s), {errors} error(s)",
        file.display(),
        findings.len()
    );
    Ok(CheckReport {
        text,
        passed: errors == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_file_a_file_with_errors_and_a_clean_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        let invalid = write("invalid.json", "{\"default\": [}");
        let report = check_policy_file(&invalid).expect("read");
        assert!(!report.passed);
        assert!(
            report
                .text
                .ends_with(&format!("\n{}: invalid policy\n", invalid.display())),
            "{}",
            report.text
        );
        let relative = write(
            "relative.json",
            "{\"default\": [{\"type\": \"sigstoreSigned\", \"keyPath\": \"relative.pub\"}]}",
        );
        let report = check_policy_file(&relative).expect("read");
        assert!(!report.passed, "{}", report.text);
        assert!(report.text.starts_with(&format!("{}:", relative.display())));
        let clean = write("clean.json", "{\"default\": [{\"type\": \"reject\"}]}");
        let report = check_policy_file(&clean).expect("read");
        assert!(report.passed, "{}", report.text);
        assert_eq!(
            report.text,
            format!("{}: 0 finding(s), 0 error(s)\n", clean.display())
        );
        let missing = check_policy_file(&dir.path().join("none.json"));
        assert!(matches!(missing, Err(LoadError::Read { .. })));
    }
}
