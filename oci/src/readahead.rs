//! A layer's decompression on a thread of its own, ahead of the tar reader that hashes its files.
//!
//! Applying a layer is two kinds of work on one byte stream: decompressing it (gzip or zstd)
//! and reading the tar whose files are hashed (fs-verity) and stored, plus the diff_id's
//! SHA-256 of the whole tar and the uncompressed-size limit. One thread doing all of it leaves
//! the other core idle; here decompression runs on its own scoped thread and hands the rest
//! filled buffers through a bounded channel, so the two overlap (the diff_id is on the reading
//! side, which balances the two on 2 cores: inflating ≈ hashing twice).
//!
//! | side | owns | does |
//! |---|---|---|
//! | producer ([`produce`]) | the decompressing reader | fills [`CHUNK`]-byte buffers, sends them, ends with the reader handed back |
//! | consumer ([`Pipe`]) | the receiving end | `Read` over the buffers in order (wrapped in [`Counted`]: size cap, diff_id); returns each empty buffer for reuse |
//!
//! Memory is bounded: at most [`DEPTH`] full buffers wait in the channel, plus one being filled
//! and one being read. An error of the producer's reader reaches the consumer as the same
//! `io::Error`, at the same position in the stream, and ends the stream; a consumer that stops
//! early (a bad tar entry) drops its end, and the producer stops at its next send. The bytes the
//! consumer reads are exactly, and in the order, those the producer's reader yielded.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::digest::BlobHasher;

/// Bytes per buffer handed over: large enough that channel operations are rare (a decoder
/// returns 8–128 KiB per read), small enough that the consumer starts soon.
pub(crate) const CHUNK: usize = 1 << 20;
/// Full buffers that may wait for the consumer (memory bound: `(DEPTH + 2) * CHUNK`).
pub(crate) const DEPTH: usize = 4;

/// The consumer's reader: the decompressed bytes counted (and capped) and hashed for the
/// diff_id as the tar reader takes them.
pub(crate) struct Counted<'a, R> {
    /// The decompressed stream.
    pub(crate) inner: &'a mut R,
    /// SHA-256 of everything read: the layer's diff_id at the end.
    pub(crate) hasher: BlobHasher,
    /// Uncompressed bytes still allowed.
    pub(crate) left: u64,
    /// Set when the cap was passed (the read that passed it failed).
    pub(crate) exceeded: bool,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.exceeded = true;
            return Err(io::Error::other("uncompressed size limit exceeded"));
        }
        self.left -= n as u64;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The consumer's end: reads the producer's bytes in order.
pub(crate) struct Pipe {
    full: Receiver<io::Result<(Vec<u8>, usize)>>,
    empty: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    /// Bytes of `current` that hold data.
    len: usize,
    pos: usize,
    ended: bool,
}

/// The producer's end, given to [`produce`].
pub(crate) struct Feed {
    full: SyncSender<io::Result<(Vec<u8>, usize)>>,
    empty: Receiver<Vec<u8>>,
}

/// A connected pair: run [`produce`] with the [`Feed`] on another thread, read the [`Pipe`].
pub(crate) fn pipe() -> (Feed, Pipe) {
    let (full_tx, full_rx) = sync_channel(DEPTH);
    // Room for every buffer in flight, so returning one never blocks the consumer.
    let (empty_tx, empty_rx) = sync_channel(DEPTH + 2);
    (
        Feed {
            full: full_tx,
            empty: empty_rx,
        },
        Pipe {
            full: full_rx,
            empty: empty_tx,
            current: Vec::new(),
            len: 0,
            pos: 0,
            ended: false,
        },
    )
}

/// Read `source` to its end (or its first error, or until the consumer hangs up) into the
/// pipe; hand `source` back for its final checks.
pub(crate) fn produce<R: Read>(mut source: R, feed: Feed) -> R {
    loop {
        // Buffers keep their length (CHUNK): only the first `filled` bytes are meaningful, so a
        // reused one is not zeroed again.
        let mut buf = feed.empty.try_recv().unwrap_or_default();
        // A new buffer (or the consumer's empty initial one) is made full-sized once.
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        let mut failed = None;
        while filled < CHUNK {
            match source.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let at_end = filled < CHUNK;
        if filled > 0 && feed.full.send(Ok((buf, filled))).is_err() {
            return source;
        }
        if let Some(e) = failed {
            let _ = feed.full.send(Err(e));
            return source;
        }
        if at_end {
            return source;
        }
    }
}

impl Read for Pipe {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.len {
            if self.ended || out.is_empty() {
                return Ok(0);
            }
            match self.full.recv() {
                Ok(Ok((next, len))) => {
                    let used = std::mem::replace(&mut self.current, next);
                    self.len = len;
                    // A full return channel only means the producer has buffers enough.
                    let _ = self.empty.try_send(used);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                // The producer is done: everything it sent has been read.
                Err(_) => {
                    self.ended = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields its bytes in odd-sized pieces, then optionally an error.
    struct Uneven {
        data: Vec<u8>,
        at: usize,
        fail: bool,
    }

    impl Read for Uneven {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return if self.fail {
                    Err(io::Error::other("broken stream"))
                } else {
                    Ok(0)
                };
            }
            let n = buf.len().min(7919).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn run(len: usize, fail: bool) -> (Vec<u8>, Option<io::Error>, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
        let source = Uneven {
            data: data.clone(),
            at: 0,
            fail,
        };
        std::thread::scope(|s| {
            let (feed, mut pipe) = pipe();
            let producer = s.spawn(move || produce(source, feed));
            let mut got = Vec::new();
            let mut buf = vec![0u8; 3001];
            let error = loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break None,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => break Some(e),
                }
            };
            drop(pipe);
            assert_eq!(producer.join().unwrap().at, len);
            (got, error, data)
        })
    }

    #[test]
    fn the_consumer_reads_exactly_what_the_producer_read() {
        for len in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK + 12345,
            9 * CHUNK,
        ] {
            let (got, error, data) = run(len, false);
            assert!(error.is_none(), "{len}");
            assert_eq!(got, data, "{len}");
        }
    }

    #[test]
    fn an_error_arrives_after_every_byte_before_it() {
        let (got, error, data) = run(2 * CHUNK + 5, true);
        assert_eq!(got, data);
        assert_eq!(error.unwrap().to_string(), "broken stream");
    }

    #[test]
    fn a_consumer_that_stops_early_stops_the_producer() {
        let data = vec![7u8; 20 * CHUNK];
        let left = std::thread::scope(|s| {
            let (feed, mut pipe) = pipe();
            let source = &data[..];
            let producer = s.spawn(move || produce(source, feed));
            let mut buf = [0u8; 10];
            pipe.read_exact(&mut buf).unwrap();
            drop(pipe);
            producer.join().unwrap().len()
        });
        // It stopped at a send, long before the end.
        assert!(left > 10 * CHUNK, "{left}");
    }
}
