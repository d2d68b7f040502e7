//! The one-line summaries `cfsgate import`, `pull` and `seal` print on stderr, and the lines a
//! pull prints on stdout, made from what the operations report (the CLI only prints them).
//!
//! | function | for | text |
//! |---|---|---|
//! | [`import_summary`] | `import oci:…/dir:…` | `imported REF (manifest sha256:…): N new objects (B bytes), M already present, image new\|already present[, seal checked][, ref NAME]` |
//! | [`pulled_lines`] | `pull` (stdout) | `manifest sha256:…` and `composefs sha256:…` lines |
//! | [`pull_summary`] | `pull --no-partial` | `pulled docker://…: N layer(s) downloaded (B bytes), …` |
//! | [`partial_pull_summary`] | `pull` | `pulled docker://…: N layer(s) by table of contents (…), M whole (…), …` |
//! | [`seal_summary`] | `seal` | `sealed SRC as DEST: composefs image sha256:…, config sha256:…` |

use crate::import::ImportReport;
use crate::registry::{DockerRef, Fetched, PartialPull};
use crate::seal::SealReport;

fn image_state(report: &ImportReport) -> (&'static str, &'static str) {
    (
        if report.new_image {
            "new"
        } else {
            "already present"
        },
        if report.seal.is_some() {
            ", seal checked"
        } else {
            ""
        },
    )
}

/// What an import of the local image `reference` did (named `ref_name`, if given).
pub fn import_summary(reference: &str, report: &ImportReport, ref_name: Option<&str>) -> String {
    let (image, seal) = image_state(report);
    format!(
        "imported {reference} (manifest {}): {} new objects ({} bytes), {} already present, image {image}{seal}{}",
        report.manifest_digest,
        report.new_objects,
        report.new_object_bytes,
        report.reused_objects,
        ref_name.map(|name| format!(", ref {name}")).unwrap_or_default(),
    )
}

/// A pull's stdout: the manifest pulled and the composefs image made of it, a line each.
pub fn pulled_lines(fetched: &Fetched, report: &ImportReport) -> String {
    format!(
        "manifest {}\ncomposefs sha256:{}\n",
        fetched.manifest_digest,
        report.image_digest.to_hex()
    )
}

/// What a whole pull of `docker` did: the fetch, then the import.
pub fn pull_summary(docker: &DockerRef, fetched: &Fetched, report: &ImportReport) -> String {
    let (image, seal) = image_state(report);
    format!(
        "pulled {docker}: {} layer(s) downloaded ({} bytes), {} already present, {} signature tag(s); {} new objects, image {image}{seal}",
        fetched.layers_downloaded,
        fetched.layer_bytes_downloaded,
        fetched.layers_present,
        fetched.signature_tags.len(),
        report.new_objects,
    )
}

/// What a partial pull of `docker` did (its notes are printed apart, a line each).
pub fn partial_pull_summary(docker: &DockerRef, pulled: &PartialPull) -> String {
    let PartialPull {
        fetched,
        import,
        partial,
    } = pulled;
    let (image, seal) = image_state(import);
    format!(
        "pulled {docker}: {} layer(s) by table of contents ({} bytes in {} range requests; {} files fetched, {} reused = {} bytes not downloaded), {} whole ({} downloaded, {} bytes; {} already present), {} signature tag(s); {} new objects, image {image}{seal}",
        partial.chunked_layers,
        partial.range_bytes,
        partial.range_requests,
        partial.files_fetched,
        partial.files_reused,
        partial.bytes_reused,
        partial.full_layers,
        fetched.layers_downloaded,
        fetched.layer_bytes_downloaded,
        fetched.layers_present,
        fetched.signature_tags.len(),
        import.new_objects,
    )
}

