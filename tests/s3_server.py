"""A real S3 API for tests and benchmarks: SeaweedFS ``weed mini`` (installed by
requirements-dev.txt), on free local ports, with one bucket."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Dev key pair of the throw-away SeaweedFS (not an AWS credential).
S3_ACCESS_KEY = "fruits-test"
S3_SECRET_KEY = "fruits-test-secret"


def _port_pair() -> int:
    """A free port p whose p+10000 is free too (SeaweedFS derives gRPC ports that way)."""
    for _ in range(200):
        port = random.randint(20000, 55000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


@dataclass
class S3Server:
    endpoint: str
    data_dir: Path
    bucket: str

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name="us-east-1",
        )

    def hook(self):
        """The project's S3 hook on this server, over a client of the tests' own (whose calls
        are not the DAG's: AWS call recordings leave them out)."""
        from fruits_features.s3 import RunS3Hook

        class ClientHook(RunS3Hook):
            conn = self.client()

        return ClientHook(aws_conn_id=None)

    def access(self):
        """How Spark, boto3 and pyarrow reach this server, as the local backend finds it."""
        from fruits_features.s3 import S3Access

        return S3Access(
            region="us-east-1",
            endpoint=self.endpoint,
            access_key=S3_ACCESS_KEY,
            secret_key=S3_SECRET_KEY,
        )

    def keys(self, prefix: str) -> list[str]:
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


@contextmanager
def seaweedfs(data_dir: Path, bucket: str) -> Iterator[S3Server]:
    """SeaweedFS serving S3 from ``data_dir`` with ``bucket``, stopped on exit."""
    weed = Path(sys.executable).parent / "weed"
    assert weed.is_file(), "SeaweedFS is not installed: pip install -r requirements-dev.txt"
    ports = {name: _port_pair() for name in ("master", "volume", "filer", "s3", "admin")}
    args = [f"-{name}.port={port}" for name, port in ports.items()]
    args += [f"-{name}.port.grpc={port + 10000}" for name, port in ports.items()]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "S3_BUCKET": bucket,
    }
    log = (data_dir / "weed.log").open("wb")
    process = subprocess.Popen(
        [
            str(weed),
            "mini",
            f"-dir={data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *args,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(ports["s3"], process)
        server = S3Server(f"http://127.0.0.1:{ports['s3']}", data_dir, bucket)
        client = server.client()
        deadline = time.monotonic() + 30
        while True:  # the bucket appears a moment after the port opens
            try:
                client.head_bucket(Bucket=bucket)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield server
    finally:
        # Its data is thrown away: no need to sit through its >2 s graceful shutdown.
        process.terminate()
        try:
            process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
