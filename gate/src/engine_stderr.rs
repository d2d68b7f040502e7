//! Showing a precreate refusal to the engine's user when the engine discarded our stderr.
//!
//! podman (4.3, Debian 12) runs precreate hooks through containers/common
//! `pkg/hooks/exec.RuntimeConfigFilter`, which starts the hook with no stderr writer: Go's
//! `os/exec` then connects the hook's fd 2 to `/dev/null`, and podman's error names only the
//! hook's argv and `exit status 1`. (Only containers/common with container-libs PR #1089 lets
//! the `run.oci.hooks.stderr` annotation name a file for precreate hooks' stderr; then our
//! stderr is that file and nothing is copied.) podman forks the hook itself (not conmon, not the OCI
//! runtime), so the hook's parent is the podman process, and the parent's fd 2 is what the user
//! sees (a terminal, a pipe, a log file, the journal). When — and only when — our own stderr is
//! `/dev/null` (or closed), the refusal line is also written there.
//!
//! | the engine's fd 2 is | how it is reached | why |
//! |---|---|---|
//! | a pipe, FIFO or terminal | `open("/proc/<ppid>/fd/2", O_WRONLY\|O_APPEND\|O_NOCTTY\|O_NONBLOCK\|O_CLOEXEC)` | a fresh open file description: non-blocking without touching the engine's flags, never our controlling terminal |
//! | a regular file | `pidfd_getfd(pidfd_open(ppid), 2)` (the engine's own open file description) | a fresh description has its own offset: the engine's next write at its stale offset would overwrite our line |
//! | a regular file, `pidfd_getfd` refused | `/proc/<ppid>/fd/2` as above, only when the engine opened it `O_APPEND` | then every writer appends and nothing is overwritten |
//! | a socket (the journal under systemd) | `pidfd_getfd` | sockets cannot be opened through `/proc` |
//!
//! The line is one `write(2)` of at most [`MAX_ENGINE_LINE_BYTES`] (under `PIPE_BUF`, so it is
//! never interleaved with the engine's own output on a pipe), with control and bidi-override
//! characters escaped, so a hostile image name cannot send terminal escapes. The write runs on
//! a helper thread that the caller waits for at most [`ENGINE_WRITE_TIMEOUT`]. Every failure is
//! ignored: this is a courtesy to the user, the refusal (exit status) does not depend on it.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::time::Duration;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::process::{getppid, pidfd_getfd, pidfd_open, Pid, PidfdFlags, PidfdGetfdFlags};

/// Longest line written to the engine's stderr, newline included: below `PIPE_BUF` (4096) so a
/// write to a pipe is atomic, and long enough for a reason listing several keys.
pub const MAX_ENGINE_LINE_BYTES: usize = 2048;
/// How long the hook waits for the write (a full pipe, a stopped terminal, a stuck socket):
/// well inside any hook timeout, and short next to a container start.
pub const ENGINE_WRITE_TIMEOUT: Duration = Duration::from_millis(250);
/// The engine's stderr descriptor number.
const ENGINE_STDERR_FD: i32 = 2;
/// Marks a line cut at [`MAX_ENGINE_LINE_BYTES`].
const TRUNCATED: &str = "…";

/// `cfsgate: denied <image>: <reason>` (or `cfsgate: denied: <reason>` when the container named
/// no image) as one line: control and bidi-override characters escaped as `\u{..}`, at most
/// [`MAX_ENGINE_LINE_BYTES`] bytes including the final newline.
pub fn denial_line(image: Option<&str>, reason: &str) -> String {
    let text = match image {
        Some(image) => format!("cfsgate: denied {image}: {reason}"),
        None => format!("cfsgate: denied: {reason}"),
    };
    let escaped = escape_controls(&text);
    let budget = MAX_ENGINE_LINE_BYTES - 1;
    let mut line = if escaped.len() <= budget {
        escaped
    } else {
        let mut cut = budget - TRUNCATED.len();
        while !escaped.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}{TRUNCATED}", &escaped[..cut])
    };
    line.push('\n');
    line
}

