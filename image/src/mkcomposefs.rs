//! What `mkcomposefs` does around building a tree and writing its image (`cfsgate
//! mkcomposefs`): upstream's format-version defaulting, reading a dump source (a file or
//! stdin) and writing the image file atomically.
//!
//! | function | does |
//! |---|---|
//! | [`mkcomposefs`] | the whole command: the tree from the source (a directory or a dump), the image written to its [`ImageOutput`], its digest |
//! | [`ImageOutput::choose`] | where `IMAGE` (`-` = stdout, refused when a terminal) and `--print-digest-only` send the image |
//! | [`format_versions`] | `--min-version`/`--max-version` as upstream: neither given is 0..1; one given makes the other 0 (max raised to min); above [`MAX_FORMAT_VERSION`] is refused |
//! | [`parse_dump_source`] | a composefs-dump(5) file, `-` = stdin, in the given parse mode |
//! | [`write_image_file`] | the image to a temporary file beside the target, synced, renamed into place: an error never leaves a partial or stale-mixed image |

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::dump::{self, DumpError, ParseMode};
use crate::erofs::error::WriteError;
use crate::erofs::writer::{write_image_owned, WriteOptions};
use crate::fromdir::{build_from_dir, BuildOptions, FromDirError};
use crate::fsverity::{digest_bytes, FsVeritySha256};
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
    /// An IMAGE was given with `--print-digest-only`.
    #[error("cannot give an IMAGE with --print-digest-only")]
    ImageWithDigestOnly,
    /// Neither an IMAGE nor `--print-digest-only`.
    #[error("no IMAGE given (or use --print-digest-only)")]
    NoImage,
    /// IMAGE `-` with stdout a terminal.
    #[error("stdout is a terminal: refusing to write an image to it")]
    StdoutIsTerminal,
    /// The source path is empty.
    #[error("empty source path")]
    EmptySource,
    /// The source directory could not be turned into a tree.
    #[error("reading source directory {}: {source}", path.display())]
    SourceDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: FromDirError,
    },
    /// The tree could not be written as an image.
    #[error("writing the composefs image: {0}")]
    Image(#[source] WriteError),
    /// Writing the image to stdout failed.
    #[error("writing the image to stdout: {0}")]
    Stdout(#[source] io::Error),
}

/// Where `mkcomposefs` writes the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageOutput {
    /// Nowhere (`--print-digest-only`).
    None,
    /// Standard output (IMAGE `-`).
    Stdout,
    /// This file, replaced atomically ([`write_image_file`]).
    File(PathBuf),
}

impl ImageOutput {
    /// The output of IMAGE (`-`: stdout, refused when it is a terminal) and
    /// `--print-digest-only` (which wants no IMAGE).
    pub fn choose(image: Option<&Path>, digest_only: bool) -> Result<Self, MkcomposefsError> {
        match (image, digest_only) {
            (Some(_), true) => Err(MkcomposefsError::ImageWithDigestOnly),
            (None, false) => Err(MkcomposefsError::NoImage),
            (None, true) => Ok(ImageOutput::None),
            (Some(path), false) if path.as_os_str() == "-" => {
                if io::stdout().is_terminal() {
                    return Err(MkcomposefsError::StdoutIsTerminal);
                }
                Ok(ImageOutput::Stdout)
            }
            (Some(path), false) => Ok(ImageOutput::File(path.to_owned())),
        }
    }

    /// Write the image `bytes` there.
    pub fn write(&self, bytes: &[u8]) -> Result<(), MkcomposefsError> {
        match self {
            ImageOutput::None => Ok(()),
            ImageOutput::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)
                    .and_then(|()| out.flush())
                    .map_err(MkcomposefsError::Stdout)
            }
            ImageOutput::File(path) => write_image_file(path, bytes),
        }
    }
}

