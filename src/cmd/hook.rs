//! `cfsgate hook …`, `cfsgate mounts …` and `cfsgate install-hooks`: arguments, stdin and
//! stdout of the runtime gate. The logic (decision, mounts, admission records, the
//! createRuntime check, gc, hooks.d files) is in the `cfsgate-gate` crate; docs/hooks.md
//! describes the stages.
//!
//! A precreate refusal whose stderr went to /dev/null (podman 4.3 discards it) is also written,
//! as one escaped line, to the engine's stderr (`--no-engine-stderr` turns this off).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cfsgate_gate::hooksd::{install_hooks, HooksSetup};
use cfsgate_gate::{gc, stages, GateConfig};
use cfsgate_gate::{DEFAULT_HOOKS_DIR, DEFAULT_RUN_DIR, DEFAULT_TIMEOUT_SECS};
use cfsgate_image::store::DEFAULT_REPO_PATH;
use cfsgate_mounter::VerityMode;
use cfsgate_verifier::audit::journal::DEFAULT_JOURNAL_SOCKET;
use cfsgate_verifier::audit::{parse_size, AuditSink, DEFAULT_AUDIT_LOG};

/// Options shared by every deciding command.
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// The trust policy.
    #[arg(long, default_value = cfsgate_policy::DEFAULT_POLICY_PATH, value_name = "FILE")]
    pub policy: PathBuf,
    /// Repository holding images/<digest>, objects/ and refs/: the global `--repo`.
    #[arg(skip = PathBuf::from(DEFAULT_REPO_PATH))]
    pub repo: PathBuf,
    #[command(flatten)]
    pub audit: AuditArgs,
    /// Per-container state and mounts.
    #[arg(long, default_value = DEFAULT_RUN_DIR, value_name = "DIR")]
    pub run_dir: PathBuf,
    /// Verity mode when the policy does not require one: kernel, userspace or none
    /// [default: kernel when the store supports fs-verity, else userspace].
    #[arg(long)]
    pub verity: Option<VerityMode>,
    /// Deny when the decision (evaluation and mount) takes longer than this many seconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_SECS, value_name = "SECONDS")]
    pub timeout: u64,
    /// Fetch the image's sigstore bundles from the registry its name points at (referrers API,
    /// else the sha256-<hex> tag) and keep them in the repository; kept ones count either way.
    #[arg(long)]
    pub fetch_bundles: bool,
    /// registries.conf for --fetch-bundles [default: the usual lookup].
    #[arg(long, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
}

impl GateArgs {
    /// The library's view of these options.
    pub fn config(&self) -> GateConfig {
        GateConfig {
            policy: self.policy.clone(),
            repo: self.repo.clone(),
            audit: self.audit.sink(),
            run_dir: self.run_dir.clone(),
            verity: self.verity,
            timeout_secs: self.timeout,
            annotations: false,
            fetch_bundles: self.fetch_bundles,
            registries_conf: self.registries_conf.clone(),
        }
    }
}

/// `cfsgate hook …`.
#[derive(Debug, clap::Subcommand)]
pub enum HookCmd {
    /// podman precreate: runtime config on stdin, the config to use on stdout.
    Precreate(PrecreateArgs),
    /// createRuntime/prestart: refuse unless the root is the admitted composefs mount.
    CreateRuntime(CheckArgs),
    /// poststop: unmount and remove the container's mount and state (its owner's only).
    Poststop(CheckArgs),
}

/// Options of `hook precreate`.
#[derive(Debug, Clone, clap::Args)]
pub struct PrecreateArgs {
    #[command(flatten)]
    pub gate: GateArgs,
    /// Do not copy a refusal to the engine's stderr (the parent's fd 2) when our own stderr is
    /// /dev/null (podman 4.3 and later releases without the `run.oci.hooks.stderr` support for
    /// precreate hooks give them /dev/null; see docs/hooks.md).
    #[arg(long)]
    pub no_engine_stderr: bool,
    /// Opt-in annotation mode: judge the image the annotation io.cfsgate.image names (as
    /// io.cfsgate.reference), which must be the container's own when podman's records are
    /// found; without it the image is the one podman's records say the container starts.
    #[arg(long)]
    pub annotations: bool,
}

/// Where and how decisions are recorded: every command that appends records, and the hook
/// command lines `install-hooks` and `bundle` write (docs/hooks.md).
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// The audit log every decision is appended to.
    #[arg(long, default_value = DEFAULT_AUDIT_LOG, value_name = "FILE")]
    pub audit_log: PathBuf,
    /// Rotate the log to FILE.NNNNNN before it would grow past SIZE (bytes; K, M, G suffixes).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub audit_max_size: Option<u64>,
    /// Key the records and checkpoint the log with this HMAC key [default:
    /// /etc/cfsgate/audit.key when it exists].
    #[arg(long, value_name = "FILE")]
    pub audit_key: Option<PathBuf>,
    /// Also send every record to the journal (journald's native socket, or SOCKET).
    #[arg(long, value_name = "SOCKET", num_args = 0..=1, require_equals = true,
          default_missing_value = DEFAULT_JOURNAL_SOCKET)]
    pub audit_journal: Option<PathBuf>,
}

