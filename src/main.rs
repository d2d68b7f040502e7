//! `cfsgate`: the command line. Arguments, output and progress only; the logic is in the crates.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use cmd::lazy::Lazy;
use cmd::{verdict, Rejected};

mod cmd;

/// composefs images gated by signature policy: build, store, mount by trusted digest.
#[derive(Parser, Debug)]
#[command(name = "cfsgate", version, about, propagate_version = true)]
struct Cli<C: Subcommand = Command> {
    /// The repository (object store) every command uses: objects/, images/, refs/ [default: /var/lib/cfsgate]. Accepted before or after the subcommand
    #[arg(long, global = true, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(subcommand)]
    command: C,
}

/// `hook`'s description (shared by [`Cli`] and [`FastCli`]).
const HOOK_ABOUT: &str =
    "OCI runtime hooks: admit (and mount) or refuse a container before it starts";
/// `verify`'s description (shared by [`Cli`] and [`FastVerify`]).
const VERIFY_ABOUT: &str =
    "Verify an image's cosign signatures against trusted keys (exit 0 only when accepted)";

/// The parsers of the commands run on a container's start path: `hook …` (three runs per
/// container) and `verify` ([`FastVerify`]). clap's derive builds every subcommand's arguments
/// before it reads the command line, ~0.3 ms of a 4 ms hook on this VM for the other ~30
/// subcommands; each of these parsers holds one. Chosen when the first argument names its
/// subcommand, so what they print (help, errors, version) is the full parser's: the tests below
/// compare them.
type FastCli = Cli<FastCommand>;

/// The subcommands of [`FastCli`], as [`Command`] declares them.
#[derive(Subcommand, Debug)]
enum FastCommand {
    #[command(subcommand, about = HOOK_ABOUT)]
    Hook(cmd::hook::HookCmd),
}

/// `verify` alone: a verify run does not build the three hook subcommands' arguments either
/// (`hook` has subcommands, so [`Lazy`] cannot defer them).
#[derive(Subcommand, Debug)]
enum FastVerify {
    #[command(about = VERIFY_ABOUT)]
    Verify(Lazy<cmd::registry::VerifyCmd>),
}

impl From<FastCommand> for Command {
    fn from(fast: FastCommand) -> Command {
        let FastCommand::Hook(c) = fast;
        Command::Hook(c)
    }
}

