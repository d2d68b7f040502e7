//! `cfsgate completions SHELL` and `cfsgate manpages DIR`: shell completions and man pages
//! generated from the same clap definitions the binary parses, so they cannot drift from it.
//!
//! | command | writes |
//! |---|---|
//! | `completions bash\|zsh\|fish\|elvish\|powershell` | the completion script on stdout |
//! | `manpages DIR` | `cfsgate.1` and one page per subcommand (`cfsgate-audit-verify.1`, …) into DIR, names on stdout |

use std::path::Path;

use anyhow::{Context, Result};

/// Print the completion script of `shell` for `command`.
pub fn completions(shell: clap_complete::Shell, mut command: clap::Command) {
    clap_complete::generate(shell, &mut command, "cfsgate", &mut std::io::stdout());
}

/// Write the man pages of `command` and its subcommands into `dir` (created if missing).
pub fn manpages(dir: &Path, command: clap::Command) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    let mut pages: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "1"))
        .collect();
    pages.sort();
    for page in pages {
        println!("{}", page.display());
    }
    Ok(())
}
