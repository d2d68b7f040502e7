//! Hand-built OCI image layouts and tar layers, for inputs no well-behaved tool writes:
//! multi-platform indexes, hostile tar entries, huge manifests, decompression bombs.
//!
//! | file | content |
//! |---|---|
//! | `oci-layout` | `{"imageLayoutVersion":"1.0.0"}` |
//! | `blobs/sha256/<hex>` | every blob, named by the sha256 of its bytes |
//! | `index.json` | the entries given to [`Layout::set_index`], each tagged by `org.opencontainers.image.ref.name` |
//!
//! Tar headers are ustar (512 bytes: name 0..100, mode 100..108, uid, gid, size 124..136 in
//! octal, mtime, checksum 148..156, typeflag 156, linkname 157..257, magic `ustar\0` `00`).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::sha256_hex;

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const TAR_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
pub const TAR_GZIP_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// One tar block.
pub const BLOCK: usize = 512;

/// A ustar header. `kind` is the typeflag (`b'0'` file, `b'2'` symlink, `b'5'` directory).
pub fn tar_header(name: &str, kind: u8, size: u64, link: &str) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    assert!(
        name.len() <= 100 && link.len() <= 100,
        "ustar name too long"
    );
    h[..name.len()].copy_from_slice(name.as_bytes());
    let mode = if kind == b'5' { 0o755 } else { 0o644 };
    put_octal(&mut h[100..108], mode);
    put_octal(&mut h[108..116], 0);
    put_octal(&mut h[116..124], 0);
    put_octal(&mut h[124..136], size);
    put_octal(&mut h[136..148], 0);
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    put_octal(&mut h[148..155], u64::from(sum));
    h
}

/// Octal digits, zero-padded, NUL-terminated, filling `field`.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}", width = field.len() - 1);
    assert_eq!(digits.len(), field.len() - 1, "{value} does not fit");
    field[..digits.len()].copy_from_slice(digits.as_bytes());
    field[digits.len()] = 0;
}

/// A whole tar: entries `(name, kind, content, link)`, then the two zero end blocks.
pub fn tar(entries: &[(&str, u8, &[u8], &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, content, link) in entries {
        out.extend_from_slice(&tar_header(name, *kind, content.len() as u64, link));
        out.extend_from_slice(content);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}

/// A layer as the manifest and config name it.
pub struct LayerBlob {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    /// sha256 hex of the uncompressed tar (the config's diff_id).
    pub diff_id: String,
}

impl LayerBlob {
    /// An uncompressed tar layer.
    pub fn tar(bytes: Vec<u8>) -> LayerBlob {
        let diff_id = sha256_hex(&bytes);
        LayerBlob {
            bytes,
            media_type: TAR_TYPE,
            diff_id,
        }
    }
}

/// An OCI layout being written.
pub struct Layout {
    pub path: PathBuf,
}

impl Layout {
    pub fn new(path: &Path) -> Layout {
        std::fs::create_dir_all(path.join("blobs/sha256")).unwrap();
        std::fs::write(
            path.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Layout {
            path: path.to_path_buf(),
        }
    }

    /// Stores a blob; returns its descriptor.
    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let hex = sha256_hex(bytes);
        std::fs::write(self.path.join("blobs/sha256").join(&hex), bytes).unwrap();
        json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
    }

    /// Stores config and manifest of an image of `layers` for `arch`; returns the manifest's
    /// descriptor (with its platform).
    pub fn image(&self, arch: &str, layers: &[LayerBlob], labels: Value) -> Value {
        let config = json!({
            "architecture": arch, "os": "linux",
            "config": {"Labels": labels},
            "rootfs": {"type": "layers",
                       "diff_ids": layers.iter().map(|l| format!("sha256:{}", l.diff_id)).collect::<Vec<_>>()},
        });
        let config = self.blob(CONFIG_TYPE, &serde_json::to_vec(&config).unwrap());
        let layers: Vec<Value> = layers
            .iter()
            .map(|l| self.blob(l.media_type, &l.bytes))
            .collect();
        let manifest = json!({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                              "config": config, "layers": layers});
        let mut desc = self.blob(MANIFEST_TYPE, &serde_json::to_vec(&manifest).unwrap());
        desc["platform"] = json!({"architecture": arch, "os": "linux"});
        desc
    }

    /// Writes `index.json` with these `(tag, descriptor)` entries.
    pub fn set_index(&self, entries: &[(&str, &Value)]) {
        let manifests: Vec<Value> = entries
            .iter()
            .map(|(tag, desc)| {
                let mut d = (*desc).clone();
                d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
                d
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests});
        std::fs::write(
            self.path.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    /// `oci:PATH:TAG`.
    pub fn reference(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.path.display())
    }

    /// `oci:PATH@DIGEST` of a descriptor.
    pub fn by_digest(&self, desc: &Value) -> String {
        format!(
            "oci:{}@{}",
            self.path.display(),
            desc["digest"].as_str().unwrap()
        )
    }
}

/// A one-file tar layer whose file says `marker`.
pub fn marker_layer(marker: &str) -> LayerBlob {
    let content = format!("{marker}\n").repeat(20);
    LayerBlob::tar(tar(&[
        ("etc/", b'5', b"", ""),
        ("etc/motd", b'0', content.as_bytes(), ""),
    ]))
}
