"""Redis servers of a test's own: a single persisted one that can be stopped and restarted, and a
throwaway local Redis Cluster (three redis-server processes joined by `redis-cli --cluster create`)."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.services import free_port

NODES = 3


class LocalCluster:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = [cluster_port() for _ in range(NODES)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> LocalCluster:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalCluster:
        for binary in ("redis-server", "redis-cli"):
            if shutil.which(binary) is None:
                raise RuntimeError(f"{binary} is not installed")
        for port in self.ports:
            node = self.directory / str(port)
            node.mkdir(parents=True, exist_ok=True)
            args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                    "--cluster-config-file", str(node / "nodes.conf"), "--dir", str(node), "--save", "",
                    "--appendonly", "no", "--cluster-node-timeout", "2000"]  # fmt: skip
            with (node / "log").open("ab") as log:
                self.processes.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        for port in self.ports:
            self._wait(lambda port=port: self._cli(port, "PING").strip() == "PONG", f"node {port} to start")
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
        for port in self.ports:
            self._wait(
                lambda port=port: "cluster_state:ok" in self._cli(port, "CLUSTER", "INFO"), "the cluster"
            )
        return self

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

    def _cli(self, port: int, *command: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(port), *command], capture_output=True, text=True, timeout=10
        )
        return done.stdout

    @staticmethod
    def _wait(check: object, what: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if check():  # type: ignore[operator]
                return
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what}")


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000, so at most 65535) is free too."""
    for _ in range(100):
        port = random.randint(20_000, 45_000)
        if all(_bindable(p) for p in (port, port + 10_000)):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class RedisProcess:
    """One redis-server with an append-only file, so that a restart keeps what it had acknowledged."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--appendonly", "yes", "--appendfsync", "always", "--save", ""]  # fmt: skip
        with (self.directory / "log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        LocalCluster._wait(lambda: self._ping(), f"redis-server on {self.port}")
        return self

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): Redis flushes its append-only file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.process = None

    def kill(self) -> None:
        """An abrupt end (SIGKILL): only what the append-only file already holds survives (with
        `appendfsync always`, everything Redis acknowledged)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self.process = None

    def _ping(self) -> bool:
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), "PING"], capture_output=True, text=True, timeout=10
        )
        return done.stdout.strip() == "PONG"
