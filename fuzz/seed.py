#!/usr/bin/env python3
"""Seed corpora for the cfsgate fuzz targets, written to fuzz/corpus/<target>/seed-<sha1>.

Sources (read in place, never copied into the repository):

| target       | seeds |
|--------------|-------|
| dump_parse   | conformance dumps (composefs/ and generated/, gunzipped, at most MAX_SEED bytes) |
| erofs_read   | images `cfsgate mkcomposefs --from-file` writes for those dumps |
| tar_layer    | small tars made here: files, dirs, links, hard links, devices, whiteouts, opaque dirs, PAX xattrs, long names; gzip and zstd copies |
| oci_manifest | OCI layouts and dir: images around those tars, packed as `fuzz/src/lib.rs` `pieces` reads them |
| sig_payload  | simple-signing payloads from the containers-image signatures, and made here |
| sig_wrapper  | containers-image signature files |
| rekor_bundle | the `dev.sigstore.cosign/bundle` annotations of those signature files |
| key_pem      | containers-image keys and certificates; openssl-made keys (PEM and DER, SPKI and PKCS#1) |
| policy_parse | containers-image policy.json, examples/policy/*.json, policies in policy/tests |
| hook_json    | `runc spec` config.json, state JSON, examples/hooks.d |
| registry_json | challenges (Bearer, Basic), token answers, a manifest, an index, referrers indexes, made here, each behind its selector byte |

Usage: seed.py REPO_ROOT CONFORMANCE_DIR CFSGATE_BINARY_OR_EMPTY
"""

import base64
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

# Larger seeds slow every execution; libFuzzer also caps -max_len from the corpus.
MAX_SEED = 256 * 1024
SEP = b"\n----\n"
# The sigstore signature annotation holding a Rekor bundle (cfsgate_verifier::sigstore).
REKOR_BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"


