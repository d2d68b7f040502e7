//! `cfsgate audit`: reading the admission audit log (see `cfsgate_verifier::audit`), and the
//! audit options every command that writes records takes ([`AuditOpts`]).
//!
//! | command | does |
//! |---|---|
//! | `audit verify [--json]` | checks the chain over the log and its rotated files (and, keyed, the MACs and the checkpoint); exit 1 naming the first break |
//! | `audit show [--since T] [--verdict admit\|deny] [--image TEXT] [--json]` | one line per matching record, records after a break marked; exit 1 when the chain is broken |
//! | `audit summary [--json]` | admissions and denials per image and per signer key, and the chain's verdict; exit 1 when broken |
//! | `audit init-key` | writes a new checkpoint key (0600) |

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cfsgate_policy::Timestamp;
use cfsgate_verifier::audit::checkpoint::DEFAULT_AUDIT_KEY;
use cfsgate_verifier::audit::journal::DEFAULT_JOURNAL_SOCKET;
use cfsgate_verifier::audit::view::{self, RecordFilter};
use cfsgate_verifier::audit::{
    verify_log, AuditKey, AuditRecord, AuditSink, AuditVerdict, ChainReport, VerifyOptions,
    DEFAULT_AUDIT_LOG,
};

/// Where and how decisions are recorded: flattened into every command that appends records.
#[derive(Clone, Debug, clap::Args)]
pub struct AuditOpts {
    /// The audit log every decision is appended to.
    #[arg(long, default_value = DEFAULT_AUDIT_LOG, value_name = "FILE")]
    pub audit_log: PathBuf,
    /// Rotate the log to FILE.NNNNNN before it would grow past SIZE (bytes; K, M, G suffixes).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub audit_max_size: Option<u64>,
    /// Key records and checkpoint the log with this HMAC key [default: /etc/cfsgate/audit.key
    /// when it exists].
    #[arg(long, value_name = "FILE")]
    pub audit_key: Option<PathBuf>,
    /// Also send every record to the journal (journald's native socket, or SOCKET).
    #[arg(long, value_name = "SOCKET", num_args = 0..=1, require_equals = true,
          default_missing_value = DEFAULT_JOURNAL_SOCKET)]
    pub audit_journal: Option<PathBuf>,
}

impl AuditOpts {
    /// The sink these options describe.
    #[allow(dead_code)] // the hooks take these options once they move to gate/
    pub fn sink(&self) -> AuditSink {
        AuditSink {
            log: self.audit_log.clone(),
            max_bytes: self.audit_max_size,
            key: resolve_key(self.audit_key.as_deref()),
            journal: self.audit_journal.clone(),
        }
    }

    /// The same options as command-line arguments, for the hooks a command configures.
    #[allow(dead_code)]
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--audit-log".into(), self.audit_log.display().to_string()];
        if let Some(max) = self.audit_max_size {
            args.extend(["--audit-max-size".into(), max.to_string()]);
        }
        if let Some(key) = &self.audit_key {
            args.extend(["--audit-key".into(), key.display().to_string()]);
        }
        if let Some(socket) = &self.audit_journal {
            args.push(format!("--audit-journal={}", socket.display()));
        }
        args
    }
}

/// The key named, else the default key when it exists.
fn resolve_key(named: Option<&Path>) -> Option<PathBuf> {
    named.map(Path::to_path_buf).or_else(|| {
        let default = Path::new(DEFAULT_AUDIT_KEY);
        default.exists().then(|| default.to_path_buf())
    })
}

fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let scale: u64 = match unit {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        _ => return Err(format!("{text:?}: not a size (a number with K, M or G)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: not a size"))?;
    n.checked_mul(scale)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{text:?}: out of range"))
}

/// `cfsgate audit …`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The audit log (its rotated files FILE.NNNNNN are read with it).
    #[arg(long, global = true, default_value = DEFAULT_AUDIT_LOG, value_name = "FILE")]
    pub audit_log: PathBuf,
    /// The checkpoint key [default: /etc/cfsgate/audit.key when it exists].
    #[arg(long, global = true, value_name = "FILE")]
    pub audit_key: Option<PathBuf>,
    /// Accept a log whose oldest rotated files were removed on purpose.
    #[arg(long, global = true)]
    pub allow_pruned: bool,
    #[command(subcommand)]
    pub command: AuditCmd,
}

/// The `audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Check the chain: every record present, in order, unedited, not cut (keyed logs).
    Verify {
        /// Print the report as JSON (docs/json.md).
        #[arg(long)]
        json: bool,
    },
    /// List decisions.
    Show(ShowArgs),
    /// Admissions and denials per image and per signer key.
    Summary {
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
    },
    /// Write a new random checkpoint key (refuses to replace one).
    InitKey,
}

/// `audit show` filters.
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
    /// Print one JSON document: the chain's verdict and the records (docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// `--verdict`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum VerdictFilter {
    /// Admissions.
    Admit,
    /// Denials.
    Deny,
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text)
}

