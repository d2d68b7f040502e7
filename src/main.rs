//! `cfsgate`: the command line. Arguments, output and progress only; the logic is in the crates.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use cmd::lazy::Lazy;

mod cmd;

/// composefs images gated by signature policy: build, store, mount by trusted digest.
#[derive(Parser, Debug)]
#[command(name = "cfsgate", version, about, propagate_version = true)]
struct Cli {
    /// The repository (object store) every command uses: objects/, images/, refs/
    /// [default: /var/lib/cfsgate]. Accepted before or after the subcommand.
    #[arg(long, global = true, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build a composefs image from a directory or a dump file (drop-in for mkcomposefs).
    Mkcomposefs(Lazy<cmd::mkcomposefs::MkcomposefsArgs>),
    #[command(flatten)]
    Store(cmd::store::StoreCmd),
    /// Import an OCI image (oci:PATH[:TAG], oci:PATH@sha256:…, dir:PATH, docker://…) into the repository.
    Import(Lazy<cmd::oci::ImportArgs>),
    /// Pull an image from a registry (docker://HOST/NAME[:TAG|@DIGEST]) into the repository.
    Pull(Lazy<cmd::registry::PullArgs>),
    /// Print the composefs digest of an OCI image without writing anything.
    ComputeId(Lazy<cmd::oci::ComputeIdArgs>),
    /// Seal an OCI image: add its composefs digest to the config, as a new manifest and tag.
    Seal(Lazy<cmd::oci::SealArgs>),
    /// Inspect composefs images (like composefs-info).
    #[command(subcommand)]
    Info(cmd::info::InfoCmd),
    /// Mount an image by its trusted digest (or a ref naming one).
    Mount(Lazy<cmd::mount::MountArgs>),
    /// Unmount what `cfsgate mount` mounted, cleaning up everything it made.
    Umount(Lazy<cmd::mount::UmountArgs>),
    /// mount.composefs-compatible helper: `mount -t composefs IMAGE DIR -o ...`.
    MountHelper(Lazy<cmd::mount::MountHelperArgs>),
    /// Signing keys: generate a key pair, print a key's id.
    #[command(subcommand)]
    Key(cmd::key::KeyCmd),
    /// Trusted keys in the Linux kernel keyring.
    Keyring(cmd::key::KeyringArgs),
    /// Verify an image's cosign signatures against trusted keys (exit 0 only when accepted).
    Verify(Lazy<cmd::registry::VerifyCmd>),
    /// Sign an image: a cosign simple-signing signature stored where the tools look.
    Sign(Lazy<cmd::sign::SignCmd>),
    /// Trust policies: check (lint) a policy file, explain a verdict step by step.
    Policy(cmd::policy::PolicyArgs),
    /// OCI runtime hooks: admit (and mount) or refuse a container before it starts.
    #[command(subcommand)]
    Hook(cmd::hook::HookCmd),
    /// Container mounts made by the hooks: list them, clean up those of containers that are gone.
    #[command(subcommand)]
    Mounts(cmd::hook::MountsCmd),
    /// Install the podman/CRI-O hooks.d files that run cfsgate.
    InstallHooks(Lazy<cmd::hook::InstallHooksArgs>),
    /// Verify, mount and write an OCI bundle (config.json with cfsgate's hooks) for runc/crun.
    Bundle(Lazy<cmd::bundle::BundleArgs>),
    /// The tamper-evident audit log: verify its chain, show and summarise decisions.
    Audit(cmd::audit::AuditArgs),
    /// What this node can do and what is set up for the gate, with a remedy for each failure.
    Doctor(Lazy<cmd::doctor::DoctorArgs>),
    /// Print a shell completion script (e.g. `cfsgate completions bash > /etc/bash_completion.d/cfsgate`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (cfsgate.1 and one per subcommand) into DIR.
    Manpages {
        /// The directory (created if missing).
        dir: PathBuf,
    },
    /// Sigstore bundles: verify one offline (sigstore-conformance's CLI protocol).
    Sigstore(cmd::sigstore::SigstoreArgs),
}

/// Invoked as `mount.composefs` (a symlink to cfsgate), mount(8) passes `IMAGE DIR -o OPTS`.
#[derive(Parser, Debug)]
#[command(name = "mount.composefs")]
struct MountComposefs {
    #[command(flatten)]
    args: cmd::mount::MountHelperArgs,
}