def put(corpus, target, data):
    if not data or len(data) > MAX_SEED:
        return
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read_asset(path):
    """Conformance files; some are git symlinks checked out as a file naming their target."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode()
        target = os.path.join(os.path.dirname(path), text.strip())
        if "\n" not in text.strip() and text.strip() and os.path.isfile(target):
            with open(target, "rb") as f:
                raw = f.read()
    except (UnicodeDecodeError, OSError, ValueError):
        pass
    if path.endswith(".gz"):
        raw = gzip.decompress(raw)
    return raw


def dumps(conf):
    out = []
    for sub in ("composefs", "generated"):
        d = os.path.join(conf, sub)
        for name in sorted(os.listdir(d)):
            if ".dump" in name and not name.endswith((".sha256", ".version")):
                try:
                    data = read_asset(os.path.join(d, name))
                except OSError:
                    continue
                out.append((name, data))
    return out


def seed_dumps_and_images(corpus, conf, cfsgate):
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in dumps(conf):
            if len(data) > MAX_SEED:
                continue
            put(corpus, "dump_parse", data)
            if not cfsgate:
                continue
            src = os.path.join(tmp, "in.dump")
            img = os.path.join(tmp, "out.img")
            with open(src, "wb") as f:
                f.write(data)
            for extra in ([], ["--lenient"], ["--max-version", "0"]):
                r = subprocess.run([cfsgate, "mkcomposefs", "--from-file", *extra, src, img],
                                   capture_output=True)
                if r.returncode == 0:
                    with open(img, "rb") as f:
                        put(corpus, "erofs_read", f.read())


def tar_bytes(fmt, members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, content in members:
            t.addfile(info, io.BytesIO(content) if content is not None else None)
    return buf.getvalue()


def ti(name, kind=tarfile.REGTYPE, size=0, mode=0o644, **kw):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.mtime = 1700000000
    for k, v in kw.items():
        setattr(info, k, v)
    return info


def sample_tars():
    big = b"x" * 5000
    small = b"hello\n"
    base = [
        (ti("./", tarfile.DIRTYPE, mode=0o755), None),
        (ti("usr/", tarfile.DIRTYPE, mode=0o755), None),
        (ti("usr/bin/", tarfile.DIRTYPE, mode=0o755), None),
        (ti("usr/bin/tool", size=len(big), mode=0o755), big),
        (ti("etc/", tarfile.DIRTYPE, mode=0o755), None),
        (ti("etc/hello", size=len(small)), small),
        (ti("etc/link", tarfile.SYMTYPE, linkname="hello"), None),
        (ti("etc/hard", tarfile.LNKTYPE, linkname="etc/hello"), None),
        (ti("dev/", tarfile.DIRTYPE, mode=0o755), None),
        (ti("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3), None),
        (ti("dev/fifo", tarfile.FIFOTYPE), None),
    ]
    whiteouts = [
        (ti("etc/", tarfile.DIRTYPE, mode=0o755), None),
        (ti("etc/.wh.hello", size=0), b""),
        (ti("usr/", tarfile.DIRTYPE, mode=0o700), None),
        (ti("usr/.wh..wh..opq", size=0), b""),
        (ti("usr/new", size=3), b"new"),
    ]
    longname = "d/" + "n" * 200
    pax = [
        (ti("d/", tarfile.DIRTYPE, mode=0o755,
            pax_headers={"SCHILY.xattr.user.test": "value",
                         "SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}), None),
        (ti(longname, size=2, pax_headers={"mtime": "1700000000.123456789"}), b"hi"),
        (ti("d/" + "l" * 120, tarfile.SYMTYPE, linkname="t" * 150), None),
    ]
    out = []
    for members in (base, whiteouts, pax):
        out.append(tar_bytes(tarfile.PAX_FORMAT, members))
    out.append(tar_bytes(tarfile.GNU_FORMAT, base))
    out.append(tar_bytes(tarfile.GNU_FORMAT, [(ti(longname, size=2), b"hi")]))
    out.append(tar_bytes(tarfile.USTAR_FORMAT, base))
    return out


def zstd(data):
    try:
        return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def seed_tars(corpus):
    tars = sample_tars()
    for t in tars:
        put(corpus, "tar_layer", t)
        put(corpus, "tar_layer", gzip.compress(t, mtime=0))
        z = zstd(t)
        if z:
            put(corpus, "tar_layer", z)
    return tars


def packed(selector, files):
    """files[0] names later files as @@j / ##j; see cfsgate_fuzz::pieces."""
    return bytes([selector]) + SEP.join(files)


def desc(media_type, j, extra=None):
    d = {"mediaType": media_type, "digest": "@@%d" % j, "size": "##%d" % j}
    if extra:
        d.update(extra)
    text = json.dumps(d)
    return text.replace('"##%d"' % j, "##%d" % j)


