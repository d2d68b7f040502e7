//! Front-end helpers for the command line: `mount.composefs` options.
//!
//! `mount.composefs`-compatible options (`mount -t composefs IMAGE DIR -o …` runs
//! `/sbin/mount.composefs IMAGE DIR -o …`):
//!
//! | option | meaning here |
//! |---|---|
//! | `digest=HEX` | the trusted fs-verity digest of IMAGE (required: cfsgate mounts by trusted digest only) |
//! | `basedir=DIR[:DIR…]` | object directories, searched in order |
//! | `verity` | verity mode kernel (refused where the kernel cannot enforce it) |
//! | `tryverity` | kernel if supported, else userspace (never none): the fallback is reported |
//! | `verity=kernel\|userspace\|none` | cfsgate extension: an explicit mode |
//! | `upperdir=DIR`, `workdir=DIR` | writable mount (both or neither) |
//! | `idmap=/proc/PID/ns/user` | idmapped EROFS and object layers |
//! | `ro`, `rw`, `defaults` | accepted; the mount is read-only unless upperdir is given |
//! | `nodev`, `nosuid` (`dev`, `suid`) | as mount(8): device nodes / setuid bits not honoured (honoured, the default) |
//!
//! Any other option is refused by name rather than ignored.
//!
//! The repository layout (`--repo DIR`: `images/`, `objects/`, `refs/`) is the store's
//! [`cfsgate_image::store::RepoPaths`], which also resolves a ref name to an image digest.

use std::path::{Path, PathBuf};

use cfsgate_image::FsVeritySha256;

use crate::error::MountError;
use crate::mount::{resolve_verity_mode, UpperLayer};
use crate::request::MountRequest;
use crate::verity::VerityMode;

/// How the helper options ask for verity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerityRequest {
    /// No verity option: the library default (kernel when supported, else refuse).
    Default,
    /// An explicit mode.
    Mode(VerityMode),
    /// `tryverity`: kernel when supported, else userspace.
    Try,
}

impl VerityRequest {
    /// The mode to request from [`crate::mount_image`] (`None` = its default).
    pub fn resolve(self, object_dirs: &[PathBuf]) -> Result<Option<VerityMode>, MountError> {
        match self {
            VerityRequest::Default => Ok(None),
            VerityRequest::Mode(mode) => Ok(Some(mode)),
            VerityRequest::Try => {
                match resolve_verity_mode(Some(VerityMode::Kernel), object_dirs) {
                    Ok(mode) => Ok(Some(mode)),
                    Err(MountError::KernelVerityUnavailable { .. }) => {
                        Ok(Some(VerityMode::Userspace))
                    }
                    Err(other) => Err(other),
                }
            }
        }
    }
}

/// Parsed `mount.composefs` options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelperOptions {
    /// `digest=HEX`: the trusted fs-verity digest of the image.
    pub digest: Option<FsVeritySha256>,
    /// `basedir=DIR[:DIR…]`: object directories, in search order.
    pub basedirs: Vec<PathBuf>,
    /// `verity=`: the requested verity mode.
    pub verity: VerityRequest,
    /// `upperdir=` and `workdir=`: a writable mount.
    pub upper: Option<UpperLayer>,
    /// `idmap=`: a user namespace file whose id mapping the lower layers show through.
    pub idmap: Option<PathBuf>,
    /// `nodev` (the last of `dev`/`nodev` wins, as in mount(8)).
    pub nodev: bool,
    /// `nosuid` (the last of `suid`/`nosuid` wins).
    pub nosuid: bool,
}

/// Parse a `-o` option string (comma-separated).
pub fn parse_helper_options(text: &str) -> Result<HelperOptions, MountError> {
    let bad = |msg: String| MountError::Options(msg);
    let mut opts = HelperOptions {
        digest: None,
        basedirs: Vec::new(),
        verity: VerityRequest::Default,
        upper: None,
        idmap: None,
        nodev: false,
        nosuid: false,
    };
    let (mut upperdir, mut workdir) = (None, None);
    for option in text.split(',').filter(|o| !o.is_empty()) {
        let (key, value) = match option.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (option, None),
        };
        let need = || {
            value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad(format!("option {key} needs a value")))
        };
        match key {
            "digest" => {
                let hex = need()?;
                opts.digest =
                    Some(FsVeritySha256::from_hex(hex).map_err(|e| bad(format!("digest: {e}")))?);
            }
            "basedir" => opts.basedirs.extend(
                need()?
                    .split(':')
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from),
            ),
            "verity" => {
                opts.verity = match value {
                    None => VerityRequest::Mode(VerityMode::Kernel),
                    Some(mode) => {
                        VerityRequest::Mode(mode.parse().map_err(|e| bad(format!("{e}")))?)
                    }
                }
            }
            "tryverity" if value.is_none() => opts.verity = VerityRequest::Try,
            "upperdir" => upperdir = Some(PathBuf::from(need()?)),
            "workdir" => workdir = Some(PathBuf::from(need()?)),
            "idmap" => opts.idmap = Some(PathBuf::from(need()?)),
            "ro" | "rw" | "defaults" if value.is_none() => {}
            "nodev" | "dev" if value.is_none() => opts.nodev = key == "nodev",
            "nosuid" | "suid" if value.is_none() => opts.nosuid = key == "nosuid",
            _ => return Err(bad(format!("unsupported option {option:?}"))),
        }
    }
    opts.upper = UpperLayer::from_dirs(upperdir, workdir)?;
    Ok(opts)
}