/// One `mkcomposefs` run.
#[derive(Clone, Debug)]
pub struct MkcomposefsRequest<'a> {
    /// The source directory, or the dump file (`-`: stdin).
    pub source: &'a Path,
    /// `Some`: the source is a composefs-dump(5) file, parsed in this mode.
    pub dump: Option<ParseMode>,
    /// How a source directory becomes a tree.
    pub build: BuildOptions,
    /// `--min-version`, `--max-version` ([`format_versions`]).
    pub versions: (Option<u32>, Option<u32>),
    /// Where the image goes.
    pub output: ImageOutput,
    /// Whether the caller wants the image's fs-verity digest.
    pub digest: bool,
}

/// Build the image `request` asks for and write it to its output; its fs-verity digest when
/// asked for.
pub fn mkcomposefs(
    request: &MkcomposefsRequest<'_>,
) -> Result<Option<FsVeritySha256>, MkcomposefsError> {
    if request.source.as_os_str().is_empty() {
        return Err(MkcomposefsError::EmptySource);
    }
    let write_options = format_versions(request.versions.0, request.versions.1)?;
    let tree = match request.dump {
        Some(mode) => parse_dump_source(request.source, mode)?,
        None => build_from_dir(request.source, &request.build).map_err(|source| {
            MkcomposefsError::SourceDir {
                path: request.source.to_owned(),
                source,
            }
        })?,
    };
    // The tree is not needed after this: the writer rewrites it in place instead of a copy.
    let image = write_image_owned(tree, &write_options).map_err(MkcomposefsError::Image)?;
    request.output.write(&image)?;
    Ok(request.digest.then(|| digest_bytes(&image)))
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
    fn the_output_is_chosen_from_image_and_digest_only() {
        let image = Path::new("/x/img.cfs");
        let chosen = |image, only| ImageOutput::choose(image, only).map_err(|e| e.to_string());
        assert_eq!(
            chosen(Some(image), false),
            Ok(ImageOutput::File(image.into()))
        );
        assert_eq!(chosen(None, true), Ok(ImageOutput::None));
        assert_eq!(
            chosen(Some(image), true),
            Err("cannot give an IMAGE with --print-digest-only".into())
        );
        assert_eq!(
            chosen(None, false),
            Err("no IMAGE given (or use --print-digest-only)".into())
        );
        if !io::stdout().is_terminal() {
            assert_eq!(chosen(Some(Path::new("-")), false), Ok(ImageOutput::Stdout));
        }
    }

    #[test]
    fn an_image_from_a_dump_or_a_directory_is_written_with_its_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("src");
        std::fs::create_dir(&source).expect("mkdir");
        std::fs::write(source.join("f"), b"hello").expect("write");
        let image = dir.path().join("img.cfs");
        let mut request = MkcomposefsRequest {
            source: &source,
            dump: None,
            build: BuildOptions {
                compute_digests: true,
                ..BuildOptions::default()
            },
            versions: (None, None),
            output: ImageOutput::File(image.clone()),
            digest: true,
        };
        let digest = mkcomposefs(&request).expect("from the directory");
        let bytes = std::fs::read(&image).expect("read");
        assert_eq!(digest, Some(digest_bytes(&bytes)));
        let dump = dir.path().join("tree.dump");
        std::fs::write(&dump, "/ 0 40755 2 0 0 0 0.0 - - -\n").expect("write");
        request.source = &dump;
        request.dump = Some(ParseMode::Strict);
        request.output = ImageOutput::None;
        request.digest = false;
        assert_eq!(mkcomposefs(&request).expect("from the dump"), None);
        assert_eq!(std::fs::read(&image).expect("read"), bytes, "not written");
        request.versions = (Some(2), None);
        let error = mkcomposefs(&request).expect_err("version");
        assert!(matches!(error, MkcomposefsError::Version { .. }), "{error}");
        request.dump = None;
        request.versions = (None, None);
        request.source = &dump;
        let error = mkcomposefs(&request).expect_err("not a directory");
        let expected = format!("reading source directory {}: ", dump.display());
        assert!(error.to_string().starts_with(&expected), "{error}");
        request.source = Path::new("");
        let error = mkcomposefs(&request).expect_err("empty");
        assert_eq!(error.to_string(), "empty source path");
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
