//! The kernel keyring: thin wrappers of the `add_key(2)` and `keyctl(2)` system calls, which
//! neither rustix nor a pure-Rust crate covers (linux-keyutils can neither add
//! `asymmetric` keys nor call `KEYCTL_PKEY_*`).
//!
//! Every wrapper passes only pointers to live Rust buffers together with their exact lengths,
//! NUL-terminated `CStr`s for strings, and `#[repr(C)]` copies of the kernel's structures
//! (include/uapi/linux/keyctl.h):
//!
//! | struct                | fields (in order)                                                         |
//! |-----------------------|---------------------------------------------------------------------------|
//! | `keyctl_pkey_params`  | s32 key_id, u32 in_len, u32 out_len/in2_len, u32 spare\[7\]                 |
//! | `keyctl_pkey_query`   | u32 supported_ops, u32 key_size, u16 max_data/sig/enc/dec_size, u32 spare\[10\] |
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;

/// A key or keyring serial number.
pub type Serial = i32;

/// Largest payload read back from a key: a `user` key holds at most 32767 bytes and a keyring
/// lists at most this many bytes of 4-byte serials here; a larger answer is refused rather
/// than allocating without bound.
const MAX_READ_LEN: usize = 1 << 20;

#[repr(C)]
#[derive(Default)]
struct PkeyParams {
    key_id: i32,
    in_len: u32,
    in2_len: u32,
    spare: [u32; 7],
}

/// The answer of `KEYCTL_PKEY_QUERY`.
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct PkeyQuery {
    /// `KEYCTL_SUPPORTS_*` bits: which operations the key supports.
    pub supported_ops: u32,
    /// Key size in bits.
    pub key_size: u32,
    /// Largest data (digest) the key takes, in bytes.
    pub max_data_size: u16,
    /// Largest signature, in bytes.
    pub max_sig_size: u16,
    /// Largest encrypted blob, in bytes.
    pub max_enc_size: u16,
    /// Largest decrypted blob, in bytes.
    pub max_dec_size: u16,
    spare: [u32; 10],
}

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn serial_of(ret: libc::c_long) -> io::Result<Serial> {
    Serial::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::ERANGE))
}

/// `add_key(type, description, payload, keyring)`; `None` payload for keyrings.
pub fn add_key(
    key_type: &CStr,
    description: &CStr,
    payload: Option<&[u8]>,
    keyring: Serial,
) -> io::Result<Serial> {
    let (ptr, len) = payload.map_or((std::ptr::null(), 0), |p| (p.as_ptr(), p.len()));
    // SAFETY: both strings are NUL-terminated; `ptr` is null with length 0 or points to `len`
    // readable bytes that outlive the call; the kernel only reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            key_type.as_ptr(),
            description.as_ptr(),
            ptr,
            len,
            keyring as libc::c_long,
        )
    };
    serial_of(check(ret)?)
}

/// A keyctl operation whose arguments are all integers (no memory is passed).
fn keyctl_ints(op: u32, a2: libc::c_ulong, a3: libc::c_ulong) -> io::Result<libc::c_long> {
    // SAFETY: only integer arguments; the kernel reads no memory of ours.
    check(unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            op as libc::c_ulong,
            a2,
            a3,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
}

/// `KEYCTL_SETPERM`.
pub fn setperm(key: Serial, perm: u32) -> io::Result<()> {
    keyctl_ints(
        libc::KEYCTL_SETPERM,
        key as libc::c_ulong,
        perm as libc::c_ulong,
    )
    .map(drop)
}

/// `KEYCTL_UNLINK`: removes the link from `keyring` to `key`.
pub fn unlink(key: Serial, keyring: Serial) -> io::Result<()> {
    keyctl_ints(
        libc::KEYCTL_UNLINK,
        key as libc::c_ulong,
        keyring as libc::c_ulong,
    )
    .map(drop)
}

/// `KEYCTL_INVALIDATE`: the key becomes unusable at once and is garbage-collected.
pub fn invalidate(key: Serial) -> io::Result<()> {
    keyctl_ints(libc::KEYCTL_INVALIDATE, key as libc::c_ulong, 0).map(drop)
}

/// `KEYCTL_SEARCH` from `keyring` (recursively) for a key of `key_type` and `description`.
pub fn search(keyring: Serial, key_type: &CStr, description: &CStr) -> io::Result<Serial> {
    // SAFETY: both strings are NUL-terminated and live across the call; destination 0 = link
    // the result nowhere.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_SEARCH as libc::c_ulong,
            keyring as libc::c_long,
            key_type.as_ptr(),
            description.as_ptr(),
            0 as libc::c_long,
        )
    };
    serial_of(check(ret)?)
}

