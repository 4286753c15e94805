"""Queue figures: from RabbitMQ's management API when it answers, else from the broker adapter."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from hub.web.admin.charts import bar_chart
from hub.masking import redact, safe_details
from hub.ops.queues import ManagementApi

from .conftest import licence, wait_for


def test_management_url_is_derived_from_the_broker_url():
    api = ManagementApi.for_settings("amqp://ops:s%40cret@rabbit.internal:5672/hub", None)
    assert (api.base_url, api.vhost) == ("http://rabbit.internal:15672", "hub")
    api = ManagementApi.for_settings("amqp://guest:guest@127.0.0.1:5672/%2F",
                                     "https://admin:pw@mgmt.internal:443/rabbit")
    assert (api.base_url, api.vhost) == ("https://mgmt.internal:443/rabbit", "/")
    assert ManagementApi.for_settings("amqp://127.0.0.1/", "off") is None
    assert ManagementApi.for_settings("sqlite:///var/broker.db", None) is None


class _FakeManagement(BaseHTTPRequestHandler):
    queues: list[dict] = []
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        body = json.dumps(self.queues).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def management():  # type: ignore[no-untyped-def]
    server = HTTPServer(("127.0.0.1", 0), _FakeManagement)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_figures_come_from_the_management_api_when_it_answers(hub_factory, management):
    hub = hub_factory()
    queue = hub.topology.agency_queue("narsa")
    inspector = hub.queue_inspector(ttl=0)
    inspector.management = ManagementApi.for_settings(
        "amqp://guest:guest@127.0.0.1:5672/%2F", f"http://127.0.0.1:{management.server_port}")
    _FakeManagement.queues = [{
        "name": queue, "messages": 7, "messages_ready": 5, "messages_unacknowledged": 2,
        "consumers": 3, "head_message_timestamp": time.time() - 42,
        "message_stats": {"publish_details": {"rate": 1.5}, "ack_details": {"rate": 1.25}}}]
    figures = {f.name: f for f in inspector.figures()}
    work = figures[queue]
    assert (work.source, work.messages, work.ready, work.unacked, work.consumers,
            work.rate_in, work.rate_out) == ("management", 7, 5, 2, 3, 1.5, 1.25)
    assert 41 <= work.oldest_age_s <= 60
    assert figures[queue + ".dlq"].source == "unavailable"  # not declared on that broker
    path, auth = _FakeManagement.seen[-1]
    assert path.startswith("/api/queues/%2F?columns=") and auth.startswith("Basic ")


def test_adapter_figures_when_management_is_absent(hub_factory, rabbitmq_url):
    hub = hub_factory(broker_url=rabbitmq_url,
                      connectors={"narsa": lambda: __import__("connectors.base").base
                                  .MockConnector(lambda e: None, agency="narsa")},
                      env={"HUB_RABBITMQ_MANAGEMENT_URL": "http://127.0.0.1:1"})
    hub.setup()
    from hub.ops import controls

    controls.pause(hub.store, "connector.narsa", actor="admin:test")
    inspector = hub.queue_inspector(ttl=0)
    with hub.run(concurrency=1, cases=0, recorder=False):
        hub.submit("driving_licence_authentication", licence())
        queue = hub.topology.agency_queue("narsa")
        work = wait_for(lambda: next((f for f in inspector.figures()
                                      if f.name == queue and f.messages == 1), None),
                        what="depth 1 through the adapter")
    assert work.source == "adapter" and work.consumers == 0
    assert work.rate_in == round(1 / 60, 3) and work.rate_out == 0
    assert work.oldest_age_s is not None and work.oldest_age_s < 60  # oldest unanswered exchange
    inspector.close()


def test_redact_keeps_operational_words_and_masks_values():
    assert redact("narsa answered HTTP 503") == "narsa answered HTTP 503"
    masked = redact("holder 'Alaoui' AB123456 born 1990-02-03, mail sara@example.org,"
                    " phone +34 612 345 678, case DLA-2026-D124SBB,"
                    " message 0b7c6f3e-1b2c-4d5e-8f90-123456789abc")
    for value in ("Alaoui", "AB123456", "1990-02-03", "sara@example.org", "612 345"):
        assert value not in masked
    assert "DLA-2026-D124SBB" in masked and "0b7c6f3e-1b2c-4d5e-8f90-123456789abc" in masked
    assert safe_details({"step": "licence_check", "holder": {"cnie": "AB123456"},
                         "error": "'AB123456' bad", "attempt": 2}) == {
        "step": "licence_check", "error": "'‹redacted›' bad", "attempt": 2}


def test_bar_chart_scales_bars_and_labels_each_bucket():
    from datetime import datetime, timezone

    t0 = datetime(2026, 11, 29, 6, 0, tzinfo=timezone.utc)
    t1 = datetime(2026, 11, 29, 6, 1, tzinfo=timezone.utc)
    svg = bar_chart([(t0, 8, 2), (t1, 0, 0)], title="Attempts <per> minute")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "Attempts &lt;per&gt; minute" in svg
    assert "06:00 UTC: 8 answered, 2 failed" in svg and "06:01 UTC: 0 answered, 0 failed" in svg
    assert svg.count('class="ok"') == 1 and svg.count('class="bad"') == 1


def _management_answers(url: str) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=2)
    except OSError as exc:
        return getattr(exc, "code", None) == 401  # it answers, asking for credentials
    return True


def test_figures_from_the_real_management_api(hub_factory, rabbitmq_url):
    if not _management_answers("http://127.0.0.1:15672/api/overview"):
        pytest.skip("RabbitMQ's management plugin is not enabled (.ci/run enables it)")
    hub = hub_factory(broker_url=rabbitmq_url,
                      connectors={"narsa": lambda: __import__("connectors.base").base
                                  .MockConnector(lambda e: None, agency="narsa")})
    hub.setup()
    from hub.ops import controls

    controls.pause(hub.store, "connector.narsa", actor="admin:test")
    inspector = hub.queue_inspector(ttl=0)
    assert inspector.management is not None
    with hub.run(concurrency=1, cases=0, recorder=False):
        for serial in (100001, 100011):
            hub.submit("driving_licence_authentication", licence(serial))
        queue = hub.topology.agency_queue("narsa")
        # The management API samples every few seconds: wait for it to see both messages.
        work = wait_for(lambda: next((f for f in inspector.figures()
                                      if f.name == queue and f.messages == 2), None),
                        timeout=30, what="the management API to count two messages")
    assert work.source == "management" and work.ready == 2 and work.unacked == 0
    # Paused: no worker consumes (RabbitMQ omits the count of a queue that never had one).
    assert work.consumers in (0, None)
    inspector.close()


def test_log_lines_are_json_with_correlation_id_and_no_quoted_values():
    import io
    import logging

    from hub.logs import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("hub.test.masking")
    logger.addHandler(handler)
    logger.propagate = False
    # Another test may have set the level of the ``hub`` logger (a CLI run configures logging).
    logger.setLevel(logging.INFO)
    try:
        logger.warning("connector.narsa: message failed (message.schema): holder.cnie: %s does"
                       " not match; mail %s; born %s; queue t3f9a2b1c.agency.narsa on 127.0.0.1:5672",
                       "'AB123456'", "sara@example.org", "1990-02-03",
                       extra={"correlation_id": "DLA-2026-D124SBB", "data": {"cnie": "AB123456"}})
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["correlation_id"] == "DLA-2026-D124SBB" and "data" not in line
    for value in ("AB123456", "sara@example.org", "1990-02-03"):
        assert value not in stream.getvalue()
    assert "t3f9a2b1c.agency.narsa on 127.0.0.1:5672" in line["msg"]
