//! Shared helpers for cfsgate-oci's integration tests: real layouts made by umoci and skopeo,
//! layouts extended with hand-crafted layers, and a comparison of a merged tree with a
//! directory that `umoci unpack` wrote.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cfsgate_image::fsverity::{digest_reader, Sha256};
use cfsgate_image::tree::{Content, FileData, InodeId, Tree, S_IFMT};
use cfsgate_oci::BlobDigest;
use serde_json::{json, Value};

/// Whether root-only tests may run; under CI=true a non-root run is a failure, not a skip.
pub fn have_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs root under CI"
    );
    eprintln!("skipping {test}: needs root");
    false
}

pub fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn fixture_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/oci/make-umoci-image.sh")
}

/// The multi-layer umoci image (tag `test`) in `work/layout`.
pub fn umoci_image(work: &Path, big_mib: u32) -> PathBuf {
    let layout = work.join("layout");
    let mut cmd = Command::new("sh");
    cmd.arg(fixture_script())
        .arg(&layout)
        .arg(work)
        .arg(big_mib.to_string());
    run(&mut cmd);
    layout
}

/// A layout holding an empty image (no layers) under `tag`.
pub fn empty_image(work: &Path, tag: &str) -> PathBuf {
    let layout = work.join("layout");
    run(Command::new("umoci")
        .arg("init")
        .arg("--layout")
        .arg(&layout));
    run(Command::new("umoci")
        .arg("new")
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display())));
    layout
}

pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) -> PathBuf {
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle));
    bundle.join("rootfs")
}

pub fn write_blob(layout: &Path, data: &[u8]) -> BlobDigest {
    let digest = BlobDigest::of(data);
    fs::write(layout.join("blobs/sha256").join(digest.hex()), data).unwrap();
    digest
}

pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// The index.json entry for `tag`.
pub fn tagged(layout: &Path, tag: &str) -> Value {
    let index = read_json(&layout.join("index.json"));
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag}"))
        .clone()
}