/// Calls a keyctl "fill this buffer" operation (`KEYCTL_DESCRIBE`, `KEYCTL_READ`), growing the
/// buffer until the whole answer fits.
fn read_buffer(op: u32, key: Serial) -> io::Result<Vec<u8>> {
    let mut buffer = vec![0u8; 512];
    loop {
        // SAFETY: `buffer` is writable for `buffer.len()` bytes during the call; the kernel
        // writes at most that many and returns the full length of its answer.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                op as libc::c_ulong,
                key as libc::c_long,
                buffer.as_mut_ptr(),
                buffer.len(),
                0 as libc::c_ulong,
            )
        };
        let needed = usize::try_from(check(ret)?).unwrap_or(usize::MAX);
        if needed <= buffer.len() {
            buffer.truncate(needed);
            return Ok(buffer);
        }
        if needed > MAX_READ_LEN {
            return Err(io::Error::from_raw_os_error(libc::E2BIG));
        }
        buffer.resize(needed, 0);
    }
}

/// `KEYCTL_DESCRIBE`: `type;uid;gid;perm;description` (without the trailing NUL).
pub fn describe(key: Serial) -> io::Result<Vec<u8>> {
    let mut text = read_buffer(libc::KEYCTL_DESCRIBE, key)?;
    if text.last() == Some(&0) {
        text.pop();
    }
    Ok(text)
}

/// `KEYCTL_READ`: a key's payload, or a keyring's list of serials.
pub fn read(key: Serial) -> io::Result<Vec<u8>> {
    read_buffer(libc::KEYCTL_READ, key)
}

/// `KEYCTL_PKEY_QUERY` with the parameter string `info` (e.g. `enc=pkcs1 hash=sha256`).
pub fn pkey_query(key: Serial, info: &CStr) -> io::Result<PkeyQuery> {
    let mut query = PkeyQuery::default();
    // SAFETY: `info` is NUL-terminated; `query` is a live, writable `#[repr(C)]` copy of
    // `struct keyctl_pkey_query` that the kernel fills.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_PKEY_QUERY as libc::c_ulong,
            key as libc::c_long,
            0 as libc::c_ulong,
            info.as_ptr(),
            &mut query as *mut PkeyQuery,
        )
    };
    check(ret)?;
    Ok(query)
}

/// `KEYCTL_PKEY_VERIFY`: the kernel verifies `signature` over `data` (for `hash=…`, `data` is
/// the digest) with the key's public key. `EKEYREJECTED` means the signature does not match.
pub fn pkey_verify(key: Serial, info: &CStr, data: &[u8], signature: &[u8]) -> io::Result<()> {
    let too_long = || io::Error::from_raw_os_error(libc::EINVAL);
    let params = PkeyParams {
        key_id: key,
        in_len: u32::try_from(data.len()).map_err(|_| too_long())?,
        in2_len: u32::try_from(signature.len()).map_err(|_| too_long())?,
        ..PkeyParams::default()
    };
    // SAFETY: `params` is a `#[repr(C)]` copy of `struct keyctl_pkey_params` whose lengths are
    // those of `data` and `signature`, both readable for the call; `info` is NUL-terminated.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_PKEY_VERIFY as libc::c_ulong,
            &params as *const PkeyParams,
            info.as_ptr(),
            data.as_ptr(),
            signature.as_ptr(),
        )
    };
    check(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uapi_sizes_match_the_kernel_headers() {
        assert_eq!(std::mem::size_of::<PkeyParams>(), 40);
        assert_eq!(std::mem::size_of::<PkeyQuery>(), 56);
    }
}
