"""Processes under test: start them, measure their CPU and peak memory, stop them by pid.

    group = ProcessGroup()
    web = group.start("web", ["-m", "bench.roles", "hub-web", spec_json], ready="READY")
    group.mark()                       # start of the measurement window
    ...
    usage = group.usage()              # CPU seconds per role since `mark`, peak RSS
    group.stop()

Each child is a ``python`` of this interpreter. CPU is read with psutil (user + system of the
process and its children); peak memory is the kernel's high-water mark of the resident set
(``VmHWM`` in ``/proc/<pid>/status``), summed over the process and its children.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil


class ProcessFailed(RuntimeError):
    """A process under test exited early or never said it was ready."""


def peak_rss_bytes(pid: int) -> int:
    """The kernel's high-water mark of the resident set of ``pid`` (0 when unreadable)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return 0


def rss_bytes(pid: int) -> int:
    try:
        proc = psutil.Process(pid)
        return proc.memory_info().rss + sum(
            c.memory_info().rss for c in proc.children(recursive=True))
    except psutil.Error:
        return 0


def _tree(pid: int) -> list[psutil.Process]:
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for proc in _tree(pid):
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


@dataclass
class Child:
    role: str
    popen: subprocess.Popen
    log_path: Path
    cpu_mark: float = 0.0
    cpu_end: float | None = None
    peak: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Usage:
    """CPU and memory of a group of processes over a measurement window."""

    wall: float
    cpu: dict[str, float] = field(default_factory=dict)       # role -> CPU seconds
    peak_rss: dict[str, int] = field(default_factory=dict)    # role -> bytes

    @property
    def cpu_cores(self) -> float:
        return sum(self.cpu.values()) / self.wall if self.wall > 0 else 0.0

    @property
    def peak_rss_mb(self) -> float:
        return sum(self.peak_rss.values()) / 2**20

    def as_dict(self) -> dict:
        return {"cpu_cores": round(self.cpu_cores, 3), "peak_rss_mb": round(self.peak_rss_mb, 1),
                "by_role": {role: {"cpu_cores": round(self.cpu[role] / self.wall, 3)
                                   if self.wall else 0.0,
                                   "peak_rss_mb": round(self.peak_rss.get(role, 0) / 2**20, 1)}
                            for role in self.cpu}}


