//! A process's start time from `/proc/PID/stat` (proc(5), field 22 `starttime`, clock ticks
//! since boot), to tell a live container process from a recycled pid.
//!
//! The second field is the command name in parentheses and may itself contain spaces and
//! `)`: the fields are counted from after the last `)`.

use std::path::Path;

use crate::fsutil;

/// Largest `/proc/PID/stat` read (about 300 bytes in practice).
pub const MAX_STAT_BYTES: u64 = 4096;

/// `starttime` from the text of a `/proc/PID/stat`.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    // After ") " come field 3 (state) … field 22 (starttime): index 19.
    rest.split(' ').nth(19)?.parse().ok()
}

/// The start time of process `pid`, or `None` when there is no such process.
pub fn process_start(pid: i64) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let bytes =
        fsutil::read_regular(Path::new(&format!("/proc/{pid}/stat")), MAX_STAT_BYTES).ok()?;
    parse_start_time(&String::from_utf8_lossy(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_command_name_does_not_shift_the_fields() {
        let stat = "4242 (a) b ) 1 2 3) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 50 18446744073709551615";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("1 (x) S 0"), None);
        assert_eq!(parse_start_time("no parens"), None);
        assert_eq!(parse_start_time("1 (x)"), None);
    }

    #[test]
    fn our_own_process_has_a_start_time() {
        let me = i64::from(std::process::id());
        assert!(process_start(me).is_some());
        assert_eq!(process_start(me), process_start(me));
        assert_eq!(process_start(0), None);
        assert_eq!(process_start(-1), None);
    }
}