/// Point `tag` at a descriptor (replacing an existing entry with that tag).
pub fn set_tag(layout: &Path, tag: &str, mut desc: Value) {
    let path = layout.join("index.json");
    let mut index = read_json(&path);
    let list = index["manifests"].as_array_mut().unwrap();
    list.retain(|d| d["annotations"]["org.opencontainers.image.ref.name"] != tag);
    desc["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    list.push(desc);
    fs::write(path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Add a layer blob (already compressed as `media_type` says) on top of image `from`, tag the
/// result `to`. `diff_id` is the sha256 of the uncompressed tar.
pub fn add_layer(
    layout: &Path,
    from: &str,
    to: &str,
    blob: &[u8],
    media_type: &str,
    diff_id: BlobDigest,
) {
    let top = tagged(layout, from);
    let mut manifest = read_json(&blob_path(layout, top["digest"].as_str().unwrap()));
    let mut config = read_json(&blob_path(
        layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    let layer_digest = write_blob(layout, blob);
    if config["rootfs"]["diff_ids"].is_null() {
        config["rootfs"]["diff_ids"] = json!([]);
    }
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(diff_id.to_string()));
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = write_blob(layout, &config_bytes);
    manifest["config"]["digest"] = json!(config_digest.to_string());
    manifest["config"]["size"] = json!(config_bytes.len());
    if manifest["layers"].is_null() {
        manifest["layers"] = json!([]);
    }
    manifest["layers"].as_array_mut().unwrap().push(json!({
        "mediaType": media_type, "digest": layer_digest.to_string(), "size": blob.len()
    }));
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = write_blob(layout, &manifest_bytes);
    set_tag(
        layout,
        to,
        json!({ "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest.to_string(), "size": manifest_bytes.len() }),
    );
}

pub const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Add an uncompressed tar layer.
pub fn add_tar_layer(layout: &Path, from: &str, to: &str, tar: &[u8]) {
    add_layer(layout, from, to, tar, TAR, BlobDigest::of(tar));
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

/// A tar header with raw fields (no path checks: hostile names are the point).
pub fn raw_header(path: &[u8], kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let name = &mut h.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path);
    }
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(size);
    h.set_cksum();
    h
}

/// Builds a tar from entries: (path, kind, link target, content).
#[derive(Default)]
pub struct TarMaker {
    pub out: Vec<u8>,
}

impl TarMaker {
    pub fn file(&mut self, path: &[u8], data: &[u8]) -> &mut Self {
        let h = raw_header(path, tar::EntryType::Regular, data.len() as u64);
        self.raw(h, data)
    }

    pub fn dir(&mut self, path: &[u8]) -> &mut Self {
        self.raw(raw_header(path, tar::EntryType::Directory, 0), b"")
    }

    pub fn link(&mut self, path: &[u8], kind: tar::EntryType, target: &[u8]) -> &mut Self {
        let mut h = raw_header(path, kind, 0);
        {
            let l = &mut h.as_old_mut().linkname;
            l.fill(0);
            l[..target.len()].copy_from_slice(target);
        }
        h.set_cksum();
        self.raw(h, b"")
    }

    pub fn raw(&mut self, h: tar::Header, data: &[u8]) -> &mut Self {
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

fn xattrs_of(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut names = vec![0u8; 65536];
    let n = rustix::fs::llistxattr(path, &mut names[..]).unwrap();
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = std::ffi::CString::new(name).unwrap();
        let mut value = vec![0u8; 65536];
        let len = rustix::fs::lgetxattr(path, cname.as_c_str(), &mut value[..]).unwrap();
        out.push((name.to_vec(), value[..len].to_vec()));
    }
    out.sort();
    out
}

/// Compare everything below the root of `tree` with the directory `dir` (as written by a real
/// unpacker): names, types, modes, owners, mtimes (seconds), sizes, content, symlink targets,
/// device numbers, xattrs and hard-link structure. `objects` holds external content, if stored.
pub fn compare_with_dir(tree: &Tree, dir: &Path, objects: Option<&Path>) {
    let mut inode_map: HashMap<(u64, u64), InodeId> = HashMap::new();
    let mut compared = 0usize;
    compare_dir(
        tree,
        InodeId::ROOT,
        dir,
        objects,
        &mut inode_map,
        &mut compared,
    );
    assert!(compared > 0);
}

fn compare_dir(
    tree: &Tree,
    id: InodeId,
    dir: &Path,
    objects: Option<&Path>,
    map: &mut HashMap<(u64, u64), InodeId>,
    compared: &mut usize,
) {
    let entries = tree.inode(id).entries().unwrap();
    let mut on_disk: Vec<Vec<u8>> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            std::os::unix::ffi::OsStrExt::as_bytes(e.unwrap().file_name().as_os_str()).to_vec()
        })
        .collect();
    on_disk.sort();
    let in_tree: Vec<Vec<u8>> = entries.iter().map(|e| e.name.to_vec()).collect();
    assert_eq!(
        in_tree
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect::<Vec<_>>(),
        on_disk
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect::<Vec<_>>(),
        "names in {}",
        dir.display()
    );
    for entry in entries {
        let path =
            dir.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&entry.name));
        let meta = fs::symlink_metadata(&path).unwrap();
        let inode = tree.inode(entry.inode);
        let what = path.display().to_string();
        *compared += 1;
        // Hard links: the same disk inode must be the same tree inode, and vice versa.
        let key = (meta.dev(), meta.ino());
        match map.get(&key) {
            Some(&seen) => assert_eq!(seen, entry.inode, "{what}: hard-link structure differs"),
            None => {
                assert!(
                    !map.values().any(|&v| v == entry.inode),
                    "{what}: tree links an inode the disk does not"
                );
                map.insert(key, entry.inode);
            }
        }
        assert_eq!(inode.stat.mode, meta.mode(), "{what}: mode");
        assert_eq!(
            (inode.stat.uid, inode.stat.gid),
            (meta.uid(), meta.gid()),
            "{what}: owner"
        );
        assert_eq!(inode.stat.mtime_sec, meta.mtime(), "{what}: mtime");
        assert_eq!(
            xattrs_of(&path),
            inode
                .xattrs
                .iter()
                .map(|x| (x.key.to_vec(), x.value.to_vec()))
                .collect::<Vec<_>>(),
            "{what}: xattrs"
        );
        if meta.is_dir() {
            compare_dir(tree, entry.inode, &path, objects, map, compared);
            continue;
        }
        assert_eq!(u64::from(inode.stat.nlink), meta.nlink(), "{what}: nlink");
        assert_eq!(inode.size(), meta.size(), "{what}: size");
        match (&inode.content, meta.mode() & S_IFMT) {
            (Content::Regular(data), 0o100000) => match data {
                FileData::Inline(bytes) => {
                    assert_eq!(&bytes[..], &fs::read(&path).unwrap()[..], "{what}: content")
                }
                FileData::External {
                    digest, backing, ..
                } => {
                    let actual = digest_reader::<Sha256>(fs::File::open(&path).unwrap()).unwrap();
                    assert_eq!(digest.unwrap(), actual, "{what}: content digest");
                    assert_eq!(
                        backing.as_deref(),
                        Some(actual.object_path().as_bytes()),
                        "{what}: backing path"
                    );
                    if let Some(objects) = objects {
                        let object = objects.join(actual.object_path());
                        assert_eq!(
                            digest_reader::<Sha256>(fs::File::open(&object).unwrap()).unwrap(),
                            actual,
                            "{what}: stored object"
                        );
                    }
                }
            },
            (Content::Symlink(target), 0o120000) => {
                assert_eq!(
                    &target[..],
                    std::os::unix::ffi::OsStrExt::as_bytes(
                        fs::read_link(&path).unwrap().as_os_str()
                    ),
                    "{what}: target"
                )
            }
            (Content::Special { .. }, 0o020000 | 0o060000 | 0o010000) => {
                assert_eq!(inode.stat.rdev, meta.rdev(), "{what}: rdev")
            }
            (content, kind) => panic!("{what}: type {kind:o} on disk, {content:?} in the tree"),
        }
    }
}

/// Run a command, fail the test unless it succeeds, return its trimmed stdout.
pub fn output(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// (manifest digest, manifest path, config path) of `tag`, found with jq alone.
pub fn tagged_paths(layout: &Path, tag: &str) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let manifest_digest = jq(
        &format!(
            ".manifests[] | select(.annotations[\"org.opencontainers.image.ref.name\"] == \"{tag}\") | .digest"
        ),
        &layout.join("index.json"),
    );
    assert_eq!(manifest_digest.lines().count(), 1, "one entry tagged {tag}");
    let manifest = blob_path(layout, &manifest_digest);
    let config = blob_path(layout, &jq(".config.digest", &manifest));
    (manifest_digest, manifest, config)
}

/// Replace the config of `tag` by `jq -c FILTER` of it (manifest and tag follow).
pub fn edit_config(layout: &Path, tag: &str, filter: &str) {
    let (_, manifest, config) = tagged_paths(layout, tag);
    let new_config = output(Command::new("jq").arg("-c").arg(filter).arg(&config));
    let config_digest = write_blob(layout, new_config.as_bytes());
    let new_manifest = output(
        Command::new("jq")
            .arg("-c")
            .arg(format!(
                ".config.digest = \"{config_digest}\" | .config.size = {}",
                new_config.len()
            ))
            .arg(&manifest),
    );
    let manifest_digest = write_blob(layout, new_manifest.as_bytes());
    set_tag(
        layout,
        tag,
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest.to_string(),
            "size": new_manifest.len(),
        }),
    );
}

/// `jq -r FILTER FILE`.
pub fn jq(filter: &str, file: &Path) -> String {
    output(Command::new("jq").arg("-r").arg(filter).arg(file))
}
