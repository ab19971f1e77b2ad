"""The whole-array API on an S3-compatible server (moto, on localhost): URLs wherever
paths go."""

import importlib
import logging
import os
import socket

import numpy as np
import pytest
import scipy.ndimage as ndi

import haloflow
from haloflow import ops

REQUIRE = os.environ.get("HALOFLOW_REQUIRE_PYTHON") == "1"


def need(module):
    if REQUIRE:
        return importlib.import_module(module)
    return pytest.importorskip(module)


@pytest.fixture(scope="module")
def bucket():
    """An S3 server with a bucket `lab`, and the environment that points haloflow at it."""
    moto_server = need("moto.server")
    boto3 = need("boto3")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "python", "AWS_SECRET_ACCESS_KEY": "python"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="python", aws_secret_access_key="python").create_bucket(Bucket="lab")
    yield env
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


def test_run_stats_and_verify_take_s3_urls(tmp_path, bucket):
    zarr = need("zarr")
    x = np.random.default_rng(5).random((12, 20, 18)).astype(np.float32)
    src = tmp_path / "in.zarr"
    zarr.create_array(store=src, shape=x.shape, chunks=(6, 8, 8), dtype=x.dtype)[...] = x
    haloflow.run(src, "s3://lab/py-in.zarr", haloflow.Pipeline([]))
    report = haloflow.run("s3://lab/py-in.zarr", "s3://lab/py-g.zarr", ops.gaussian(1.0))
    assert report["jobs_done"] == report["jobs_total"] > 1
    assert report["object_store"]["requests"] > 2 * report["jobs_total"]
    haloflow.run("s3://lab/py-g.zarr", tmp_path / "back.zarr", haloflow.Pipeline([]))
    got = zarr.open_array(tmp_path / "back.zarr")[...]
    np.testing.assert_allclose(got, ndi.gaussian_filter(x, 1.0), rtol=0, atol=1e-6)
    assert haloflow.verify("s3://lab/py-g.zarr")["complete"]
    stats = haloflow.stats("s3://lab/py-in.zarr", percentiles=[50])
    assert stats["summaries"][0]["max"] == pytest.approx(float(x.max()))
    with pytest.raises(haloflow.HaloflowError, match="s3://lab/none.zarr"):
        haloflow.run("s3://lab/none.zarr", "s3://lab/x.zarr", ops.gaussian(1.0))