/// The schema of `audit verify --json` (docs/json.md).
pub const VERIFY_SCHEMA: &str = "cfsgate.audit.verify/v1";

/// The chain is broken: already reported on stdout, exit 1.
#[derive(Debug)]
pub struct ChainBroken;

impl std::fmt::Display for ChainBroken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("audit chain broken")
    }
}

impl std::error::Error for ChainBroken {}

fn verdict_of(chain: &ChainReport) -> Result<()> {
    if chain.intact {
        Ok(())
    } else {
        Err(ChainBroken.into())
    }
}

/// One line naming the break, e.g. `chain broken at audit.jsonl.000003 line 17 (edited): …`.
fn break_line(chain: &ChainReport) -> Option<String> {
    let p = chain.problem.as_ref()?;
    let at = if p.line > 0 {
        format!("{} line {}", p.file.display(), p.line)
    } else {
        p.file.display().to_string()
    };
    let kind = serde_json::to_value(p.kind).ok()?;
    Some(format!(
        "chain broken at {at} ({}): {}",
        kind.as_str().unwrap_or("?"),
        p.message
    ))
}

/// Run `cfsgate audit`. A broken chain is reported on stdout and returned as [`ChainBroken`].
pub fn run(args: AuditArgs) -> Result<()> {
    let log = &args.audit_log;
    if let AuditCmd::InitKey = args.command {
        let path = args
            .audit_key
            .clone()
            .unwrap_or_else(|| DEFAULT_AUDIT_KEY.into());
        AuditKey::generate(&path)?;
        println!("wrote a new audit key to {} (mode 0600)", path.display());
        return Ok(());
    }
    let options = VerifyOptions {
        key: resolve_key(args.audit_key.as_deref())
            .map(|p| AuditKey::load(&p))
            .transpose()?,
        allow_pruned: args.allow_pruned,
    };
    match args.command {
        AuditCmd::InitKey => Ok(()),
        AuditCmd::Verify { json } => {
            let chain = verify_log(log, &options)?;
            if json {
                super::print_json(VERIFY_SCHEMA, &chain)?;
            } else {
                print_verify(&chain);
            }
            verdict_of(&chain)
        }
        AuditCmd::Show(show) => {
            let filter = RecordFilter {
                since: show.since,
                verdict: show.verdict.map(|v| match v {
                    VerdictFilter::Admit => AuditVerdict::Admit,
                    VerdictFilter::Deny => AuditVerdict::Deny,
                }),
                image: show.image.clone(),
            };
            let shown = view::show(log, &options, &filter)?;
            if show.json {
                println!("{}", serde_json::to_string(&shown)?);
                return verdict_of(&shown.chain);
            }
            if let Some(line) = break_line(&shown.chain) {
                println!("WARNING: {line}");
                println!("WARNING: records marked UNVERIFIED are not vouched for by the chain");
                eprintln!("cfsgate: audit {line}");
            }
            for r in &shown.records {
                let mark = if r.verified { "" } else { "UNVERIFIED " };
                println!("{mark}{}", render(&r.record));
            }
            verdict_of(&shown.chain)
        }
        AuditCmd::Summary { json } => {
            let summary = view::summarize(log, &options)
                .with_context(|| format!("reading {}", log.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                if let Some(line) = break_line(&summary.chain) {
                    println!("WARNING: {line}");
                    println!(
                        "WARNING: {} of the {} records are after the break and not vouched for\n",
                        summary.unverified, summary.records
                    );
                    eprintln!("cfsgate: audit {line}");
                }
                print_summary(&summary);
            }
            verdict_of(&summary.chain)
        }
    }
}

fn print_verify(chain: &ChainReport) {
    let log = chain.log.display();
    let files = chain.files.len();
    let range = match (chain.first_seq, chain.last_seq) {
        (Some(a), Some(b)) => format!(" (records {a}-{b})"),
        _ => String::new(),
    };
    match break_line(chain) {
        None => println!(
            "{log}: {} records{range} in {files} file(s), chain intact",
            chain.records
        ),
        Some(line) => println!("{log}: {line}"),
    }
    use cfsgate_verifier::audit::chain::CheckpointState;
    match chain.checkpoint {
        CheckpointState::Verified { seq } => println!(
            "keyed: {} record MACs verified, checkpoint at record {seq} reached",
            chain.macs_verified
        ),
        CheckpointState::Unchecked => {
            println!("keyed log, but no key given: MACs and checkpoint not checked (--audit-key)")
        }
        CheckpointState::None | CheckpointState::Failed => {}
    }
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

fn print_summary(s: &view::Summary) {
    println!("{} decisions\n\nper image:", s.records);
    for (image, c) in &s.per_image {
        println!("  {:>6} admitted {:>6} denied  {image}", c.admit, c.deny);
    }
    println!("\nper signer key:");
    for (key, c) in &s.per_key {
        println!("  {:>6} admitted {:>6} denied  {key}", c.admit, c.deny);
    }
}
