//! Subcommands whose arguments clap builds only when that subcommand is the one invoked.
//!
//! clap's derive builds the whole command tree (every subcommand, every argument, its help
//! text) before it looks at the command line; cfsgate has ~30 subcommands, so a hook run paid
//! for the arguments of `mkcomposefs`, `pull`, `bundle`… at every container start. Wrapping a
//! leaf subcommand's argument type in [`Lazy`] hands its builder to `Command::defer`: clap runs it
//! when it enters that subcommand, and for `--help`, completions and man pages (which build the
//! whole tree), so their text is unchanged (completion scripts list a subcommand's options in
//! another order: the global `--repo` first). Subcommands that have subcommands (`hook`, `key`,
//! `audit`, `policy`, …) stay eager: the `help` subcommand's copy of the tree is made before a
//! deferred builder would have added their children, and `cfsgate help audit <TAB>` would lose
//! them. The wrapper
//! only forwards; the value is the wrapped one (`.0`).

use clap::{ArgMatches, Args, Command, FromArgMatches};

/// One subcommand's arguments, built when the subcommand is entered.
#[derive(Debug, Clone)]
pub struct Lazy<T>(pub T);

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Lazy)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Lazy)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

impl<T: Args> Args for Lazy<T> {
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }

    fn augment_args(cmd: Command) -> Command {
        cmd.defer(|cmd| keep_about(cmd, T::augment_args))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        cmd.defer(|cmd| keep_about(cmd, T::augment_args_for_update))
    }
}

/// Run a deferred builder, keeping the description the subcommand's variant gave: derive applies
/// it after the builder, which the builder (run later now) would otherwise replace with its
/// type's own doc comment.
fn keep_about(cmd: Command, build: fn(Command) -> Command) -> Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let mut cmd = build(cmd);
    if let Some(about) = about {
        cmd = cmd.about(about);
    }
    if let Some(long_about) = long_about {
        cmd = cmd.long_about(long_about);
    }
    cmd
}
