#!/usr/bin/env python3
"""Zarr on an S3-compatible server: haloflow vs zarr-python + s3fs vs tensorstore's S3
driver, against one local moto server (started here), on the benchmark volume.

Uploads a 256x512x512 float32 Zarr v3 array (chunks 64x128x128, zstd 3) to
s3://bench/in.zarr, then times, median of --repeats runs:

- copy S3 -> S3: `haloflow copy` (the chunks as they are encoded: the output's codecs
  are the input's), and re-encoded at zstd level 1; zarr-python (`dst[...] = src[...]`, its default
  async concurrency); tensorstore (`dst.write(src).result()`);
- Gaussian sigma 2 S3 -> S3: `haloflow gaussian`; zarr-python reading the whole array,
  scipy.ndimage.gaussian_filter, zarr-python writing it.

Requests are counted at the server. The table gives seconds, MB/s (input + output
bytes, encoded, over the wall time) and requests per second.

    python3 scripts/bench_object_store.py [--repeats 3] [--shape 256,512,512]
                                          [--markdown BENCHMARKS.md]
"""

import argparse
import logging
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

from machine import machine_line, versions, write_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUCKET = "bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Counting:
    """WSGI middleware counting the requests and bytes the server answers."""

    def __init__(self, app):
        self.app, self.requests, self.lock = app, 0, threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            self.requests += 1
        return self.app(environ, start_response)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shape", default="256,512,512")
    ap.add_argument("--haloflow", default=os.path.join(ROOT, "target/release/haloflow"))
    ap.add_argument("--markdown")
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    chunks = (64, 128, 128)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer
    import boto3
    import scipy.ndimage as ndi
    import tensorstore as ts
    import zarr
    import zarr.codecs

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    counter = Counting(server._server.app)
    server._server.app = counter
    endpoint = f"http://127.0.0.1:{port}"
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")
    s3.create_bucket(Bucket=BUCKET)
    options = dict(endpoint_url=endpoint, key="bench", secret="bench")

    def url(name):
        return f"s3://{BUCKET}/{name}"

    def wipe(name):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=name + "/")
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})

    def stored_bytes(name):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=name + "/")
        return sum(o["Size"] for page in pages for o in page.get("Contents", []))

    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    x = ndi.gaussian_filter(x, 1.0)  # compressible, like an image
    zstd3 = zarr.codecs.ZstdCodec(level=3)
    src = zarr.create_array(url("in.zarr"), shape=shape, chunks=chunks, dtype="float32",
                            compressors=zstd3, storage_options=options, overwrite=True)
    src[...] = x
    in_bytes = stored_bytes("in.zarr")

    def hf(*cmd):
        def go():
            subprocess.run([args.haloflow, *cmd, "--quiet", "--overwrite"], env=env, check=True)
        return go

    def zarr_copy():
        a = zarr.open_array(url("in.zarr"), mode="r", storage_options=options)
        b = zarr.create_array(url("zp.zarr"), shape=shape, chunks=chunks, dtype="float32",
                              compressors=zstd3, storage_options=options, overwrite=True)
        b[...] = a[...]

    def zarr_gaussian():
        a = zarr.open_array(url("in.zarr"), mode="r", storage_options=options)
        b = zarr.create_array(url("zp.zarr"), shape=shape, chunks=chunks, dtype="float32",
                              compressors=zstd3, storage_options=options, overwrite=True)
        b[...] = ndi.gaussian_filter(a[...], 2.0)

    def ts_spec(name, create=False):
        spec = {"driver": "zarr3",
                "kvstore": {"driver": "s3", "bucket": BUCKET, "path": name + "/",
                            "endpoint": endpoint, "aws_region": "us-east-1",
                            "aws_credentials": {"type": "environment"}}}
        if create:
            spec["metadata"] = {"shape": list(shape), "data_type": "float32",
                                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
                                "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                                           {"name": "zstd", "configuration": {"level": 3, "checksum": False}}]}
        return spec

    def ts_copy():
        a = ts.open(ts_spec("in.zarr")).result()
        b = ts.open(ts_spec("ts.zarr", True), create=True, delete_existing=True).result()
        b.write(a).result()

    runs = [
        ("copy", "haloflow", hf("copy", url("in.zarr"), url("hf.zarr")), "hf.zarr"),
        ("copy", "haloflow, re-encoded (--compression zstd:1)",
         hf("copy", url("in.zarr"), url("hf.zarr"), "--compression", "zstd:1"), "hf.zarr"),
        ("copy", "zarr-python + s3fs", zarr_copy, "zp.zarr"),
        ("copy", "tensorstore (s3 driver)", ts_copy, "ts.zarr"),
        ("gaussian σ=2", "haloflow", hf("gaussian", url("in.zarr"), url("hf.zarr"), "--sigma", "2"), "hf.zarr"),
        ("gaussian σ=2", "zarr-python + s3fs + scipy (whole array)", zarr_gaussian, "zp.zarr"),
    ]
    rows = []
    for op, tool, fn, out in runs:
        times, reqs = [], []
        for _ in range(args.repeats):
            wipe(out)
            before = counter.requests
            t = time.perf_counter()
            try:
                fn()
            except Exception as e:  # a peer that cannot run here is reported, not hidden
                print(f"{tool} {op}: failed: {e}", file=sys.stderr)
                times = []
                break
            times.append(time.perf_counter() - t)
            reqs.append(counter.requests - before)
        if not times:
            rows.append((op, tool, None, None, None, None))
            continue
        secs = statistics.median(times)
        moved = in_bytes + stored_bytes(out)
        rows.append((op, tool, secs, moved / 1e6 / secs, statistics.median(reqs), statistics.median(reqs) / secs))
        print(f"{op:14} {tool:42} {secs:6.2f} s  {moved / 1e6 / secs:6.0f} MB/s  "
              f"{statistics.median(reqs):5.0f} requests ({statistics.median(reqs) / secs:5.0f}/s)", flush=True)
    server.stop()

    base = {op: secs for op, tool, secs, *_ in rows if tool == "haloflow"}
    lines = [
        machine_line(),
        f"moto {__import__('moto').__version__} server on localhost (in-memory objects), "
        f"{versions(('numpy', 'scipy', 'zarr', 's3fs', 'tensorstore'))}; "
        f"{'x'.join(map(str, shape))} float32, chunks {'x'.join(map(str, chunks))}, zstd 3 "
        f"({in_bytes / 1e6:.0f} MB stored); median of {args.repeats}. MB/s counts the input's and the "
        "output's stored bytes; requests are counted at the server.",
        "",
        "| op | tool | seconds | vs haloflow | MB/s | requests | requests/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for op, tool, secs, mbs, req, rps in rows:
        if secs is None:
            lines.append(f"| {op} | {tool} | failed | | | | |")
            continue
        lines.append(f"| {op} | {tool} | {secs:.2f} | {secs / base[op]:.2f}× | {mbs:.0f} | {req:.0f} | {rps:.0f} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        write_section(args.markdown, "bench_object_store", text)


if __name__ == "__main__":
    main()
