//! Loop devices (linux/loop.h): a free device number from `/dev/loop-control`, and attaching a
//! backing file in one step.
//!
//! | call | ioctl |
//! |---|---|
//! | [`loop_get_free`] | `LOOP_CTL_GET_FREE` on /dev/loop-control |
//! | [`loop_configure`] | `LOOP_CONFIGURE` with a `struct loop_config` on /dev/loopN |
//!
//! | struct | fields (offset: type name) | size |
//! |---|---|---|
//! | `loop_config` | 0: u32 fd, 4: u32 block_size, 8: loop_info64 (232 bytes), 240: u64 reserved\[8\] | 304 |
//! | `loop_info64` | 0: u64 device, 8: u64 inode, 16: u64 rdevice, 24: u64 offset, 32: u64 sizelimit, 40: u32 number, 44: u32 encrypt_type, 48: u32 encrypt_key_size, 52: u32 flags, 56: u8 file_name\[64\], 120: u8 crypt_name\[64\], 184: u8 encrypt_key\[32\], 216: u64 init\[2\] | 232 |
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use rustix::ioctl::{self, Ioctl, IoctlOutput, Opcode};

/// `LOOP_CTL_GET_FREE` (linux/loop.h): returns the number of a free loop device.
const LOOP_CTL_GET_FREE: Opcode = 0x4C82;
/// `LOOP_CONFIGURE`: attach a backing fd and set flags in one step.
const LOOP_CONFIGURE: Opcode = 0x4C0A;

/// `LO_FLAGS_READ_ONLY`.
pub const LO_FLAGS_READ_ONLY: u32 = 1;
/// `LO_FLAGS_AUTOCLEAR`: detach the backing file when the last opener closes the device.
pub const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// `LO_FLAGS_DIRECT_IO`: read the backing file without a second page cache.
pub const LO_FLAGS_DIRECT_IO: u32 = 16;
/// `LO_NAME_SIZE`.
const LO_NAME_SIZE: usize = 64;
/// `LO_KEY_SIZE`.
const LO_KEY_SIZE: usize = 32;

#[repr(C)]
#[derive(Clone, Copy)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; LO_NAME_SIZE],
    crypt_name: [u8; LO_NAME_SIZE],
    encrypt_key: [u8; LO_KEY_SIZE],
    init: [u64; 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// `LOOP_CTL_GET_FREE`: its result is the ioctl's return value, which rustix's patterns drop.
struct LoopGetFree;

// SAFETY: LOOP_CTL_GET_FREE takes no argument and reads or writes no userspace memory.
unsafe impl Ioctl for LoopGetFree {
    type Output = u32;
    const IS_MUTATING: bool = false;
    fn opcode(&self) -> Opcode {
        LOOP_CTL_GET_FREE
    }
    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        std::ptr::null_mut()
    }
    unsafe fn output_from_ptr(
        out: IoctlOutput,
        _: *mut std::ffi::c_void,
    ) -> rustix::io::Result<u32> {
        u32::try_from(out).map_err(|_| rustix::io::Errno::RANGE)
    }
}

/// The number N of a free /dev/loopN (allocating one if needed), from /dev/loop-control.
pub fn loop_get_free(loop_control: impl AsFd) -> io::Result<u32> {
    // SAFETY: see the `Ioctl` impl of `LoopGetFree`.
    Ok(unsafe { ioctl::ioctl(loop_control, LoopGetFree)? })
}

/// Attach `backing` to the loop device `loop_dev` with `flags` (`LO_FLAGS_*`) and
/// `file_name` recorded (truncated to 63 bytes) for /sys/block/loopN/loop/backing_file readers.
pub fn loop_configure(
    loop_dev: impl AsFd,
    backing: BorrowedFd<'_>,
    flags: u32,
    file_name: &[u8],
) -> io::Result<()> {
    let mut name = [0u8; LO_NAME_SIZE];
    let len = file_name.len().min(LO_NAME_SIZE - 1);
    name[..len].copy_from_slice(&file_name[..len]);
    let config = LoopConfig {
        fd: backing.as_raw_fd() as u32,
        block_size: 0,
        info: LoopInfo64 {
            device: 0,
            inode: 0,
            rdevice: 0,
            offset: 0,
            sizelimit: 0,
            number: 0,
            encrypt_type: 0,
            encrypt_key_size: 0,
            flags,
            file_name: name,
            crypt_name: [0; LO_NAME_SIZE],
            encrypt_key: [0; LO_KEY_SIZE],
            init: [0; 2],
        },
        reserved: [0; 8],
    };
    // SAFETY: LOOP_CONFIGURE's argument is a `struct loop_config` laid out as above, only read.
    unsafe {
        let call = ioctl::Setter::<LOOP_CONFIGURE, LoopConfig>::new(config);
        ioctl::ioctl(loop_dev, call)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uapi_sizes_match_the_kernel_headers() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }
}
