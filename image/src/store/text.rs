//! The store's reports as text for people (`cfsgate fsck`, `gc`, `images`, and the verity
//! note of `create`); `--json` prints the serialized reports instead.
//!
//! | function | text |
//! |---|---|
//! | [`fsck_text`] | `checked N objects, N images, N refs`, one line per problem, `moved to …` per quarantined file, the stale temporary files, `ok` when nothing is wrong |
//! | [`gc_text`] | `removed` (dry run: `would remove`) `N images and N objects, N bytes; N temporary files; kept N images and N objects` |
//! | [`images_table`] | a header, then per image: digest, size, objects, shared and unique object bytes, refs |
//! | [`verity_note`] | for a repository without kernel fs-verity: what that means |
//!
//! Every text but the note ends with a newline.

use std::fmt::Write as _;

use super::{FsckReport, GcReport, ImageInfo, Repository, VerityMode};

impl FsckReport {
    /// How many problems were found (what [`FsckReport::is_ok`] requires to be zero).
    pub fn problems(&self) -> usize {
        self.corrupt_objects.len()
            + self.corrupt_images.len()
            + self.missing_objects.len()
            + self.dangling_refs.len()
            + self.stray_files.len()
    }
}

/// `fsck`: what was checked, every problem, what was moved.
pub fn fsck_text(report: &FsckReport) -> String {
    let mut text = format!(
        "checked {} objects, {} images, {} refs\n",
        report.objects_checked, report.images_checked, report.refs_checked
    );
    for o in &report.corrupt_objects {
        let _ = writeln!(text, "corrupt object {}: {}", o.digest, o.problem);
    }
    for i in &report.corrupt_images {
        let _ = writeln!(text, "corrupt image {}: {}", i.digest, i.problem);
    }
    for m in &report.missing_objects {
        let _ = writeln!(text, "image {} is missing object {}", m.image, m.object);
    }
    for r in &report.dangling_refs {
        let _ = writeln!(text, "dangling ref {}: {}", r.name, r.problem);
    }
    for s in &report.stray_files {
        let _ = writeln!(text, "stray file {}", s.display());
    }
    for q in &report.quarantined {
        let _ = writeln!(text, "moved to {}", q.display());
    }
    if report.stale_temp_files > 0 {
        let _ = writeln!(
            text,
            "{} temporary files left by interrupted writers (gc removes them)",
            report.stale_temp_files
        );
    }
    if report.is_ok() {
        text.push_str("ok\n");
    }
    text
}

/// `gc`: what was (or, `dry_run`, would be) removed and kept.
pub fn gc_text(report: &GcReport, dry_run: bool) -> String {
    let verb = if dry_run { "would remove" } else { "removed" };
    format!(
        "{verb} {} images and {} objects, {} bytes; {} temporary files; kept {} images and {} objects\n",
        report.images_removed,
        report.objects_removed,
        report.bytes_freed,
        report.temp_files_removed,
        report.images_kept,
        report.objects_kept
    )
}

/// `images`: one row per stored image under a header.
pub fn images_table(images: &[ImageInfo]) -> String {
    let mut text = format!(
        "{:<64}  {:>10}  {:>8}  {:>12}  {:>12}  REFS\n",
        "DIGEST", "SIZE", "OBJECTS", "SHARED", "UNIQUE"
    );
    for info in images {
        let _ = writeln!(
            text,
            "{:<64}  {:>10}  {:>8}  {:>12}  {:>12}  {}",
            info.digest.to_hex(),
            info.size,
            info.n_objects,
            info.shared_bytes,
            info.unique_bytes,
            info.refs.join(",")
        );
    }
    text
}

/// A note for a repository whose objects the kernel does not check (userspace verity).
pub fn verity_note(repo: &Repository) -> Option<String> {
    (repo.meta().verity == VerityMode::Userspace).then(|| {
        format!(
            "note: repository {}: {}",
            repo.path().display(),
            VerityMode::Userspace.describe()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository holding one image of a two-file directory, named `app`.
    fn repository() -> (tempfile::TempDir, Repository) {
        let work = tempfile::tempdir().expect("tempdir");
        let src = work.path().join("src");
        std::fs::create_dir(&src).expect("mkdir");
        std::fs::write(src.join("a"), vec![b'a'; 5000]).expect("write");
        std::fs::write(src.join("b"), vec![b'b'; 7000]).expect("write");
        let repo = Repository::create_or_open(work.path().join("repo")).expect("repo");
        repo.import_tree_from_dir(&src, Some("app"))
            .expect("import");
        (work, repo)
    }

    #[test]
    fn a_sound_store_reads_ok_and_a_corrupt_object_is_named() {
        let (_work, repo) = repository();
        let report = repo.fsck(false).expect("fsck");
        assert_eq!(report.problems(), 0);
        let text = fsck_text(&report);
        assert!(
            text.starts_with("checked 2 objects, 1 images, 1 refs\n"),
            "{text}"
        );
        assert!(text.ends_with("\nok\n"), "{text}");
        let objects = repo.path().join("objects");
        let dir = std::fs::read_dir(&objects)
            .expect("objects")
            .filter_map(Result::ok)
            .find(|e| e.path().is_dir())
            .expect("a fan-out directory");
        let object = std::fs::read_dir(dir.path())
            .expect("fan-out")
            .filter_map(Result::ok)
            .next()
            .expect("an object")
            .path();
        // Objects may be read-only (and immutable under kernel verity): replace, not edit.
        let _ = std::fs::remove_file(&object);
        std::fs::write(&object, b"not the content").expect("corrupt");
        let report = repo.fsck(false).expect("fsck");
        assert_eq!(
            report.problems(),
            report.corrupt_objects.len() + report.missing_objects.len()
        );
        assert!(report.problems() >= 1);
        let text = fsck_text(&report);
        assert!(text.contains("\ncorrupt object "), "{text}");
        assert!(!text.contains("\nok\n"), "{text}");
    }

    #[test]
    fn gc_and_images_say_what_is_kept() {
        let (_work, repo) = repository();
        let list = repo.list_images().expect("list");
        let table = images_table(&list);
        let rows: Vec<&str> = table.lines().collect();
        assert!(
            rows[0].starts_with("DIGEST ") && rows[0].ends_with("  REFS"),
            "{table}"
        );
        assert_eq!(rows.len(), 2, "{table}");
        assert!(rows[1].starts_with(&list[0].digest.to_hex()), "{table}");
        assert!(rows[1].ends_with("  app"), "{table}");
        let gc = repo.gc(true).expect("gc");
        assert_eq!(
            gc_text(&gc, true),
            "would remove 0 images and 0 objects, 0 bytes; 0 temporary files; kept 1 images and 2 objects\n"
        );
    }
}