class ProcessGroup:
    """Child processes of one scenario; `stop` ends exactly these pids (TERM, then KILL)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = {**os.environ, **(env or {})}
        self.children: list[Child] = []
        self._pending: list[Child] = []
        self._mark_at = time.monotonic()
        self._logs = Path(tempfile.mkdtemp(prefix="hub-bench-logs-"))

    def start(self, role: str, args: list[str], *, ready: str | None = "READY",
              timeout: float = 60.0, env: dict[str, str] | None = None,
              measured: bool = True, wait: bool = True) -> Child:
        """Start ``python <args>``; when ``ready`` is given, wait for that line on stdout
        (``wait=False``: later, in `await_ready`, so that processes start in parallel)."""
        log_path = self._logs / f"{role}-{len(self.children)}.log"
        log = open(log_path, "w")  # noqa: SIM115 - closed with the process
        popen = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=log,
                                 env={**self.env, **(env or {})}, text=True, bufsize=1)
        child = Child(role if measured else f"~{role}", popen, log_path)
        self.children.append(child)
        child.ready = ready  # type: ignore[attr-defined]
        child.log = log  # type: ignore[attr-defined]
        if ready is None:
            threading.Thread(target=self._drain, args=(popen.stdout, log), daemon=True).start()
        elif wait:
            self._await(child, ready, timeout)
            threading.Thread(target=self._drain, args=(popen.stdout, log), daemon=True).start()
        else:
            self._pending.append(child)
        return child

    def await_ready(self, timeout: float = 60.0) -> None:
        """Wait for every child started with ``wait=False`` to say it is ready."""
        pending, self._pending = self._pending, []
        for child in pending:
            self._await(child, child.ready, timeout)  # type: ignore[attr-defined]
            threading.Thread(target=self._drain, args=(child.popen.stdout, child.log),  # type: ignore[attr-defined]
                             daemon=True).start()

    @staticmethod
    def _drain(stream: IO[str] | None, log: IO[str]) -> None:
        if stream is None:
            return
        for line in stream:
            log.write(line)
        log.flush()

    def _await(self, child: Child, ready: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert child.popen.stdout is not None
        result: list[str] = []

        def read() -> None:
            for line in child.popen.stdout:  # type: ignore[union-attr]
                if line.strip().startswith(ready):
                    result.append(line.strip())
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(max(0.0, deadline - time.monotonic()))
        if not result:
            code = child.popen.poll()
            self.stop()
            raise ProcessFailed(f"{child.role} {'exited with ' + str(code) if code is not None else 'not ready'}"
                                f" within {timeout:.0f}s:\n{child.log_tail()}")
        child.ready_line = result[0]  # type: ignore[attr-defined]

    def check_alive(self) -> None:
        for child in self.children:
            code = child.popen.poll()
            if code is not None:
                raise ProcessFailed(f"{child.role} (pid {child.pid}) exited with {code}:\n"
                                    f"{child.log_tail()}")

    def mark(self) -> None:
        """Start the measurement window: CPU is counted from here."""
        self._mark_at = time.monotonic()
        for child in self.children:
            child.cpu_mark = cpu_seconds(child.pid)
            child.cpu_end = None

    def end(self) -> None:
        """End the measurement window (CPU frozen here; peak memory read at `usage`)."""
        self._end_at = time.monotonic()
        for child in self.children:
            child.cpu_end = cpu_seconds(child.pid)
            child.peak = peak_rss_bytes(child.pid) + sum(
                peak_rss_bytes(p.pid) for p in _tree(child.pid)[1:])

    def usage(self) -> Usage:
        if not hasattr(self, "_end_at"):
            self.end()
        usage = Usage(wall=self._end_at - self._mark_at)
        for child in self.children:
            if child.role.startswith("~"):
                continue
            cpu = (child.cpu_end if child.cpu_end is not None else cpu_seconds(child.pid)) \
                - child.cpu_mark
            usage.cpu[child.role] = usage.cpu.get(child.role, 0.0) + max(0.0, cpu)
            usage.peak_rss[child.role] = usage.peak_rss.get(child.role, 0) + child.peak
        return usage

    def pids(self, role: str) -> list[int]:
        return [c.pid for c in self.children if c.role == role]

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every child (graceful drain), then SIGKILL the ones still there."""
        for child in self.children:
            if child.popen.poll() is None:
                try:
                    child.popen.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for child in self.children:
            try:
                child.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                for proc in reversed(_tree(child.pid)):
                    try:
                        proc.kill()
                    except psutil.Error:
                        pass
                child.popen.wait(5)

    def __enter__(self) -> "ProcessGroup":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (every core, every process)."""
    times = psutil.cpu_times()
    return times.user + times.system + getattr(times, "nice", 0.0) + \
        getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)


def _category(proc: psutil.Process) -> str:
    try:
        cmd = " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        return "other"
    if "beam.smp" in cmd or "rabbitmq" in cmd or "erl_child" in cmd or "epmd" in cmd:
        return "rabbitmq"
    if cmd.startswith("postgres") or "/postgres" in cmd:
        return "postgresql"
    if "bench.load" in cmd:
        return "load generator"
    if "bench.roles simulator" in cmd:
        return "simulator"
    if "bench.roles" in cmd:
        return "processes under test"
    if "-m bench" in cmd:
        return "harness"
    return "other"


class MachineSampler:
    """CPU of every process on the machine over a window, grouped (RabbitMQ, PostgreSQL...)."""

    def __init__(self) -> None:
        self._start: dict[int, tuple[psutil.Process, float]] = {}
        self._t0 = time.monotonic()

    @staticmethod
    def _snapshot() -> dict[int, tuple[psutil.Process, float]]:
        found = {}
        for proc in psutil.process_iter():
            try:
                times = proc.cpu_times()
                found[proc.pid] = (proc, times.user + times.system)
            except psutil.Error:
                pass
        return found

    def mark(self) -> None:
        self._t0 = time.monotonic()
        self._start = self._snapshot()

    def end(self) -> dict[str, float]:
        wall = max(1e-6, time.monotonic() - self._t0)
        by: dict[str, float] = {}
        for pid, (proc, cpu) in self._snapshot().items():
            before = self._start.get(pid, (proc, 0.0))[1]
            # A process started inside the window counts from zero.
            by[_category(proc)] = by.get(_category(proc), 0.0) + max(0.0, cpu - before) / wall
        return {k: round(v, 3) for k, v in sorted(by.items(), key=lambda kv: -kv[1])}
