//! Range requests for parts of blobs: the zstd:chunked table of contents and file contents of
//! a partial pull ([`super::partial_pull`]). A registry must answer `206` with the Content-Range
//! asked for; a `200` (the whole blob) is refused, not taken as the range. The body is read as
//! exactly the range's length: longer is an error while reading; a body cut short (or a broken
//! connection) is resumed from where it stopped with a new Range request, at most
//! [`ClientOptions::retries`](super::ClientOptions) times per range. These bytes are not
//! covered by the blob digest; the caller checks them against what the signed manifest says.

use std::io::{self, Read};
use std::ops::Range;

use super::client::{blob_path, body_error, Access, Body, RegistryClient, BACKOFF_START};
use super::error::RegistryError;
use crate::digest::BlobDigest;

impl RegistryClient {
    /// Bytes `start..end` of a blob (a Range request answered `206`), at most `limit` of them.
    /// These bytes cannot be checked against the blob digest: the caller checks them against
    /// what the (verified) manifest says about them.
    pub fn get_blob_range(
        &self,
        repository: &str,
        digest: &BlobDigest,
        range: Range<u64>,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let len = range.end.saturating_sub(range.start);
        let url = self.url(&blob_path(repository, digest));
        if len > limit {
            return Err(RegistryError::Protocol {
                what: "blob range",
                url,
                reason: format!("range {range:?} is longer than {limit} bytes"),
            });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        self.open_blob_range(repository, digest, range)?
            .read_to_end(&mut bytes)
            .map_err(|e| body_error("blob range", &url, e, len))?;
        Ok(bytes)
    }

    /// Bytes `start..end` of a blob as a stream (a Range request answered `206` with that
    /// Content-Range): it yields exactly `end - start` bytes, or fails reading (a body too long,
    /// or still too short after the resumes, is an error, not an end). Unchecked, as for
    /// [`Self::get_blob_range`].
    pub fn open_blob_range<'a>(
        &'a self,
        repository: &'a str,
        digest: &BlobDigest,
        range: Range<u64>,
    ) -> Result<impl Read + Send + 'a, RegistryError> {
        let body = self.open_exact_range(repository, digest, range.clone())?;
        Ok(Resuming {
            client: self,
            repository,
            digest: *digest,
            pos: range.start,
            end: range.end,
            body,
            resumes: 0,
        })
    }

    /// One Range request: its body, exactly the range's length or failing.
    fn open_exact_range(
        &self,
        repository: &str,
        digest: &BlobDigest,
        range: Range<u64>,
    ) -> Result<ExactBody<Box<dyn Read + Send>>, RegistryError> {
        let path = blob_path(repository, digest);
        let url = self.url(&path);
        let len = range.end.saturating_sub(range.start);
        let protocol = |reason: String| RegistryError::Protocol {
            what: "blob range",
            url: url.clone(),
            reason,
        };
        if len == 0 {
            return Err(protocol(format!("range {range:?} is empty")));
        }
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let response = self.send(
            "GET",
            &path,
            repository,
            Access::Pull,
            &[("Range", &header)],
            Body::None,
        )?;
        if response.status() != 206 {
            let status = response.status();
            return Err(protocol(format!(
                "answered {status} to a Range request, not 206"
            )));
        }
        let expect_prefix = format!("bytes {}-{}/", range.start, range.end - 1);
        if !response
            .header("Content-Range")
            .is_some_and(|v| v.starts_with(&expect_prefix))
        {
            return Err(protocol(format!(
                "Content-Range {:?} is not {expect_prefix}…",
                response.header("Content-Range")
            )));
        }
        Ok(ExactBody {
            inner: Box::new(response.into_reader().take(len + 1)),
            left: len,
        })
    }
}

/// A range read that resumes after a broken connection or a body cut short.
struct Resuming<'a> {
    client: &'a RegistryClient,
    repository: &'a str,
    digest: BlobDigest,
    /// Blob offset of the next byte, and the range's end.
    pos: u64,
    end: u64,
    body: ExactBody<Box<dyn Read + Send>>,
    resumes: u32,
}

impl Read for Resuming<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.body.read(buf) {
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A body longer than the range (or any answer that is not the range) is not
                // a transfer to resume: the registry is wrong.
                Err(e) if e.kind() == io::ErrorKind::FileTooLarge => return Err(e),
                Err(e) if self.resumes >= self.client.options.retries || self.pos >= self.end => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "{e} (bytes {}..{}, after {} resumes)",
                            self.pos, self.end, self.resumes
                        ),
                    ));
                }
                Err(_) => {
                    std::thread::sleep(BACKOFF_START * 2u32.saturating_pow(self.resumes));
                    self.resumes += 1;
                    self.body = self
                        .client
                        .open_exact_range(self.repository, &self.digest, self.pos..self.end)
                        .map_err(io::Error::other)?;
                }
            }
        }
    }
}

/// A body of exactly `left` more bytes: an early end or an extra byte is an error.
struct ExactBody<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left + 1).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "the body is longer than the range",
            ));
        }
        if n == 0 && self.left > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the body ends {} bytes before the range does", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &[u8], left: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        ExactBody {
            inner: body.take(left + 1),
            left,
        }
        .read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_range_body_must_have_exactly_the_range_length() {
        assert_eq!(read(b"0123456789", 10).unwrap(), b"0123456789");
        let short = read(b"012345678", 10).unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
        let long = read(b"0123456789x", 10).unwrap_err();
        assert_eq!(long.kind(), io::ErrorKind::FileTooLarge);
    }
}
