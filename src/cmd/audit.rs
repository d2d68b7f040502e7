//! `cfsgate audit`: reading the admission audit log (see `cfsgate_verifier::audit`; the text
//! views are `cfsgate_verifier::audit::text`).
//!
//! | command | does |
//! |---|---|
//! | `audit verify [--json]` | checks the chain over the log and its rotated files (and, keyed, the MACs and the checkpoint); exit 1 naming the first break |
//! | `audit show [--since T] [--verdict admit\|deny] [--image TEXT] [--json]` | one line per matching record, records after a break marked; exit 1 when the chain is broken |
//! | `audit summary [--json]` | admissions and denials per image and per signer key, and the chain's verdict; exit 1 when broken |
//! | `audit init-key` | writes a new checkpoint key (0600) |

use std::path::PathBuf;

use anyhow::{Context, Result};
use cfsgate_policy::Timestamp;
use cfsgate_verifier::audit::checkpoint::DEFAULT_AUDIT_KEY;
use cfsgate_verifier::audit::text::{self, break_line, key_path_or_default};
use cfsgate_verifier::audit::view::{self, RecordFilter};
use cfsgate_verifier::audit::{
    verify_log, AuditKey, AuditVerdict, ChainReport, VerifyOptions, DEFAULT_AUDIT_LOG,
};

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

/// The chain's verdict, a break returned as `super::Rejected` (reported on stdout, exit 1); with
/// `note`, the break is also named on stderr (the text listings do not say it).
fn verdict_of(chain: &ChainReport, note: bool) -> Result<()> {
    if let Some(line) = break_line(chain).filter(|_| note) {
        eprintln!("cfsgate: audit {line}");
    }
    super::verdict(chain.intact)
}

/// Run `cfsgate audit`. A broken chain is reported on stdout and returned as `super::Rejected`.
pub fn run(args: AuditArgs) -> Result<()> {
    let log = &args.audit_log;
    // How the chain is read: the key (when there is one) is loaded by the commands that read.
    let options = || -> Result<VerifyOptions> {
        let key = key_path_or_default(args.audit_key.as_deref());
        Ok(VerifyOptions {
            key: key.map(|p| AuditKey::load(&p)).transpose()?,
            allow_pruned: args.allow_pruned,
        })
    };
    match &args.command {
        AuditCmd::InitKey => {
            let path = args
                .audit_key
                .clone()
                .unwrap_or_else(|| DEFAULT_AUDIT_KEY.into());
            AuditKey::generate(&path)?;
            println!("wrote a new audit key to {} (mode 0600)", path.display());
            Ok(())
        }
        AuditCmd::Verify { json } => {
            let chain = verify_log(log, &options()?)?;
            if *json {
                super::print_json(VERIFY_SCHEMA, &chain)?;
            } else {
                print!("{}", text::verify_text(&chain));
            }
            verdict_of(&chain, false)
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
            let shown = view::show(log, &options()?, &filter)?;
            if show.json {
                println!("{}", serde_json::to_string(&shown)?);
            } else {
                print!("{}", text::show_text(&shown));
            }
            verdict_of(&shown.chain, !show.json)
        }
        AuditCmd::Summary { json } => {
            let summary = view::summarize(log, &options()?)
                .with_context(|| format!("reading {}", log.display()))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", text::summary_text(&summary));
            }
            verdict_of(&summary.chain, !*json)
        }
    }
}
