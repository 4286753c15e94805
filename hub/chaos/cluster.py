"""The processes and services a chaos run drives: worker and relay processes (real OS processes,
so SIGKILL means what it says), the TCP proxy to RabbitMQ, and restarts of RabbitMQ and
PostgreSQL through their own control commands."""
from __future__ import annotations

import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

BROKER_RESTART = "rabbitmqctl stop_app && sleep 1 && rabbitmqctl start_app"
DATABASE_RESTART = ("pg_ctlcluster --skip-systemctl-redirect"
                    " $(ls /etc/postgresql | sort -V | tail -n1) main restart")
#: How a hub process is started: the CLI of the interpreter running the chaos run.
HUB = [sys.executable, "-c", "from hub.cli import main; main()"]


@dataclass
class Role:
    name: str
    argv: list[str]


@dataclass
class ProcessGroup:
    """Hub processes of one run; each role is restarted by `kill` (a supervisor's job)."""

    env: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    kills: int = 0
    _logs: list[IO[bytes]] = field(default_factory=list)

    def start(self, role: Role) -> None:
        self.roles[role.name] = role
        handle = open(self.log_dir / f"{role.name}.log", "ab")
        self._logs.append(handle)
        self.processes[role.name] = subprocess.Popen(
            HUB + role.argv, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self, name: str) -> int:
        """SIGKILL the process of ``name`` and start a new one; returns the killed pid."""
        process = self.processes[name]
        pid = process.pid
        os.kill(pid, signal.SIGKILL)
        process.wait(30)
        self.kills += 1
        self.start(self.roles[name])
        return pid

    def alive(self) -> dict[str, bool]:
        return {name: p.poll() is None for name, p in self.processes.items()}

    def restart_dead(self) -> list[str]:
        """Start again any process that exited on its own (and say which)."""
        dead = [name for name, p in self.processes.items() if p.poll() is not None]
        for name in dead:
            self.start(self.roles[name])
        return dead

    def stop(self, timeout: float = 30.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for handle in self._logs:
            handle.close()


def run_command(command: str, *, timeout: float = 120.0) -> None:
    """Run an operator command (broker or database restart); raise with its output if it fails."""
    log.info("running %s", command)
    # Output to a file, not a pipe: a daemon the command starts (a database server) inherits
    # the descriptors and would keep a pipe open long after the command returned.
    with tempfile.TemporaryFile() as output:
        result = subprocess.run(["bash", "-c", command], stdout=output, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=timeout, check=False)
        if result.returncode != 0:
            output.seek(0)
            raise RuntimeError(f"{command!r} failed ({result.returncode}):"
                               f" {output.read().decode('utf-8', 'replace').strip()[:500]}")


def wait_port(host: str, port: int, *, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{host}:{port} did not come back within {timeout}s")


def command_available(command: str) -> bool:
    first = shlex.split(command)[0]
    from shutil import which

    return which(first) is not None
