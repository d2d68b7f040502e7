//! `cfsgate audit`: reading the admission audit log (see `cfsgate_verifier::audit`).
//!
//! | command | does |
//! |---|---|
//! | `audit verify [--audit-log F]` | checks the hash chain; prints the record count, or names the first bad line (exit 1) |
//! | `audit show [--since TIME] [--verdict admit\|deny] [--image REF] [--json]` | one line per matching record (or the records as JSON lines) |
//! | `audit summary [--json]` | admissions and denials per image and per signer key |

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use cfsgate_policy::Timestamp;
use cfsgate_verifier::audit::{
    read_records, verify_chain, AuditError, AuditRecord, AuditVerdict, DEFAULT_AUDIT_LOG,
};

/// `cfsgate audit …`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The audit log.
    #[arg(long, global = true, default_value = DEFAULT_AUDIT_LOG, value_name = "FILE")]
    pub audit_log: PathBuf,
    #[command(subcommand)]
    pub command: AuditCmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain: every record present, in order, unedited.
    Verify,
    /// List decisions.
    Show(ShowArgs),
    /// Admissions and denials per image and per signer key.
    Summary {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Only records at or after this time (RFC 3339, e.g. 2025-01-31T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<Timestamp>,
    /// Only this verdict.
    #[arg(long, value_enum)]
    pub verdict: Option<VerdictFilter>,
    /// Only records whose image or reference contains this text.
    #[arg(long)]
    pub image: Option<String>,
    /// Print the matching records as JSON lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum VerdictFilter {
    Admit,
    Deny,
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text)
}

/// The outcome of `audit verify` when the chain is broken: already printed, exit 1.
#[derive(Debug)]
pub struct ChainBroken;

impl std::fmt::Display for ChainBroken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("audit chain broken")
    }
}

impl std::error::Error for ChainBroken {}

/// Run `cfsgate audit`. A broken chain is reported on stdout and returned as [`ChainBroken`].
pub fn run(args: AuditArgs) -> Result<()> {
    match args.command {
        AuditCmd::Verify => match verify_chain(&args.audit_log) {
            Ok(count) => {
                println!(
                    "{}: {count} records, chain intact",
                    args.audit_log.display()
                );
                Ok(())
            }
            Err(AuditError::Broken { line, reason, .. }) => {
                println!(
                    "{}: chain broken at line {line}: {reason}",
                    args.audit_log.display()
                );
                Err(ChainBroken.into())
            }
            Err(other) => Err(other.into()),
        },
        AuditCmd::Show(show) => {
            let records = read_records(&args.audit_log)?;
            for record in records.iter().filter(|r| matches(r, &show)) {
                if show.json {
                    println!("{}", serde_json::to_string(record)?);
                } else {
                    println!("{}", render(record));
                }
            }
            Ok(())
        }
        AuditCmd::Summary { json } => {
            let records = read_records(&args.audit_log)
                .with_context(|| format!("reading {}", args.audit_log.display()))?;
            let summary = summarize(&records);
            if json {
                println!("{}", serde_json::to_string_pretty(&summary_json(&summary))?);
            } else {
                print!("{}", render_summary(&summary));
            }
            Ok(())
        }
    }
}

fn matches(record: &AuditRecord, show: &ShowArgs) -> bool {
    if let Some(since) = show.since {
        if record.timestamp().is_none_or(|t| t < since) {
            return false;
        }
    }
    match (show.verdict, record.verdict) {
        (Some(VerdictFilter::Admit), AuditVerdict::Deny)
        | (Some(VerdictFilter::Deny), AuditVerdict::Admit) => return false,
        _ => {}
    }
    if let Some(needle) = &show.image {
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

/// `#SEQ TIME VERDICT STAGE container=ID IMAGE [as REF] digest=… signers=… : reasons`.
fn render(r: &AuditRecord) -> String {
    let mut line = format!(
        "#{} {} {}{} {} container={} {}",
        r.seq,
        r.time,
        r.verdict.as_str(),
        if r.would_reject {
            " (warn: would deny)"
        } else {
            ""
        },
        r.stage,
        r.container_id.as_deref().unwrap_or("-"),
        r.image
    );
    if let Some(reference) = &r.reference {
        line.push_str(&format!(" as {reference}"));
    }
    if let Some(d) = &r.composefs_digest {
        line.push_str(&format!(" composefs={d}"));
    }
    if !r.signers.is_empty() {
        line.push_str(&format!(" signers={}", r.signers.join(",")));
    }
    if let Some(v) = &r.verity {
        line.push_str(&format!(" verity={v}"));
    }
    if !r.reasons.is_empty() {
        line.push_str(&format!(": {}", r.reasons.join("; ")));
    }
    line
}

#[derive(Debug, Default)]
struct Counts {
    admit: u64,
    deny: u64,
}

#[derive(Debug, Default)]
struct Summary {
    records: u64,
    per_image: BTreeMap<String, Counts>,
    per_key: BTreeMap<String, Counts>,
}

fn summarize(records: &[AuditRecord]) -> Summary {
    let mut summary = Summary::default();
    for r in records {
        summary.records += 1;
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
    summary
}

fn summary_json(s: &Summary) -> serde_json::Value {
    let counts = |m: &BTreeMap<String, Counts>| {
        m.iter()
            .map(|(k, c)| {
                (
                    k.clone(),
                    serde_json::json!({"admit": c.admit, "deny": c.deny}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
    };
    serde_json::json!({
        "records": s.records,
        "per_image": counts(&s.per_image),
        "per_key": counts(&s.per_key),
    })
}

fn render_summary(s: &Summary) -> String {
    let mut out = format!("{} decisions\n\nper image:\n", s.records);
    for (image, c) in &s.per_image {
        out.push_str(&format!(
            "  {:>6} admitted {:>6} denied  {image}\n",
            c.admit, c.deny
        ));
    }
    out.push_str("\nper signer key:\n");
    for (key, c) in &s.per_key {
        out.push_str(&format!(
            "  {:>6} admitted {:>6} denied  {key}\n",
            c.admit, c.deny
        ));
    }
    out
}