impl From<FastVerify> for Command {
    fn from(FastVerify::Verify(args): FastVerify) -> Command {
        Command::Verify(args)
    }
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
    #[command(about = VERIFY_ABOUT)]
    Verify(Lazy<cmd::registry::VerifyCmd>),
    /// Sign an image: a cosign simple-signing signature stored where the tools look.
    Sign(Lazy<cmd::sign::SignCmd>),
    /// Trust policies: check (lint) a policy file, explain a verdict step by step.
    Policy(cmd::policy::PolicyArgs),
    #[command(subcommand, about = HOOK_ABOUT)]
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

/// The repository: `--repo`, else the default.
fn repo_path(repo: Option<PathBuf>) -> PathBuf {
    repo.unwrap_or_else(|| cfsgate_image::store::DEFAULT_REPO_PATH.into())
}

fn main() -> ExitCode {
    let argv0 = std::env::args().next().unwrap_or_default();
    let first = std::env::args_os().nth(1);
    let result = if cfsgate_mounter::helper::is_mount_helper_name(&argv0) {
        cmd::mount::run_mount_helper(MountComposefs::parse().args)
    } else if first.as_deref() == Some("hook".as_ref()) {
        run(FastCli::parse())
    } else if first.as_deref() == Some("verify".as_ref()) {
        run(Cli::<FastVerify>::parse())
    } else {
        run(<Cli>::parse())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Rejected>() => ExitCode::from(1),
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

fn run(cli: Cli<impl Subcommand + Into<Command>>) -> anyhow::Result<()> {
    match cli.command.into() {
        Command::Mkcomposefs(Lazy(args)) => cmd::mkcomposefs::run(args),
        Command::Info(c) => cmd::info::run(c),
        Command::Import(Lazy(args)) => cmd::oci::run_import(&repo_path(cli.repo), args),
        Command::Pull(Lazy(args)) => cmd::registry::run_pull(&repo_path(cli.repo), args),
        Command::ComputeId(Lazy(args)) => cmd::oci::run_compute_id(args),
        Command::Seal(Lazy(args)) => cmd::oci::run_seal(args),
        Command::Store(c) => cmd::store::run(&repo_path(cli.repo), c),
        Command::Mount(Lazy(args)) => cmd::mount::run_mount(args, &repo_path(cli.repo)),
        Command::Umount(Lazy(args)) => cmd::mount::run_umount(args),
        Command::MountHelper(Lazy(args)) => cmd::mount::run_mount_helper(args),
        Command::Key(c) => cmd::key::run_key(c),
        Command::Keyring(args) => cmd::key::run_keyring(args),
        Command::Verify(Lazy(mut args)) => {
            args.verify.repo = cli.repo;
            verdict(cmd::registry::run_verify(args)?)
        }
        Command::Sign(Lazy(args)) => cmd::sign::run_sign(args),
        Command::Hook(c) => cmd::hook::run_hook(c, repo_path(cli.repo)),
        Command::Mounts(c) => cmd::hook::run_mounts(c),
        Command::InstallHooks(Lazy(args)) => {
            cmd::hook::run_install_hooks(args, cli.repo.as_deref())
        }
        Command::Bundle(Lazy(mut args)) => {
            args.gate.repo = repo_path(cli.repo);
            cmd::bundle::run_bundle(args)
        }
        Command::Audit(args) => cmd::audit::run(args),
        Command::Doctor(Lazy(args)) => verdict(cmd::doctor::run(&repo_path(cli.repo), &args)?),
        Command::Completions { shell } => {
            cmd::manuals::completions(shell, <Cli>::command());
            Ok(())
        }
        Command::Manpages { dir } => cmd::manuals::manpages(&dir, <Cli>::command()),
        Command::Sigstore(args) => cmd::sigstore::run(&args),
        Command::Policy(args) => verdict(cmd::policy::run_policy(&args, cli.repo.as_deref())?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a parser prints for `line` (help, version, a usage error) and its exit code;
    /// `None` when it parses `line` as a command to run.
    fn printed<P: Parser>(line: &str) -> Option<(String, i32)> {
        P::try_parse_from(line.split(' '))
            .err()
            .map(|e| (e.render().to_string(), e.exit_code()))
    }

    #[test]
    fn the_fast_parser_prints_and_refuses_what_the_full_one_does() {
        let lines = [
            "cfsgate hook",
            "cfsgate hook --help",
            "cfsgate hook -h",
            "cfsgate hook help",
            "cfsgate hook help precreate",
            "cfsgate hook --version",
            "cfsgate hook precreate --help",
            "cfsgate hook create-runtime --help",
            "cfsgate hook poststop -h",
            "cfsgate hook create-runtime --bogus",
            "cfsgate hook precreate --verity sometimes",
            "cfsgate hook nonsense",
            "cfsgate verify",
            "cfsgate verify --help",
            "cfsgate verify -h",
            "cfsgate verify --version",
            "cfsgate verify oci:x --bogus",
        ];
        for line in lines {
            let full = printed::<Cli>(line);
            assert!(full.is_some(), "{line:?} parsed as a command to run");
            let fast = if line.starts_with("cfsgate verify") {
                printed::<Cli<FastVerify>>(line)
            } else {
                printed::<FastCli>(line)
            };
            assert_eq!(fast, full, "{line:?}");
        }
    }

    #[test]
    fn the_fast_parser_parses_what_the_full_one_does() {
        let lines = [
            "cfsgate hook create-runtime --run-dir /r --audit-log /a",
            "cfsgate hook poststop --repo /repo",
            "cfsgate hook precreate --annotations --verity none --policy /p --timeout 3",
            "cfsgate verify oci:/x:y --policy /p --reference r.example/a:b --repo /repo",
        ];
        for line in lines {
            let full = <Cli>::try_parse_from(line.split(' '))
                .map(|c| format!("{:?} {:?}", c.repo, c.command));
            let fast = if line.starts_with("cfsgate verify") {
                Cli::<FastVerify>::try_parse_from(line.split(' '))
                    .map(|c| format!("{:?} {:?}", c.repo, Command::from(c.command)))
            } else {
                FastCli::try_parse_from(line.split(' '))
                    .map(|c| format!("{:?} {:?}", c.repo, Command::from(c.command)))
            };
            assert!(full.is_ok(), "{line:?}: {full:?}");
            assert_eq!(fast.ok(), full.ok(), "{line:?}");
        }
    }
}