/// Where the repository lives unless `--repo` says otherwise.
const DEFAULT_REPO: &str = cfsgate_image::store::DEFAULT_REPO_PATH;

fn repo_path(repo: Option<PathBuf>) -> PathBuf {
    repo.unwrap_or_else(|| DEFAULT_REPO.into())
}

/// A verdict of "rejected": already explained on stdout, so the exit code alone reports it.
#[derive(Debug)]
struct Rejected;

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rejected")
    }
}

impl std::error::Error for Rejected {}

fn main() -> ExitCode {
    let argv0 = std::env::args().next().unwrap_or_default();
    let result = if cmd::mount::is_mount_helper_name(&argv0) {
        cmd::mount::run_mount_helper(MountComposefs::parse().args)
    } else {
        run(Cli::parse())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Rejected>() || e.is::<cmd::audit::ChainBroken>() => ExitCode::from(1),
        Err(e)
            if e.downcast_ref::<cfsgate_gate::GateError>()
                .is_some_and(cfsgate_gate::GateError::is_denial) =>
        {
            eprintln!("cfsgate: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("cfsgate: {}", cmd::error_chain(&e));
            // 2: could not evaluate / could not do it (distinct from a rejection, 1).
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Mkcomposefs(Lazy(args)) => cmd::mkcomposefs::run(args),
        Command::Info(c) => cmd::info::run(c),
        Command::Import(Lazy(args)) => cmd::oci::run_import(&repo_path(cli.repo), args),
        Command::Pull(Lazy(args)) => cmd::registry::run_pull(&repo_path(cli.repo), args),
        Command::ComputeId(Lazy(args)) => cmd::oci::run_compute_id(args),
        Command::Seal(Lazy(args)) => cmd::oci::run_seal(args),
        Command::Store(c) => cmd::store::run(&repo_path(cli.repo), c),
        Command::Mount(Lazy(mut args)) => {
            if let Some(repo) = cli.repo {
                args.repo = repo;
            }
            cmd::mount::run_mount(args)
        }
        Command::Umount(Lazy(args)) => cmd::mount::run_umount(args),
        Command::MountHelper(Lazy(args)) => cmd::mount::run_mount_helper(args),
        Command::Key(c) => cmd::key::run_key(c),
        Command::Keyring(args) => cmd::key::run_keyring(args),
        Command::Verify(Lazy(mut args)) => {
            args.verify.repo = cli.repo;
            if cmd::registry::run_verify(args)? {
                Ok(())
            } else {
                Err(Rejected.into())
            }
        }
        Command::Sign(Lazy(args)) => cmd::sign::run_sign(args),
        Command::Hook(mut c) => {
            if let cmd::hook::HookCmd::Precreate(args) = &mut c {
                args.gate.repo = repo_path(cli.repo);
            }
            cmd::hook::run_hook(c)
        }
        Command::Mounts(c) => cmd::hook::run_mounts(c),
        Command::InstallHooks(Lazy(mut args)) => {
            // The hooks use the repository this command was given.
            if let Some(repo) = cli.repo {
                let repo = std::path::absolute(&repo)?;
                args.args
                    .splice(0..0, ["--repo".to_string(), repo.display().to_string()]);
            }
            cmd::hook::run_install_hooks(args)
        }
        Command::Bundle(Lazy(mut args)) => {
            args.gate.repo = repo_path(cli.repo);
            cmd::bundle::run_bundle(args)
        }
        Command::Audit(args) => cmd::audit::run(args),
        Command::Doctor(Lazy(args)) => {
            if cmd::doctor::run(&repo_path(cli.repo), &args)? {
                Ok(())
            } else {
                Err(Rejected.into())
            }
        }
        Command::Completions { shell } => {
            cmd::manuals::completions(shell, Cli::command());
            Ok(())
        }
        Command::Manpages { dir } => cmd::manuals::manpages(&dir, Cli::command()),
        Command::Sigstore(args) => cmd::sigstore::run(&args),
        Command::Policy(args) => {
            if cmd::policy::run_policy(&args, cli.repo.as_deref())? {
                Ok(())
            } else {
                Err(Rejected.into())
            }
        }
    }
}