def seed_oci(corpus, tars):
    oci_index = "application/vnd.oci.image.index.v1+json"
    oci_manifest = "application/vnd.oci.image.manifest.v1+json"
    oci_config = "application/vnd.oci.image.config.v1+json"
    docker_manifest = "application/vnd.docker.distribution.manifest.v2+json"
    docker_config = "application/vnd.docker.container.image.v1+json"
    docker_list = "application/vnd.docker.distribution.manifest.list.v2+json"
    plat = {"platform": {"os": "linux", "architecture": "amd64"}}
    for tar in tars[:3]:
        for layer, lt in ((tar, "application/vnd.oci.image.layer.v1.tar"),
                          (gzip.compress(tar, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")):
            diff = "sha256:" + hashlib.sha256(tar).hexdigest()
            config = json.dumps({"architecture": "amd64", "os": "linux",
                                 "rootfs": {"type": "layers", "diff_ids": [diff]},
                                 "config": {}}).encode()
            # OCI layout: index.json -> manifest (1) -> config (2), layer (3)
            manifest = ('{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[%s]}' % (
                oci_manifest, desc(oci_config, 2), desc(lt, 3))).encode()
            index = ('{"schemaVersion":2,"manifests":[%s]}' % desc(
                oci_manifest, 1, {"annotations": {"org.opencontainers.image.ref.name": "latest"}})).encode()
            put(corpus, "oci_manifest", packed(0, [index, manifest, config, layer]))
            # nested index: index.json -> index (1) -> manifest (2) -> config (3), layer (4)
            manifest2 = manifest.replace(b"@@3", b"@@4").replace(b"##3", b"##4") \
                .replace(b"@@2", b"@@3").replace(b"##2", b"##3")
            inner = ('{"schemaVersion":2,"mediaType":"%s","manifests":[%s]}' % (
                oci_index, desc(oci_manifest, 2, plat))).encode()
            outer = ('{"schemaVersion":2,"manifests":[%s]}' % desc(oci_index, 1)).encode()
            put(corpus, "oci_manifest", packed(0, [outer, inner, manifest2, config, layer]))
            # dir: image with a Docker schema 2 manifest: manifest.json -> config (1), layer (2)
            dlt = "application/vnd.docker.image.rootfs.diff.tar" if layer is tar else \
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            dmanifest = ('{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[%s]}' % (
                docker_manifest, desc(docker_config, 1), desc(dlt, 2))).encode()
            put(corpus, "oci_manifest", packed(1, [dmanifest, config, layer]))
            # a Docker manifest list in a dir: image
            dlist = ('{"schemaVersion":2,"mediaType":"%s","manifests":[%s]}' % (
                docker_list, desc(docker_manifest, 1, plat))).encode()
            dm2 = dmanifest.replace(b"@@2", b"@@3").replace(b"##2", b"##3") \
                .replace(b"@@1", b"@@2").replace(b"##1", b"##2")
            put(corpus, "oci_manifest", packed(1, [dlist, dm2, config, layer]))


def files_under(d):
    for root, _, names in os.walk(d):
        for n in sorted(names):
            yield os.path.join(root, n)


def seed_signatures(corpus, conf):
    ci = os.path.join(conf, "containers-image")
    for path in files_under(ci):
        name = os.path.basename(path)
        try:
            data = read_asset(path)
        except OSError:
            continue
        if name.startswith("signature-") or "signature" in name:
            put(corpus, "sig_wrapper", data)
            if data.startswith(b"\x00sigstore-json\n"):
                try:
                    payload = base64.b64decode(json.loads(data[15:])["payload"])
                    put(corpus, "sig_payload", payload)
                except (ValueError, KeyError):
                    pass
                try:
                    bundle = json.loads(data[15:])["annotations"][REKOR_BUNDLE_ANNOTATION]
                    put(corpus, "rekor_bundle", bundle.encode())
                except (ValueError, KeyError, TypeError, AttributeError):
                    pass
        if name.endswith((".pub", ".pem", ".crt", "-cert")) or "crt" in name:
            put(corpus, "key_pem", data)
        if name.endswith(".json") and "policy" in name:
            put(corpus, "policy_parse", data)
    payload = {"critical": {"identity": {"docker-reference": "example.com/app:latest"},
                            "image": {"docker-manifest-digest": "sha256:" + "ab" * 32},
                            "type": "cosign container image signature"},
               "optional": {"creator": "cfsgate", "timestamp": 1700000000}}
    put(corpus, "sig_payload", json.dumps(payload).encode())


def seed_keys(corpus):
    with tempfile.TemporaryDirectory() as tmp:
        key = os.path.join(tmp, "k")
        gens = [["genpkey", "-algorithm", "ed25519"],
                ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
                ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]]
        for gen in gens:
            try:
                subprocess.run(["openssl", *gen, "-out", key], check=True, capture_output=True)
                for form in (["-outform", "PEM"], ["-outform", "DER"]):
                    out = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", *form],
                                         check=True, capture_output=True).stdout
                    put(corpus, "key_pem", out)
                if "RSA" in gen:
                    for form in ("PEM", "DER"):
                        out = subprocess.run(["openssl", "rsa", "-in", key, "-RSAPublicKey_out",
                                              "-outform", form], check=True,
                                             capture_output=True).stdout
                        put(corpus, "key_pem", out)
                cert = subprocess.run(["openssl", "req", "-new", "-x509", "-key", key, "-subj",
                                       "/CN=fuzz", "-days", "1"], check=True,
                                      capture_output=True).stdout
                put(corpus, "key_pem", cert)
            except (OSError, subprocess.CalledProcessError):
                continue


def seed_policies(corpus, repo):
    for d in ("examples/policy", "policy/tests", "docs"):
        for path in files_under(os.path.join(repo, d)):
            if path.endswith(".json"):
                with open(path, "rb") as f:
                    put(corpus, "policy_parse", f.read())
    # policies embedded in Rust tests and docs: JSON objects that mention "default"
    for d in ("policy/tests", "docs"):
        for path in files_under(os.path.join(repo, d)):
            with open(path, "rb") as f:
                text = f.read()
            for m in re.finditer(rb'\{\s*"default"[^`]*?\n\}', text):
                put(corpus, "policy_parse", m.group(0))


def seed_hook(corpus, repo):
    with tempfile.TemporaryDirectory() as tmp:
        for tool in (["runc", "spec", "--rootless"], ["runc", "spec"], ["crun", "spec"]):
            try:
                for f in os.listdir(tmp):
                    os.remove(os.path.join(tmp, f))
                subprocess.run(tool, cwd=tmp, check=True, capture_output=True)
                with open(os.path.join(tmp, "config.json"), "rb") as f:
                    put(corpus, "hook_json", f.read())
            except (OSError, subprocess.CalledProcessError):
                continue
    state = {"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 1234,
             "bundle": "/run/containers/c1",
             "annotations": {"io.cfsgate.image": "oci:/srv/img:latest"}}
    put(corpus, "hook_json", json.dumps(state).encode())
    for path in files_under(os.path.join(repo, "examples/hooks.d")):
        with open(path, "rb") as f:
            put(corpus, "hook_json", f.read())


def seed_registry(corpus):
    """registry_json: the first byte picks the parser (0 challenge, 1 token, 2 manifest, 3
    referrers index), as fuzz/fuzz_targets/registry_json.rs reads it."""
    d = "sha256:" + "ab" * 32
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": d, "size": 2},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": d, "size": 10}]}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": manifest["mediaType"], "digest": d, "size": 100,
                            "platform": {"os": "linux", "architecture": a}}
                           for a in ("amd64", "arm64")]}
    referrers = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [{"mediaType": manifest["mediaType"], "digest": d, "size": 400,
                                "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json"}]}
    seeds = [
        (0, b'Bearer realm="https://auth.example/token",service="registry.example",'
            b'scope="repository:a/b:pull"'),
        (0, b'Basic realm="cfsgate-test"'),
        (0, b"Bearer realm=https://auth.example/token, service=reg"),
        (1, b'{"token":"abc","expires_in":300}'),
        (1, b'{"access_token":"xyz"}'),
        (2, json.dumps(manifest).encode()),
        (2, json.dumps(index).encode()),
        (3, json.dumps(referrers).encode()),
        (3, b'{"manifests":[]}'),
    ]
    for selector, data in seeds:
        put(corpus, "registry_json", bytes([selector]) + data)


def main():
    repo, conf, cfsgate = sys.argv[1], sys.argv[2], sys.argv[3]
    corpus = os.path.join(repo, "fuzz", "corpus")
    seed_dumps_and_images(corpus, conf, cfsgate)
    tars = seed_tars(corpus)
    seed_oci(corpus, tars)
    seed_signatures(corpus, conf)
    seed_keys(corpus)
    seed_policies(corpus, repo)
    seed_hook(corpus, repo)
    seed_registry(corpus)
    for t in sorted(os.listdir(corpus)):
        print("%-14s %d seeds" % (t, len(os.listdir(os.path.join(corpus, t)))))


if __name__ == "__main__":
    main()