impl AuditArgs {
    /// The sink these options describe.
    pub fn sink(&self) -> AuditSink {
        AuditSink::configured(
            &self.audit_log,
            self.audit_max_size,
            self.audit_key.as_deref(),
            self.audit_journal.clone(),
        )
    }
}

/// Options of the stages and commands that check or clean up (createRuntime, poststop,
/// `mounts gc`).
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub audit: AuditArgs,
    /// Per-container state and mounts.
    #[arg(long, default_value = DEFAULT_RUN_DIR, value_name = "DIR")]
    pub run_dir: PathBuf,
}

/// `cfsgate mounts …`.
#[derive(Debug, clap::Subcommand)]
pub enum MountsCmd {
    /// Unmount and remove the mounts of containers that are gone (one audit record each).
    Gc(CheckArgs),
    /// List admitted container mounts.
    List {
        #[arg(long, default_value = DEFAULT_RUN_DIR, value_name = "DIR")]
        run_dir: PathBuf,
        /// Print JSON (docs/json.md).
        #[arg(long)]
        json: bool,
    },
}

/// `cfsgate install-hooks`.
#[derive(Debug, clap::Args)]
pub struct InstallHooksArgs {
    /// hooks.d directory to write into.
    #[arg(long, default_value = DEFAULT_HOOKS_DIR)]
    pub dir: PathBuf,
    /// Gate every container (the default; kept for older scripts).
    #[arg(long, conflicts_with = "annotations")]
    pub always: bool,
    /// Opt-in annotation mode: only containers annotated with io.cfsgate.image, judged by
    /// that annotation (precreate gets --annotations).
    #[arg(long)]
    pub annotations: bool,
    #[command(flatten)]
    pub audit: AuditArgs,
    /// Per-container state and mounts.
    #[arg(long, default_value = DEFAULT_RUN_DIR, value_name = "DIR")]
    pub run_dir: PathBuf,
    /// Extra arguments for `hook precreate` (e.g. --arg=--policy --arg=FILE).
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Run `cfsgate hook …`; precreate judges images of the repository `repo`.
pub fn run_hook(cmd: HookCmd, repo: PathBuf) -> Result<()> {
    let stdin = std::io::stdin().lock();
    match cmd {
        HookCmd::Precreate(args) => run_precreate(&args, repo, stdin),
        HookCmd::CreateRuntime(a) => {
            Ok(stages::create_runtime(&a.run_dir, &a.audit.sink(), stdin)?)
        }
        HookCmd::Poststop(a) => Ok(stages::poststop(&a.run_dir, &a.audit.sink(), stdin)?),
    }
}

/// `hook precreate`: any error is a refusal (exit 1, the reason on stderr; also on the
/// engine's when it discarded ours, unless `--no-engine-stderr`).
fn run_precreate(args: &PrecreateArgs, repo: PathBuf, stdin: impl Read) -> Result<()> {
    let config = GateConfig {
        annotations: args.annotations,
        repo,
        ..args.gate.config()
    };
    let precreated = stages::precreate(&config, stdin, !args.no_engine_stderr)?;
    let mut out = std::io::stdout().lock();
    // The config on one line (a JSON value's Display is its compact text).
    writeln!(out, "{}", precreated.config.value)?;
    out.flush()?;
    if let Some(warning) = precreated.warning() {
        eprintln!("cfsgate: {warning}");
    }
    Ok(())
}

/// The schema of `mounts list --json` (docs/json.md).
pub const MOUNTS_LIST_SCHEMA: &str = "cfsgate.mounts.list/v1";

/// Run `cfsgate mounts …`.
pub fn run_mounts(cmd: MountsCmd) -> Result<()> {
    match cmd {
        MountsCmd::List { run_dir, json } => {
            let listed = gc::list(&run_dir)?;
            if json {
                let doc = serde_json::json!({ "mounts": listed });
                return super::print_json(MOUNTS_LIST_SCHEMA, &doc);
            }
            for listed in listed {
                println!("{}", listed.line());
            }
            Ok(())
        }
        MountsCmd::Gc(args) => {
            let report = gc::gc(&args.run_dir, &args.audit.sink())?;
            for state in &report.removed {
                println!("removed {}", state.display());
            }
            if !report.problems.is_empty() {
                bail!("{}", report.problems.join("; "));
            }
            Ok(())
        }
    }
}

/// Run `cfsgate install-hooks`: three files (precreate, createRuntime, poststop); precreate
/// gets `--repo` when the global one was given.
pub fn run_install_hooks(args: InstallHooksArgs, repo: Option<&Path>) -> Result<()> {
    let binary = std::env::current_exe().context("locating the cfsgate binary")?;
    let setup = HooksSetup {
        binary: &binary,
        annotations: args.annotations,
        audit: &args.audit.sink(),
        run_dir: &args.run_dir,
        repo,
        precreate_extra: &args.args,
    };
    for path in install_hooks(&args.dir, &setup)? {
        println!("{}", path.display());
    }
    Ok(())
}