impl HelperOptions {
    /// The trusted digest and the mount these options ask for, for the image file `image`:
    /// `digest=` is required, and `tryverity` is settled here (kernel if the object
    /// directories support it, else userspace).
    pub fn into_request(self, image: &Path) -> Result<(FsVeritySha256, MountRequest), MountError> {
        let digest = self.digest.ok_or_else(|| MountError::NoDigest {
            image: image.to_owned(),
        })?;
        let verity = self.verity.resolve(&self.basedirs)?;
        let request = MountRequest {
            object_dirs: self.basedirs,
            verity,
            upper: self.upper,
            idmap: self.idmap,
            nodev: self.nodev,
            nosuid: self.nosuid,
        };
        Ok((digest, request))
    }
}

/// Whether a program name (argv\[0\]) asks for the mount helper: `mount.composefs`, which
/// mount(8) runs for `mount -t composefs` (a symlink to the cfsgate binary).
pub fn is_mount_helper_name(argv0: &str) -> bool {
    Path::new(argv0)
        .file_name()
        .is_some_and(|name| name == "mount.composefs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mount_composefs_options() {
        let hex = "37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92";
        let opts = parse_helper_options(&format!(
            "ro,basedir=/a:/b,digest={hex},tryverity,upperdir=/u,workdir=/w,idmap=/proc/1/ns/user"
        ))
        .unwrap();
        assert_eq!(opts.digest.unwrap().to_hex(), hex);
        assert_eq!(
            opts.basedirs,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(opts.verity, VerityRequest::Try);
        assert_eq!(opts.upper.unwrap().workdir, PathBuf::from("/w"));
        assert_eq!(opts.idmap.unwrap(), PathBuf::from("/proc/1/ns/user"));
        assert_eq!(
            parse_helper_options("verity").unwrap().verity,
            VerityRequest::Mode(VerityMode::Kernel)
        );
        assert_eq!(
            parse_helper_options("verity=none").unwrap().verity,
            VerityRequest::Mode(VerityMode::None)
        );
        let plain = parse_helper_options("ro").unwrap();
        assert!(
            !plain.nodev && !plain.nosuid,
            "mount(8)'s default is dev,suid"
        );
        let restricted = parse_helper_options("nodev,nosuid").unwrap();
        assert!(restricted.nodev && restricted.nosuid);
        let last_wins = parse_helper_options("nodev,dev,suid,nosuid").unwrap();
        assert!(!last_wins.nodev && last_wins.nosuid);
    }

    #[test]
    fn options_become_a_request_only_with_a_digest() {
        let hex = "37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92";
        let opts = parse_helper_options(&format!(
            "digest={hex},basedir=/a:/b,verity=none,upperdir=/u,workdir=/w,idmap=/ns,nodev"
        ))
        .unwrap();
        let (digest, request) = opts.into_request(Path::new("/i.cfs")).unwrap();
        assert_eq!(digest.to_hex(), hex);
        assert_eq!(
            request,
            MountRequest {
                object_dirs: vec![PathBuf::from("/a"), PathBuf::from("/b")],
                verity: Some(VerityMode::None),
                upper: Some(UpperLayer {
                    upperdir: "/u".into(),
                    workdir: "/w".into()
                }),
                idmap: Some("/ns".into()),
                nodev: true,
                nosuid: false,
            }
        );
        let no_digest = parse_helper_options("basedir=/a").unwrap();
        let error = no_digest.into_request(Path::new("/i.cfs")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "option digest=<fs-verity digest of /i.cfs> is required: cfsgate mounts by trusted digest only"
        );
    }

    #[test]
    fn the_helper_is_chosen_by_its_program_name() {
        assert!(is_mount_helper_name("/sbin/mount.composefs"));
        assert!(is_mount_helper_name("mount.composefs"));
        assert!(!is_mount_helper_name("/usr/bin/cfsgate"));
        assert!(!is_mount_helper_name("mount.composefs.bak"));
    }

    #[test]
    fn refuses_unknown_and_incomplete_options() {
        for bad in [
            "upperdir=/u",
            "noexec",
            "digest=abc",
            "verity=maybe",
            "basedir=",
            "ro=1",
            "nodev=1",
        ] {
            assert!(parse_helper_options(bad).is_err(), "{bad} accepted");
        }
    }
}
