"""Shared fixtures beyond the hub's own pytest plugin (`hub.testing.plugin`)."""
from __future__ import annotations

import pytest

# The connector conformance kit (fixtures, parametrization): see hub/testing/conformance.py.
pytest_plugins = ["hub.testing.conformance"]


@pytest.fixture
def rabbitmq_url_or_none(broker_kind: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("rabbitmq_url") if broker_kind == "rabbitmq" else None


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """A test that leaves a non-daemon thread blocked would keep the interpreter from exiting
    after the summary, and CI would wait for it until its budget runs out. Name such threads
    with their stacks, and end the process with pytest's own exit status instead."""
    import os
    import sys
    import threading
    import traceback

    stuck = [t for t in threading.enumerate()
             if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    for thread in stuck:
        thread.join(timeout=10)
    stuck = [t for t in stuck if t.is_alive()]
    if not stuck:
        return
    frames = sys._current_frames()
    for thread in stuck:
        print(f"\nthread {thread.name!r} still running after the tests:", file=sys.stderr)
        traceback.print_stack(frames.get(thread.ident), file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(int(getattr(config, "_hub_exitstatus", 1)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._hub_exitstatus = int(exitstatus)  # type: ignore[attr-defined]
