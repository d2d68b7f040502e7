//! What `mkcomposefs` does around building a tree and writing its image (`cfsgate
//! mkcomposefs`): upstream's format-version defaulting, reading a dump source (a file or
//! stdin) and writing the image file atomically.
//!
//! | function | does |
//! |---|---|
//! | [`format_versions`] | `--min-version`/`--max-version` as upstream: neither given is 0..1; one given makes the other 0 (max raised to min); above [`MAX_FORMAT_VERSION`] is refused |
//! | [`parse_dump_source`] | a composefs-dump(5) file, `-` = stdin, in the given parse mode |
//! | [`write_image_file`] | the image to a temporary file beside the target, synced, renamed into place: an error never leaves a partial or stale-mixed image |

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::dump::{self, DumpError, ParseMode};
use crate::erofs::writer::WriteOptions;
use crate::tree::Tree;

/// Highest composefs format version (upstream `LCFS_VERSION_MAX`).
pub const MAX_FORMAT_VERSION: u32 = 1;

/// Temporary names tried beside an image before giving up (each is `.NAME.tmp-PID-N`; only
/// another writer of the same target in the same process could take them).
const TEMP_NAME_ATTEMPTS: u32 = 100;

/// What went wrong, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum MkcomposefsError {
    /// A format version above [`MAX_FORMAT_VERSION`].
    #[error("format version {min}..{max} requested: the highest is {MAX_FORMAT_VERSION}")]
    Version {
        /// The lowest asked for.
        min: u32,
        /// The highest asked for.
        max: u32,
    },
    /// The dump file could not be opened.
    #[error("opening {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The dump is not valid.
    #[error("parsing dump file {name}: {source}")]
    Dump {
        /// The file, or `<stdin>`.
        name: String,
        /// What is wrong where.
        source: DumpError,
    },
    /// The image path has no file name.
    #[error("{}: not a file name", path.display())]
    NotAFileName {
        /// The path.
        path: PathBuf,
    },
    /// Writing the image failed (nothing was left behind).
    #[error("{what} {}: {source}", path.display())]
    Write {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Every temporary name was taken.
    #[error("could not create a temporary file in {}", dir.display())]
    NoTempName {
        /// The directory.
        dir: PathBuf,
    },
}

/// The format version range `--min-version`/`--max-version` ask for (see the module table).
pub fn format_versions(
    min: Option<u32>,
    max: Option<u32>,
) -> Result<WriteOptions, MkcomposefsError> {
    let (min_version, max_version) = match (min, max) {
        (None, None) => {
            let d = WriteOptions::default();
            (d.min_version, d.max_version)
        }
        (min, max) => {
            let min = min.unwrap_or(0);
            (min, max.unwrap_or(0).max(min))
        }
    };
    if min_version > MAX_FORMAT_VERSION || max_version > MAX_FORMAT_VERSION {
        return Err(MkcomposefsError::Version {
            min: min_version,
            max: max_version,
        });
    }
    Ok(WriteOptions {
        min_version,
        max_version,
    })
}

/// The tree of the dump file at `source` (`-`: standard input).
pub fn parse_dump_source(source: &Path, mode: ParseMode) -> Result<Tree, MkcomposefsError> {
    let (tree, name) = if source.as_os_str() == "-" {
        (dump::parse(io::stdin().lock(), mode), "<stdin>".to_owned())
    } else {
        let file = File::open(source).map_err(|e| MkcomposefsError::Open {
            path: source.to_owned(),
            source: e,
        })?;
        (
            dump::parse(BufReader::new(file), mode),
            source.display().to_string(),
        )
    };
    tree.map_err(|source| MkcomposefsError::Dump { name, source })
}

/// A temporary file that is removed unless it was renamed into place.
struct TempFile {
    path: Option<PathBuf>,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn write_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> MkcomposefsError {
    let path = path.to_owned();
    move |source| MkcomposefsError::Write { what, path, source }
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_image_file(path: &Path, bytes: &[u8]) -> Result<(), MkcomposefsError> {
    let name = path
        .file_name()
        .ok_or_else(|| MkcomposefsError::NotAFileName {
            path: path.to_owned(),
        })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let (mut file, mut temp) = (None, TempFile { path: None });
    for n in 0..TEMP_NAME_ATTEMPTS {
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tmp-{}-{n}", std::process::id()));
        let candidate = dir.join(temp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(f) => {
                file = Some(f);
                temp.path = Some(candidate);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(write_error("creating a temporary file in", dir)(e)),
        }
    }
    let (Some(mut file), Some(temp_path)) = (file, temp.path.clone()) else {
        return Err(MkcomposefsError::NoTempName {
            dir: dir.to_owned(),
        });
    };
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(write_error("writing", &temp_path))?;
    drop(file);
    std::fs::rename(&temp_path, path).map_err(write_error("renaming into", path))?;
    temp.path = None;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_default_as_upstream_and_above_the_highest_are_refused() {
        let range = |min, max| format_versions(min, max).map(|o| (o.min_version, o.max_version));
        assert_eq!(range(None, None).expect("default"), (0, 1));
        assert_eq!(range(Some(1), None).expect("min only"), (1, 1));
        assert_eq!(range(None, Some(1)).expect("max only"), (0, 1));
        assert_eq!(range(Some(0), None).expect("min 0"), (0, 0));
        let error = range(Some(2), None).expect_err("too high");
        assert_eq!(
            error.to_string(),
            "format version 2..2 requested: the highest is 1"
        );
    }

    #[test]
    fn an_image_file_is_replaced_whole_and_a_failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("img.cfs");
        std::fs::write(&image, b"old").expect("write");
        write_image_file(&image, b"new image").expect("replace");
        assert_eq!(std::fs::read(&image).expect("read"), b"new image");
        let names = |d: &Path| {
            std::fs::read_dir(d)
                .expect("list")
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(dir.path()), ["img.cfs"], "no temporary file left");
        // A directory where the image should go: the rename fails, the temporary file goes.
        let target = dir.path().join("sub");
        std::fs::create_dir(&target).expect("mkdir");
        std::fs::write(target.join("x"), b"x").expect("write");
        let error = write_image_file(&target, b"image").expect_err("refused");
        assert!(error.to_string().starts_with("renaming into "), "{error}");
        let mut left = names(dir.path());
        left.sort();
        assert_eq!(left, ["img.cfs", "sub"]);
    }

    #[test]
    fn a_bad_dump_names_its_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.dump");
        std::fs::write(&path, "/ 0 40755 2 0 0 0 0.0 - - -\nnot a line\n").expect("write");
        let error = parse_dump_source(&path, ParseMode::Strict).expect_err("refused");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("parsing dump file {}: line 2: ", path.display())),
            "{text}"
        );
        let missing = parse_dump_source(&dir.path().join("none"), ParseMode::Strict);
        assert!(matches!(missing, Err(MkcomposefsError::Open { .. })));
    }
}
