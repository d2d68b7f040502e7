//! A mount's report as one line for people (`cfsgate mount` prints it, `mount.composefs -v`
//! on stderr): `mounted sha256:DIGEST on DIR: verity MODE[, N objects verified (M MiB
//! hashed)]; image pinned as …; EROFS from …; overlay via …; read-only|writable[, idmapped]`.

use std::path::Path;

use crate::objects::VerifyStats;
use crate::MountReport;

/// Bytes in a MiB, for the hashed amount.
const MIB: f64 = (1u64 << 20) as f64;

impl MountReport {
    /// Everything the mount decided, on one line (see the module docs).
    pub fn summary(&self, mountpoint: &Path) -> String {
        let verified = match self.verified {
            Some(VerifyStats {
                objects,
                bytes_hashed,
                ..
            }) => format!(
                ", {objects} objects verified ({:.1} MiB hashed)",
                bytes_hashed as f64 / MIB
            ),
            None => String::new(),
        };
        format!(
            "mounted sha256:{} on {}: verity {}{verified}; image pinned as {:?}; EROFS from {:?}; overlay via {:?}; {}{}",
            self.digest,
            mountpoint.display(),
            self.verity,
            self.pinning,
            self.erofs,
            self.overlay,
            if self.writable { "writable" } else { "read-only" },
            if self.idmapped { ", idmapped" } else { "" },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erofs::ErofsSource;
    use crate::overlay::OverlayApi;
    use crate::pinned::ImagePinning;
    use crate::VerityMode;

    #[test]
    fn the_summary_names_every_decision() {
        let digest = cfsgate_image::fsverity::digest_bytes(b"an image");
        let report = MountReport {
            digest,
            verity: VerityMode::Userspace,
            pinning: ImagePinning::SealedMemfd,
            erofs: ErofsSource::File,
            overlay: OverlayApi::NewMountApi,
            mount_ids: None,
            verified: Some(VerifyStats {
                external_files: 3,
                objects: 2,
                bytes_hashed: 3 << 19,
            }),
            writable: false,
            idmapped: true,
        };
        assert_eq!(
            report.summary(Path::new("/mnt")),
            format!(
                "mounted sha256:{digest} on /mnt: verity userspace, 2 objects verified (1.5 MiB hashed); image pinned as SealedMemfd; EROFS from File; overlay via NewMountApi; read-only, idmapped"
            )
        );
    }
}
