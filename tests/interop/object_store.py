#!/usr/bin/env python3
"""End-to-end checks of haloflow on object stores: an S3-compatible server (moto) and a
plain HTTP server, both on localhost and started here, with credentials enforced.

    python tests/interop/object_store.py --haloflow target/debug/haloflow CHECK...

CHECKs: roundtrip, parts, resume, shards, label, http, ome, errors (default: all). Exit status 1 on
failure. The Rust test `tests/cli.rs` runs this with the freshly built binary.
"""

import argparse
import functools
import http.server
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# moto reads this when imported: the first three requests (making a user and its key)
# go unchecked, every later one must be signed with a key moto knows.
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"

import boto3  # noqa: E402
import numpy as np  # noqa: E402
import scipy.ndimage as ndi  # noqa: E402
import zarr  # noqa: E402
import zarr.codecs  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

FAILURES = []
BUCKET = "lab"


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print(f"FAIL {what}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Servers:
    """moto's S3 server with one user, its key and a bucket; a static HTTP server of a
    local directory."""

    def __init__(self, served_dir):
        port = free_port()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.moto.start()
        self.endpoint = f"http://127.0.0.1:{port}"
        anon = dict(endpoint_url=self.endpoint, region_name="us-east-1",
                    aws_access_key_id="setup", aws_secret_access_key="setup")
        iam = boto3.client("iam", **anon)
        iam.create_user(UserName="haloflow")
        key = iam.create_access_key(UserName="haloflow")["AccessKey"]
        iam.put_user_policy(UserName="haloflow", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        self.key, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                               aws_access_key_id=self.key, aws_secret_access_key=self.secret)
        self.s3.create_bucket(Bucket=BUCKET)

        handler = functools.partial(Quiet, directory=served_dir)
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.http_url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def env(self, **changes):
        env = dict(os.environ, AWS_ENDPOINT_URL=self.endpoint, AWS_REGION="us-east-1",
                   AWS_ACCESS_KEY_ID=self.key, AWS_SECRET_ACCESS_KEY=self.secret)
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
            env.pop(k, None)
        env.update(changes)
        return env

    def open(self, url):
        """The array at `url` as zarr-python (through s3fs) reads it."""
        return zarr.open_array(url, mode="r", storage_options=dict(
            endpoint_url=self.endpoint, key=self.key, secret=self.secret))[...]

    def keys(self, prefix):
        """The keys below `prefix` (relative), without their bytes."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
        return [o["Key"][len(prefix) + 1:] for page in pages for o in page.get("Contents", [])]

    def objects(self, prefix):
        """Every object below `prefix`: key (relative) -> bytes."""
        out = {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
        for page in pages:
            for o in page.get("Contents", []):
                body = self.s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
                out[o["Key"][len(prefix) + 1:]] = body
        return out

    def stop(self):
        self.http.shutdown()
        self.moto.stop()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def haloflow(bin_, servers, *args, check_ok=True, env=None):
    run = subprocess.run([bin_, *map(str, args)], capture_output=True, text=True,
                         env=env or servers.env())
    if check_ok and run.returncode != 0:
        raise RuntimeError(f"haloflow {' '.join(map(str, args))} failed:\n{run.stderr}")
    return run


def write(tmp, name, x, chunks):
    path = os.path.join(tmp, name + ".zarr")
    a = zarr.create_array(path, shape=x.shape, chunks=chunks, dtype=x.dtype, overwrite=True)
    a[...] = x
    return path


def s3(name):
    return f"s3://{BUCKET}/{name}"


def close(what, got, want, tol=1e-5):
    ok = got.shape == want.shape and np.allclose(got, want, rtol=0, atol=tol * float(np.ptp(want)))
    check(ok, f"{what}: differs from scipy (max {np.abs(got - want).max() if got.shape == want.shape else got.shape})")


def volume(shape=(24, 30, 36), seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def check_roundtrip(bin_, servers, tmp):
    x = volume()
    src = write(tmp, "x", x, (8, 8, 8))
    want = ndi.gaussian_filter(x, 1.5, mode="reflect")
    haloflow(bin_, servers, "copy", src, s3("x.zarr"), "--quiet")
    check(np.array_equal(servers.open(s3("x.zarr")), x), "local -> S3 copy: values differ")
    info = haloflow(bin_, servers, "info", s3("x.zarr")).stdout
    check("[24, 30, 36]" in info and "float32" in info, f"info on s3://: {info!r}")
    run = haloflow(bin_, servers, "gaussian", s3("x.zarr"), s3("g.zarr"), "--sigma", "1.5",
                   "--report", os.path.join(tmp, "report.json"), "--quiet")
    close("S3 -> S3 gaussian (read by zarr-python)", servers.open(s3("g.zarr")), want)
    report = json.load(open(os.path.join(tmp, "report.json")))
    traffic = report.get("object_store") or {}
    check(traffic.get("requests", 0) >= 2 * 27 and traffic.get("bytes_out", 0) > 0,
          f"the report's object_store traffic: {traffic}")
    local = os.path.join(tmp, "g-local.zarr")
    haloflow(bin_, servers, "gaussian", s3("x.zarr"), local, "--sigma", "1.5", "--quiet")
    close("S3 -> local gaussian", zarr.open_array(local)[...], want)
    # A chain from local to S3, uint16 out.
    haloflow(bin_, servers, "run", src, s3("chain.zarr"), "--quiet", "gaussian", "--sigma", "1",
             "+", "clip", "--min", "0.3", "--max", "0.7")
    close("local -> S3 chain", servers.open(s3("chain.zarr")),
          np.clip(ndi.gaussian_filter(x, 1.0, mode="reflect"), 0.3, 0.7))
    del run
    # A copy whose codecs are the input's stores the stored chunks' bytes as they are
    # (nothing decoded) and writes the absent ones (the fill value) from their values.
    sparse = zarr.create_array(s3("sparse.zarr"), shape=(16, 24), chunks=(8, 8), dtype="float32",
                               compressors=zarr.codecs.ZstdCodec(level=3), fill_value=0.0,
                               storage_options=dict(endpoint_url=servers.endpoint, key=servers.key,
                                                    secret=servers.secret))
    sparse[:8, :8] = 1.5
    sparse[8:, 16:] = 2.5
    haloflow(bin_, servers, "copy", s3("sparse.zarr"), s3("sparse-copy.zarr"),
             "--report", os.path.join(tmp, "copy.json"), "--quiet")
    copied = json.load(open(os.path.join(tmp, "copy.json")))
    check(np.array_equal(servers.open(s3("sparse-copy.zarr")), sparse[...]), "copy as encoded: values differ")
    check(copied["jobs_done"] == 6 and copied["chunks_decoded"] == 4,
          f"copy as encoded: {copied['jobs_done']} jobs, {copied['chunks_decoded']} chunks decoded (want 6, 4)")
    same = servers.objects("sparse.zarr")["c/0/0"] == servers.objects("sparse-copy.zarr")["c/0/0"]
    check(same, "copy as encoded: a stored chunk's bytes changed")


def check_parts(bin_, servers, tmp):
    x = volume((20, 26, 30), seed=1)
    haloflow(bin_, servers, "copy", write(tmp, "p", x, (8, 8, 8)), s3("p.zarr"), "--quiet")
    args = ["median", s3("p.zarr"), s3("p-median.zarr"), "--size", "3"]
    haloflow(bin_, servers, "init", *args)
    check(haloflow(bin_, servers, "verify", s3("p-median.zarr"), check_ok=False).returncode != 0,
          "verify on s3:// passes before any part ran")
    procs = [subprocess.Popen([bin_, *args, "--part", f"{i}/3", "--quiet"], env=servers.env(),
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    for i, p in enumerate(procs):
        _, err = p.communicate()
        check(p.returncode == 0, f"part {i}/3 on s3:// failed: {err}")
    verify = haloflow(bin_, servers, "verify", s3("p-median.zarr"), check_ok=False)
    check(verify.returncode == 0, f"verify after 3 parts: {verify.stdout} {verify.stderr}")
    check(np.array_equal(servers.open(s3("p-median.zarr")), ndi.median_filter(x, 3, mode="reflect")),
          "3 parts on s3://: median differs from scipy")


def check_resume(bin_, servers, tmp):
    x = volume((32, 64, 64), seed=2)
    haloflow(bin_, servers, "copy", write(tmp, "r", x, (8, 16, 16)), s3("r.zarr"), "--quiet")
    args = ["gaussian", s3("r.zarr"), "--sigma", "1", "--chunks", "4,8,8"]
    haloflow(bin_, servers, args[0], args[1], s3("r-full.zarr"), *args[2:], "--quiet")
    total = 8 * 8 * 8
    # One job and one request at a time, so that the kill lands mid-way.
    slow = ["--threads", "1", "--io-concurrency", "1", "--quiet"]
    for attempt in range(3):
        haloflow(bin_, servers, "init", args[0], args[1], s3("r-killed.zarr"), *args[2:], "--overwrite")
        p = subprocess.Popen([bin_, args[0], args[1], s3("r-killed.zarr"), *args[2:], *slow],
                             env=servers.env())
        stored = 0
        while p.poll() is None and stored < total // 4:
            time.sleep(0.05)
            stored = len([k for k in servers.keys("r-killed.zarr") if k.startswith("c/")])
        alive = p.poll() is None
        if alive:
            p.send_signal(signal.SIGKILL)
        p.wait()
        if alive:
            break
    check(alive, "the run finished before it could be killed")
    left = len([k for k in servers.keys("r-killed.zarr") if k.startswith("c/")])
    check(0 < left < total, f"after the kill {left} of {total} chunks are stored")
    rerun = haloflow(bin_, servers, args[0], args[1], s3("r-killed.zarr"), *args[2:],
                     "--report", os.path.join(tmp, "resume.json"), "--quiet")
    skipped = json.load(open(os.path.join(tmp, "resume.json")))["jobs_skipped"]
    check(skipped >= left - 1, f"the rerun skipped {skipped} jobs with {left} chunks stored")
    full, killed = servers.objects("r-full.zarr"), servers.objects("r-killed.zarr")
    check(sorted(full) == sorted(killed), "killed and rerun: other keys than an uninterrupted run")
    differ = [k for k in full if full[k] != killed.get(k)]
    check(not differ, f"killed and rerun: {len(differ)} objects differ from an uninterrupted run")
    del rerun


def check_shards(bin_, servers, tmp):
    x = volume((20, 24, 28), seed=5)
    # A sharded input written by zarr-python into the bucket: haloflow reads its inner
    # chunks with ranged requests through the shard index.
    zarr.create_array(s3("sharded-in.zarr"), shape=x.shape, chunks=(4, 8, 8), shards=(8, 16, 16),
                      dtype=x.dtype, storage_options=dict(endpoint_url=servers.endpoint,
                                                          key=servers.key, secret=servers.secret))[...] = x
    args = ["gaussian", s3("sharded-in.zarr"), s3("sharded-out.zarr"), "--sigma", "1",
            "--chunks", "4,8,8", "--shards", "8,8,16"]
    haloflow(bin_, servers, "init", *args)
    for i in range(3):
        haloflow(bin_, servers, *args, "--part", f"{i}/3", "--quiet")
    verify = haloflow(bin_, servers, "verify", s3("sharded-out.zarr"), check_ok=False)
    check(verify.returncode == 0, f"verify of a sharded output on s3://: {verify.stdout} {verify.stderr}")
    stored = [k for k in servers.keys("sharded-out.zarr") if k.startswith("c/")]
    check(len(stored) == 3 * 3 * 2, f"a sharded output on s3:// holds {len(stored)} shard objects, not 18")
    close("sharded S3 -> sharded S3 gaussian (read by zarr-python)", servers.open(s3("sharded-out.zarr")),
          ndi.gaussian_filter(x, 1.0, mode="reflect"))


def check_label(bin_, servers, tmp):
    mask = (volume((18, 22, 26), seed=6) > 0.7).astype(np.uint8)
    haloflow(bin_, servers, "copy", write(tmp, "mask", mask, (6, 8, 8)), s3("mask.zarr"), "--quiet")
    want, n = ndi.label(mask, ndi.generate_binary_structure(3, 3))
    args = ["label", s3("mask.zarr"), s3("labels.zarr"), "--connectivity", "3", "--quiet"]
    for i in range(3):
        haloflow(bin_, servers, *args, "--part", f"{i}/3")
    haloflow(bin_, servers, *args, "--merge")
    got = servers.open(s3("labels.zarr"))
    check(np.array_equal(got, want), f"label in 3 parts and a merge on s3://: differs from scipy ({n} objects)")
    left = [k for k in servers.keys("labels.zarr") if k.startswith(".haloflow-label/")]
    check(left == [".haloflow-label/done"], f"a finished labelling on s3:// left {left}")
    table = os.path.join(tmp, "objects.csv")
    haloflow(bin_, servers, "objects", s3("labels.zarr"), "--table", table)
    rows = open(table).read().strip().splitlines()
    check(len(rows) == n + 1, f"objects of labels on s3://: {len(rows) - 1} rows for {n} objects")


def check_http(bin_, servers, tmp):
    x = volume((18, 22, 25), seed=3)
    write(tmp, "served", x, (8, 8, 8))
    url = f"{servers.http_url}/served.zarr"
    out = os.path.join(tmp, "from-http.zarr")
    haloflow(bin_, servers, "gaussian", url, out, "--sigma", "2", "--quiet")
    close("HTTP -> local gaussian", zarr.open_array(out)[...], ndi.gaussian_filter(x, 2.0, mode="reflect"))
    info = haloflow(bin_, servers, "info", url).stdout
    check("[18, 22, 25]" in info, f"info on http://: {info!r}")
    refused = haloflow(bin_, servers, "copy", out, f"{servers.http_url}/new.zarr", check_ok=False)
    check(refused.returncode != 0 and "read-only" in refused.stderr,
          f"writing to http:// not refused clearly: {refused.stderr!r}")


def check_ome(bin_, servers, tmp):
    x = (volume((16, 20, 24), seed=4) * 1000).astype(np.uint16)
    src = write(tmp, "o", x, (8, 8, 8))
    haloflow(bin_, servers, "pyramid", src, s3("o.ome.zarr"), "--levels", "2", "--quiet")
    attrs = json.loads(servers.objects("o.ome.zarr")["zarr.json"])["attributes"]["ome"]
    check(len(attrs["multiscales"][0]["datasets"]) == 2, f"OME pyramid on s3://: {attrs}")
    check(np.array_equal(servers.open(s3("o.ome.zarr/0")), x), "OME pyramid on s3://: level 0 differs")
    verify = haloflow(bin_, servers, "verify", s3("o.ome.zarr"), check_ok=False)
    check(verify.returncode == 0, f"verify of an OME image on s3://: {verify.stdout} {verify.stderr}")


def one_line_naming(what, run, url, words):
    lines = run.stderr.strip().splitlines()
    check(run.returncode != 0, f"{what}: exit status 0")
    check(len(lines) == 1, f"{what}: not one line: {run.stderr!r}")
    check(url in run.stderr, f"{what}: the message does not name {url}: {run.stderr!r}")
    check(all(w in run.stderr for w in words), f"{what}: {words} not in {run.stderr!r}")


def check_errors(bin_, servers, tmp):
    src = write(tmp, "e", volume((8, 8, 8)), (4, 4, 4))
    haloflow(bin_, servers, "copy", src, s3("e.zarr"), "--quiet")
    url = "s3://no-such-bucket/x.zarr"
    one_line_naming("a missing bucket", haloflow(bin_, servers, "info", url, check_ok=False),
                    url, ["bucket does not exist"])
    one_line_naming("a missing bucket (output)",
                    haloflow(bin_, servers, "copy", src, url, check_ok=False), url, ["bucket does not exist"])
    url = s3("missing.zarr")
    one_line_naming("a missing array", haloflow(bin_, servers, "gaussian", url, s3("m-out.zarr"),
                                                "--sigma", "1", check_ok=False), url, ["nothing there"])
    check(not servers.objects("m-out.zarr"), "a failed run on a missing input created its output")
    bad = servers.env(AWS_SECRET_ACCESS_KEY="wrong")
    url = s3("e.zarr")
    one_line_naming("bad credentials", haloflow(bin_, servers, "info", url, check_ok=False, env=bad),
                    url, ["access denied"])
    before = servers.objects("e.zarr")
    run = haloflow(bin_, servers, "copy", src, url, "--overwrite", check_ok=False, env=bad)
    one_line_naming("bad credentials (output)", run, url, ["access denied"])
    check(servers.objects("e.zarr") == before, "a refused write changed the array")
    url = f"{servers.http_url}/missing.zarr"
    one_line_naming("a missing array over HTTP", haloflow(bin_, servers, "info", url, check_ok=False),
                    url, ["nothing there"])


CHECKS = {
    "roundtrip": check_roundtrip,
    "parts": check_parts,
    "resume": check_resume,
    "shards": check_shards,
    "label": check_label,
    "http": check_http,
    "ome": check_ome,
    "errors": check_errors,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--haloflow", required=True)
    ap.add_argument("checks", nargs="*", default=list(CHECKS))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        servers = Servers(tmp)
        try:
            for name in args.checks:
                print(f"check {name}", flush=True)
                CHECKS[name](os.path.abspath(args.haloflow), servers, tmp)
        finally:
            servers.stop()
    if FAILURES:
        print(f"{len(FAILURES)} failures", flush=True)
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