/// What sealing `src` did; `written_as` names the destination (with its tag).
pub fn seal_summary(src: &str, written_as: &str, report: &SealReport) -> String {
    format!(
        "sealed {src} as {written_as}: composefs image sha256:{}, config {}",
        report.image_digest.to_hex(),
        report.config_digest,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunked::PartialReport;
    use crate::digest::BlobDigest;
    use crate::Convention;
    use cfsgate_image::FsVeritySha256;

    fn report(new_image: bool, sealed: bool) -> ImportReport {
        ImportReport {
            image_digest: FsVeritySha256([0xab; 32]),
            manifest_digest: BlobDigest::of(b"manifest"),
            config_digest: BlobDigest::of(b"config"),
            new_objects: 5,
            new_object_bytes: 1234,
            reused_objects: 2,
            new_image,
            seal: sealed.then_some(FsVeritySha256([0xab; 32])),
            convention: Convention::Mkcomposefs,
            signatures: Vec::new(),
        }
    }

    fn fetched() -> Fetched {
        Fetched {
            layout: "/tmp/layout".into(),
            top_digest: BlobDigest::of(b"index"),
            manifest_digest: BlobDigest::of(b"manifest"),
            oci_reference: "oci:/tmp/layout@sha256:00".into(),
            layers_downloaded: 3,
            layer_bytes_downloaded: 4096,
            layers_present: 1,
            signature_tags: vec!["sha256-aa.sig".into()],
        }
    }

    fn docker() -> DockerRef {
        DockerRef::parse("docker://registry.example/app:1").expect("a reference")
    }

    #[test]
    fn an_import_says_what_was_new_the_seal_and_the_ref() {
        let manifest = BlobDigest::of(b"manifest");
        assert_eq!(
            import_summary("oci:/l:1", &report(true, true), Some("app")),
            format!("imported oci:/l:1 (manifest {manifest}): 5 new objects (1234 bytes), 2 already present, image new, seal checked, ref app")
        );
        assert_eq!(
            import_summary("dir:/d", &report(false, false), None),
            format!("imported dir:/d (manifest {manifest}): 5 new objects (1234 bytes), 2 already present, image already present")
        );
    }

    #[test]
    fn a_pull_prints_the_manifest_and_the_composefs_image() {
        assert_eq!(
            pulled_lines(&fetched(), &report(true, false)),
            format!(
                "manifest {}\ncomposefs sha256:{}\n",
                BlobDigest::of(b"manifest"),
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn a_whole_pull_counts_layers_signatures_and_objects() {
        assert_eq!(
            pull_summary(&docker(), &fetched(), &report(false, true)),
            "pulled docker://registry.example/app:1: 3 layer(s) downloaded (4096 bytes), 1 already present, 1 signature tag(s); 5 new objects, image already present, seal checked"
        );
    }

    #[test]
    fn a_partial_pull_counts_ranges_files_and_whole_layers() {
        let pulled = PartialPull {
            fetched: fetched(),
            import: report(true, false),
            partial: PartialReport {
                chunked_layers: 2,
                full_layers: 1,
                range_bytes: 900,
                range_requests: 4,
                full_layer_bytes: 4096,
                files_reused: 7,
                files_fetched: 3,
                bytes_reused: 800,
                notes: vec!["layer 3: no table".into()],
            },
        };
        assert_eq!(
            partial_pull_summary(&docker(), &pulled),
            "pulled docker://registry.example/app:1: 2 layer(s) by table of contents (900 bytes in 4 range requests; 3 files fetched, 7 reused = 800 bytes not downloaded), 1 whole (3 downloaded, 4096 bytes; 1 already present), 1 signature tag(s); 5 new objects, image new"
        );
    }

    #[test]
    fn a_seal_names_the_destination_image_and_config() {
        let sealed = SealReport {
            image_digest: FsVeritySha256([0xcd; 32]),
            manifest_digest: BlobDigest::of(b"m"),
            manifest_size: 10,
            config_digest: BlobDigest::of(b"c"),
        };
        assert_eq!(
            seal_summary("oci:/a:1", "oci:/b:1-sealed", &sealed),
            format!(
                "sealed oci:/a:1 as oci:/b:1-sealed: composefs image sha256:{}, config {}",
                "cd".repeat(32),
                BlobDigest::of(b"c")
            )
        );
    }
}
