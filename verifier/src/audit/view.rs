//! Views of a log for people and programs: records filtered and marked with whether the chain
//! vouches for them ([`show`]), and counts per image and signer ([`summarize`]). Both carry the
//! chain's verdict, so no view of a broken log looks like a sound one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cfsgate_policy::Timestamp;
use serde::Serialize;

use super::chain::{verify_log, ChainProblem, ChainReport, ProblemKind, VerifyOptions};
use super::files;
use super::{read_records, AuditError, AuditRecord, AuditVerdict, LocatedRecord};

/// Which records to show.
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    /// Only records at or after this time.
    pub since: Option<Timestamp>,
    /// Only this verdict.
    pub verdict: Option<AuditVerdict>,
    /// Only records whose image or reference contains this text.
    pub image: Option<String>,
}

impl RecordFilter {
    /// Whether `record` passes.
    pub fn matches(&self, record: &AuditRecord) -> bool {
        if let Some(since) = self.since {
            if record.timestamp().is_none_or(|t| t < since) {
                return false;
            }
        }
        if self.verdict.is_some_and(|v| v != record.verdict) {
            return false;
        }
        if let Some(needle) = &self.image {
            let in_reference = record
                .reference
                .as_deref()
                .is_some_and(|r| r.contains(needle.as_str()));
            if !record.image.contains(needle.as_str()) && !in_reference {
                return false;
            }
        }
        true
    }
}

/// A shown record.
#[derive(Clone, Debug, Serialize)]
pub struct ShownRecord {
    /// The file it is in.
    pub file: PathBuf,
    /// Its 1-based line.
    pub line: u64,
    /// False for records at or after the chain's break: the chain does not vouch for them.
    pub verified: bool,
    /// The record as stored.
    pub record: AuditRecord,
}

/// `audit show`'s result (the `--json` document, schema `cfsgate.audit.show/v1`).
#[derive(Clone, Debug, Serialize)]
pub struct Shown {
    /// `cfsgate.audit.show/v1`.
    pub schema: &'static str,
    /// The chain's verdict over the whole log.
    pub chain: ChainReport,
    /// The matching records, oldest first.
    pub records: Vec<ShownRecord>,
}

/// Whether the chain vouches for the record at `file`:`line` (before the problem).
fn before_problem(
    order: &[PathBuf],
    problem: Option<&ChainProblem>,
    file: &Path,
    line: u64,
) -> bool {
    let Some(p) = problem else { return true };
    // Problems about the log as a whole (a cut, the checkpoint) leave present records sound.
    if matches!(p.kind, ProblemKind::Cut | ProblemKind::CheckpointInvalid) || p.line == 0 {
        return true;
    }
    let index = |f: &Path| order.iter().position(|o| o == f);
    match (index(file), index(&p.file)) {
        (Some(a), Some(b)) => a < b || (a == b && line < p.line),
        _ => false,
    }
}

/// Read, verify and filter the log.
pub fn show(
    log: &Path,
    options: &VerifyOptions,
    filter: &RecordFilter,
) -> Result<Shown, AuditError> {
    let chain = verify_log(log, options)?;
    let order: Vec<PathBuf> = files::log_files(log)?.into_iter().map(|f| f.path).collect();
    let records = read_records(log)?
        .into_iter()
        .filter(|r| filter.matches(&r.record))
        .map(|LocatedRecord { file, line, record }| ShownRecord {
            verified: before_problem(&order, chain.problem.as_ref(), &file, line),
            file,
            line,
            record,
        })
        .collect();
    Ok(Shown {
        schema: "cfsgate.audit.show/v1",
        chain,
        records,
    })
}

/// Admissions and denials.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Counts {
    /// Admitted.
    pub admit: u64,
    /// Denied.
    pub deny: u64,
}

/// `audit summary`'s result (the `--json` document, schema `cfsgate.audit.summary/v1`).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// `cfsgate.audit.summary/v1`.
    pub schema: &'static str,
    /// The chain's verdict over the whole log.
    pub chain: ChainReport,
    /// Records counted (every record read, sound or not).
    pub records: u64,
    /// Records at or after the chain's break, counted but not vouched for.
    pub unverified: u64,
    /// Per image (the reference it was judged as, else the image).
    pub per_image: BTreeMap<String, Counts>,
    /// Per accepted signer key id (`(no accepted signer)` for records without one).
    pub per_key: BTreeMap<String, Counts>,
}

/// Read, verify and count the log.
pub fn summarize(log: &Path, options: &VerifyOptions) -> Result<Summary, AuditError> {
    let shown = show(log, options, &RecordFilter::default())?;
    let mut summary = Summary {
        schema: "cfsgate.audit.summary/v1",
        chain: shown.chain,
        records: 0,
        unverified: 0,
        per_image: BTreeMap::new(),
        per_key: BTreeMap::new(),
    };
    for shown in &shown.records {
        let r = &shown.record;
        summary.records += 1;
        if !shown.verified {
            summary.unverified += 1;
        }
        let image = r.reference.clone().unwrap_or_else(|| r.image.clone());
        let bump = |c: &mut Counts| match r.verdict {
            AuditVerdict::Admit => c.admit += 1,
            AuditVerdict::Deny => c.deny += 1,
        };
        bump(summary.per_image.entry(image).or_default());
        if r.signers.is_empty() {
            bump(
                summary
                    .per_key
                    .entry("(no accepted signer)".into())
                    .or_default(),
            );
        }
        for key in &r.signers {
            bump(summary.per_key.entry(key.clone()).or_default());
        }
    }
    Ok(summary)
}
