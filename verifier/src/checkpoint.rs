//! Transparency log checkpoints: signed notes (C2SP `signed-note`, `tlog-checkpoint`) naming a
//! log's size and root hash, as Rekor v1 and v2 write them into a bundle's
//! `inclusionProof.checkpoint.envelope`.
//!
//! ```text
//! <origin>\n                     Rekor v1: "rekor.sigstore.dev - 1193050959916656506"
//! <tree size, decimal>\n           Rekor v2: the log's host name, "log2025-1.rekor.sigstore.dev"
//! <root hash, base64>\n
//! [<extension line>\n ...]         e.g. "Timestamp: 1675209600000000000" (v1)
//! \n
//! — <signer name> <base64(key hint[4] || signature)>\n     one line per signature
//! ```
//!
//! The signed text is everything before the blank line, its last newline included. A note may
//! carry several signatures: the log's and witnesses' cosignatures, in any order. The log's is
//! the one whose key hint is the first 4 bytes of the log's id (for Rekor v1, the sha256 of the
//! key's SPKI; for Rekor v2, the C2SP key id sha256(name || 0x0A || 0x01 || Ed25519 key)) and,
//! for Rekor v2, whose signer name is the log's host name, which must also be the origin line.
//! Signatures by unknown keys (witnesses) are ignored; a signature that claims to be the log's
//! and does not verify is an error.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::trusted_root::TrustedLog;

/// Largest checkpoint read (real ones are 200–800 bytes with a few cosignatures).
pub const MAX_CHECKPOINT_BYTES: usize = 64 * 1024;
/// Most signature lines read from one note (C2SP `signed-note` allows at most 100).
pub const MAX_NOTE_SIGNATURES: usize = 100;

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The signer's name.
    pub name: String,
    /// The key hint: the first 4 bytes of the signer's key id.
    pub hint: [u8; 4],
    /// The signature proper.
    pub signature: Vec<u8>,
}

/// A parsed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The origin line: which log.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The root hash of the tree of that size.
    pub root_hash: Vec<u8>,
    /// The signed text (up to and with the newline before the blank line).
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl Checkpoint {
    /// Whether the origin has Rekor v1's form `<name> - <tree id>`.
    pub fn is_rekor_v1(&self) -> bool {
        self.origin
            .rsplit_once(" - ")
            .is_some_and(|(_, id)| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()))
    }
}

/// Parses a checkpoint note (see the module documentation); the text says what is malformed.
pub fn parse_checkpoint(envelope: &str) -> Result<Checkpoint, String> {
    if envelope.len() > MAX_CHECKPOINT_BYTES {
        return Err(format!("larger than {MAX_CHECKPOINT_BYTES} bytes"));
    }
    let (body, signature_block) = envelope
        .split_once("\n\n")
        .ok_or("no blank line between the note and its signatures")?;
    let text = format!("{body}\n");
    let mut lines = body.split('\n');
    let origin = lines
        .next()
        .filter(|l| !l.is_empty())
        .ok_or("no origin line")?;
    let size = lines
        .next()
        .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|l| l.parse::<u64>().ok())
        .ok_or("no tree size line (decimal) after the origin")?;
    let root_hash = lines
        .next()
        .and_then(|l| BASE64.decode(l).ok())
        .filter(|h| h.len() == 32)
        .ok_or("no root hash line (base64 of 32 bytes) after the tree size")?;
    if lines.any(str::is_empty) {
        return Err("an empty extension line in the note".into());
    }
    if signature_block.is_empty() {
        return Err("no signature line".into());
    }
    if !signature_block.ends_with('\n') {
        return Err("the signature block does not end with a newline".into());
    }
    let mut signatures = Vec::new();
    for line in signature_block[..signature_block.len() - 1].split('\n') {
        if signatures.len() == MAX_NOTE_SIGNATURES {
            return Err(format!("more than {MAX_NOTE_SIGNATURES} signatures"));
        }
        let malformed = || format!("malformed signature line {line:?}");
        let rest = line.strip_prefix("\u{2014} ").ok_or_else(malformed)?;
        let (name, sig) = rest.split_once(' ').ok_or_else(malformed)?;
        if name.is_empty() || sig.contains(' ') {
            return Err(malformed());
        }
        let sig = BASE64.decode(sig).map_err(|_| malformed())?;
        if sig.len() < 5 {
            return Err(malformed());
        }
        signatures.push(NoteSignature {
            name: name.to_string(),
            hint: [sig[0], sig[1], sig[2], sig[3]],
            signature: sig[4..].to_vec(),
        });
    }
    if signatures.is_empty() {
        return Err("no signature line".into());
    }
    Ok(Checkpoint {
        origin: origin.to_string(),
        size,
        root_hash,
        text,
        signatures,
    })
}

/// Parses `envelope` and checks that `log` signed it (see the module documentation).
pub fn verify_checkpoint(envelope: &str, log: &TrustedLog) -> Result<Checkpoint, String> {
    let checkpoint = parse_checkpoint(envelope)?;
    let v1 = checkpoint.is_rekor_v1();
    if !v1 && checkpoint.origin != log.host() {
        return Err(format!(
            "its origin {:?} is not the log's name {:?}",
            checkpoint.origin,
            log.host()
        ));
    }
    let hint = [log.id[0], log.id[1], log.id[2], log.id[3]];
    let mut candidates = checkpoint
        .signatures
        .iter()
        .filter(|s| s.hint == hint && (v1 || s.name == log.host()))
        .peekable();
    if candidates.peek().is_none() {
        return Err(format!(
            "no signature line by the log ({}, key hint {})",
            log.label,
            hex::encode(hint)
        ));
    }
    for candidate in candidates {
        if log
            .key
            .verify(checkpoint.text.as_bytes(), &candidate.signature)
            .is_err()
        {
            return Err(format!(
                "the signature line of {} does not verify with the log key",
                candidate.name
            ));
        }
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str = "log.example\n7\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n\u{2014} log.example AAAAAAE=\n";

    #[test]
    fn parses_and_refuses_malformed_notes() {
        let c = parse_checkpoint(NOTE).unwrap();
        assert_eq!((c.origin.as_str(), c.size), ("log.example", 7));
        assert!(!c.is_rekor_v1());
        assert_eq!(
            c.text,
            "log.example\n7\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n"
        );
        for (broken, why) in [
            (NOTE.replacen("log.example\n", "", 1), "tree size"),
            (NOTE.replacen("7\n", "", 1), "tree size"),
            (
                NOTE.replacen("rs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n", "", 1),
                "root hash",
            ),
            (NOTE.trim_end().to_string(), "newline"),
            (
                NOTE.replacen("\u{2014} log.example AAAAAAE=\n", "", 1),
                "no signature",
            ),
            (NOTE.replacen("\n\n", "\n", 1), "blank line"),
        ] {
            let e = parse_checkpoint(&broken).unwrap_err();
            assert!(e.contains(why), "{broken:?}: {e}");
        }
        let v1 = NOTE.replacen(
            "log.example\n",
            "rekor.sigstore.dev - 2605736670972794746\n",
            1,
        );
        assert!(parse_checkpoint(&v1).unwrap().is_rekor_v1());
    }
}