/// Whether a character could move the cursor, recolour, retitle or reorder what a terminal
/// shows: C0/C1 controls, DEL, and the Unicode bidirectional overrides and isolates.
fn is_dangerous(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_dangerous(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Tell the engine about a precreate refusal when (and only when) our own stderr is discarded;
/// returns whether a line was written.
pub fn report_denial(image: Option<&str>, reason: &str) -> bool {
    stderr_discarded() && tell_engine(&denial_line(image, reason))
}

/// Whether our fd 2 goes nowhere: `/dev/null` (same character device) or closed. Anything
/// else (a terminal, a pipe, a file) means the caller reads our stderr and needs no copy.
pub fn stderr_discarded() -> bool {
    let ours = match rustix::fs::fstat(std::io::stderr().as_fd()) {
        Ok(stat) => stat,
        Err(rustix::io::Errno::BADF) => return true,
        Err(_) => return false,
    };
    let Ok(null) = rustix::fs::stat("/dev/null") else {
        return false;
    };
    let is_char = |mode| FileType::from_raw_mode(mode) == FileType::CharacterDevice;
    let same_device =
        is_char(ours.st_mode) && is_char(null.st_mode) && ours.st_rdev == null.st_rdev;
    let same_inode = ours.st_dev == null.st_dev && ours.st_ino == null.st_ino;
    same_device || same_inode
}

/// Write `line` to the parent process's stderr (see the module table); waits at most
/// [`ENGINE_WRITE_TIMEOUT`]. Returns whether the whole line was written.
pub fn tell_engine(line: &str) -> bool {
    let Some(fd) = open_engine_stderr() else {
        return false;
    };
    let bytes = line.as_bytes().to_vec();
    let (tx, rx) = mpsc::channel();
    // The thread may stay blocked on a blocking descriptor (a pidfd_getfd socket); the process
    // exits right after the refusal, which ends it.
    std::thread::spawn(move || {
        let written = rustix::io::write(&fd, &bytes);
        let _ = tx.send(written.is_ok_and(|n| n == bytes.len()));
    });
    rx.recv_timeout(ENGINE_WRITE_TIMEOUT).unwrap_or(false)
}

/// The parent's stderr, opened the way its file type needs; `None` when there is no parent
/// to tell (init, a parent outside our pid namespace) or it cannot be reached.
fn open_engine_stderr() -> Option<OwnedFd> {
    let parent = getppid().filter(|p| *p != Pid::INIT)?;
    let proc_fd = format!("/proc/{}/fd/{ENGINE_STDERR_FD}", parent.as_raw_pid());
    let target = rustix::fs::stat(&proc_fd).ok()?;
    let fd = match FileType::from_raw_mode(target.st_mode) {
        FileType::RegularFile => engine_description(parent).or_else(|| {
            engine_appends(parent)
                .then(|| open_fresh(&proc_fd))
                .flatten()
        }),
        FileType::Socket => engine_description(parent),
        _ => open_fresh(&proc_fd),
    }?;
    // Had the parent exited meanwhile, we would have been re-parented and its pid could name
    // another process: only keep what was opened while it was still our parent.
    (getppid() == Some(parent)).then_some(fd)
}

/// A new open file description of the parent's stderr: non-blocking, appending, never our
/// controlling terminal.
fn open_fresh(proc_fd: &str) -> Option<OwnedFd> {
    let flags =
        OFlags::WRONLY | OFlags::APPEND | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    rustix::fs::open(proc_fd, flags, Mode::empty()).ok()
}

/// The parent's own stderr description (shared offset and flags), through a pidfd.
fn engine_description(parent: Pid) -> Option<OwnedFd> {
    let pidfd = pidfd_open(parent, PidfdFlags::empty()).ok()?;
    if getppid() != Some(parent) {
        return None;
    }
    pidfd_getfd(&pidfd, ENGINE_STDERR_FD, PidfdGetfdFlags::empty()).ok()
}

/// Whether the parent opened its stderr with `O_APPEND` (`flags:` of `/proc/<pid>/fdinfo/2`,
/// octal).
fn engine_appends(parent: Pid) -> bool {
    let path = format!("/proc/{}/fdinfo/{ENGINE_STDERR_FD}", parent.as_raw_pid());
    std::fs::read_to_string(path)
        .ok()
        .and_then(|info| {
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
            u32::from_str_radix(flags.trim(), 8).ok()
        })
        .is_some_and(|bits| OFlags::from_bits_retain(bits).contains(OFlags::APPEND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls_and_bidi_overrides() {
        let line = denial_line(Some("dir:/x\u{1b}]0;owned\u{7}\n\u{202e}y"), "unsigned\r");
        assert_eq!(
            line,
            "cfsgate: denied dir:/x\\u{1b}]0;owned\\u{7}\\u{a}\\u{202e}y: unsigned\\u{d}\n"
        );
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn bounds_the_line_on_a_character_boundary() {
        let reason = "é".repeat(MAX_ENGINE_LINE_BYTES);
        let line = denial_line(None, &reason);
        assert!(line.len() <= MAX_ENGINE_LINE_BYTES, "{}", line.len());
        assert!(line.ends_with(&format!("{TRUNCATED}\n")));
        assert!(line.starts_with("cfsgate: denied: éé"));
    }

    #[test]
    fn short_lines_are_kept_whole() {
        assert_eq!(
            denial_line(Some("oci:/img:1"), "not sealed"),
            "cfsgate: denied oci:/img:1: not sealed\n"
        );
    }
}
