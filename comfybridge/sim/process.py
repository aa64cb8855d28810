"""Run the simulator as a subprocess (``python -m comfybridge.sim``) for tests and demos."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path


class SimProcessError(RuntimeError):
    pass


def stop_process(proc: subprocess.Popen, timeout: float) -> bool:
    """Ask a process to stop (SIGTERM), kill it after `timeout` seconds. True when it had
    to be killed. Every process the project starts and stops goes through this."""
    if proc.poll() is not None:
        return False
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class SimProcess:
    """A simulator subprocess on a free port.

    ``start()`` after ``kill()``/``stop()`` starts a new process on the same port and
    data directory: queue and history are gone, files survive, as with a real restart.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        step_ms: float = 0,
        args: Sequence[str] = (),
        data_dir: str | os.PathLike | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 15.0,
    ):
        self.host = host
        self.port = port or free_port(host)
        self.step_ms = step_ms
        self.args = list(args)
        self._own_dir = data_dir is None
        self.data_dir = (
            Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="comfybridge-sim-"))
        )
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self._log_path = self.data_dir / "sim.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def output(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> SimProcess:
        if self.proc is not None and self.proc.poll() is None:
            raise SimProcessError("simulator already running")
        cmd = [
            sys.executable,
            "-m",
            "comfybridge.sim",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--step-ms",
            str(self.step_ms),
            *self.args,
        ]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self._log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise SimProcessError(
                    f"simulator exited with code {self.proc.returncode} during startup:\n"
                    f"{self.output()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/system_stats", timeout=1) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    return  # started with --auth: it answers, just not to us
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.kill()
        raise SimProcessError(
            f"simulator did not answer on {self.url} within {self.startup_timeout}s:\n"
            f"{self.output()}"
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, timeout)
        self.proc = None

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
