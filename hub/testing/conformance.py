"""The connector conformance kit: a pytest plugin every agency connector runs against its simulator.

A connector's test module subclasses `ConnectorConformance` and gives sample payloads with the
outcome the simulator's rules promise; the kit's tests then check, for that connector:

- every sample's answer maps to the promised outcome and answer data, and the agency saw the
  hub's X-Road client identity and the envelope id as its idempotency key;
- the contract in ``agency.yaml`` (``operations``) names the connector's operations, the samples
  draw every outcome it lists, and every field the reply mapping writes into the answer's data is
  one the contract declares and some sample checks (a data mapping cannot break unnoticed);
- idempotency: the same envelope sent twice causes one effect and the same answer; the same key
  with another request is refused (`AgencyRefusal`);
- schema validation both ways: a payload the mapping cannot map, or whose mapped request breaks
  the agency's schema, raises `SchemaViolation` and never leaves the hub; an answer breaking the
  agency's schema raises `SchemaViolation`;
- error mapping under every injected fault (HTTP 5xx and 429, SOAP server fault, timeout, reset,
  malformed answer, latency), an unreachable agency and an unknown operation: each becomes the
  `hub.errors` class that decides retry or dead letter, never a lower-level exception; after a
  transient fault the same envelope succeeds with a single effect;
- message signatures (XML-DSig for SOAP, detached JWS for REST, `connectors.signing`): with keys
  on both sides the exchange works; an unsigned request is refused by the agency; an answer
  altered after signing (``bad_signature``) or unsigned is `SignatureInvalid`;
- asynchronous agencies: the acknowledgement is a pending `Reply`, the answer arrives by callback
  at the hub's inbound path with the exchange id, and maps to the promised outcome; the
  ``duplicate_callback`` fault calls back twice with the same answer.

    # tests/connectors/test_dgsn.py
    from hub.testing.conformance import ConnectorConformance, Sample

    class TestDgsnConformance(ConnectorConformance):
        agency = "dgsn"
        samples = [Sample("verify_identity", {"person": PERSON}, "confirmed"), ...]
        invalid_requests = [Sample("verify_identity", {"person": {**PERSON, "cnie": "12"}})]

    # an agency made by `hub connector new` keeps its samples as data:
    class TestCivilRegistryConformance(ConnectorConformance):
        agency = "civil_registry"
        samples, invalid_requests = agency_samples("civil_registry")   # hub.testing.samples

A sample's ``data`` lists the answer's data fields it promises: a value must be equal, ``None``
means present with any value (a time, a serial number).

Enable the plugin with ``pytest_plugins = ["hub.testing.conformance"]`` in a ``conftest.py`` (the
hub's own ``tests/conftest.py`` does).
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import pytest

from connectors.base import Connector, ConnectorDeps
from connectors.registry import AgencyConfig, build_connector, import_object, load_agencies
from connectors.signing import MessageSigning
from hub.config import DEFAULT_NODE_ID
from hub.envelope import Envelope, SchemaRef
from hub.errors import (AgencyRefusal, AgencyTimeout, AgencyUnavailable, BadAgencyReply, HubError,
                        SchemaViolation, UnknownRoute)
from hub.mapping import Mapping
from hub.testing.livehub import AgencyHub, LiveServer
from hub.testing.samples import Sample

__all__ = ["ConnectorConformance", "FaultCase", "Sample", "answer_data_problems",
           "envelope_for", "mapped_data_fields"]

NODE_ID = DEFAULT_NODE_ID
#: The connector's timeout in the kit, and the delay of the timeout fault (well beyond it).
KIT_TIMEOUT = 0.5
TIMEOUT_DELAY = 2.0


@dataclass(frozen=True)
class FaultCase:
    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    #: The error the connector must raise; None means the call still succeeds.
    error: type[HubError] | None = None
    protocols: tuple[str, ...] = ("rest", "soap")


FAULTS = (
    FaultCase("http-503", "status", {"status": 503}, AgencyUnavailable),
    FaultCase("http-502", "status", {"status": 502}, AgencyUnavailable),
    FaultCase("http-429", "status", {"status": 429}, AgencyUnavailable),
    FaultCase("soap-server-fault", "soap_fault", {}, AgencyUnavailable, protocols=("soap",)),
    FaultCase("timeout", "timeout", {"delay": TIMEOUT_DELAY}, AgencyTimeout),
    FaultCase("connection-reset", "reset", {}, AgencyUnavailable),
    FaultCase("malformed-answer", "malformed", {}, BadAgencyReply),
    FaultCase("answer-breaks-schema", "invalid", {}, SchemaViolation),
    FaultCase("latency", "latency", {"delay": 0.05}, None),
)


def mapped_data_fields(agency: str, operation: str) -> dict[str, bool]:
    """The answer data fields the reply mapping of ``operation`` writes (``data.<field>``, top
    level), each with whether the mapping may leave it out (``optional``)."""
    fields: dict[str, bool] = {}
    for rule in Mapping.packaged(agency, f"{operation}.reply").rules:
        if rule.to.startswith("data."):
            name = rule.to.removeprefix("data.").split(".")[0]
            fields[name] = fields.get(name, True) and rule.optional
    return fields


def answer_data_problems(data: dict[str, Any], promised: dict[str, Any]) -> list[str]:
    """How an answer's ``data`` differs from what a sample promises (empty: it does not).
    Fields beyond the promise are problems too: an optional field mapped when it should not be
    is as wrong as one missing."""
    problems = []
    for name, value in promised.items():
        if name not in data:
            problems.append(f"data.{name} is missing")
        elif value is not None and data[name] != value:
            problems.append(f"data.{name} is {data[name]!r}, the rule promises {value!r}")
    problems += [f"data.{name} ({data[name]!r}) is not promised by the sample"
                 for name in sorted(set(data) - set(promised))]
    return problems


def envelope_for(agency: str, operation: str, payload: dict[str, Any], *,
                 id: uuid.UUID | None = None) -> Envelope:
    """A request envelope as a route would queue it for ``agency``'s ``operation``."""
    return Envelope.new(id=id, correlation_id="KIT-2026-0000001", service="conformance",
                        kind="request", sender="ES-MAD", recipient=agency,
                        schema=SchemaRef(name=f"{agency}.{operation}.request", version="1"),
                        payload=payload)


class CallbackReceiver(LiveServer):
    """A loopback HTTP server standing in for the hub's inbound endpoints: records every POST."""

    def __init__(self) -> None:
        from flask import Flask, request

        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        app = Flask("conformance.callbacks")

        @app.post("/<path:path>")
        def receive(path: str) -> tuple[str, int]:
            with self._lock:
                self.calls.append({"path": "/" + path, "headers": dict(request.headers),
                                   "body": request.get_data()})
            return "", 202

        super().__init__(app)

    def wait(self, count: int, *, within: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.calls) >= count:
                    return list(self.calls)
            time.sleep(0.02)
        with self._lock:
            return list(self.calls)


class ConnectorConformance:
    """Base class of a connector's conformance tests. Set the class attributes below."""

    agency: ClassVar[str] = ""
    #: At least one sample per operation, ideally one per outcome.
    samples: ClassVar[list[Sample]] = []
    #: Payloads that map but break the agency's request schema (never sent).
    invalid_requests: ClassVar[list[Sample]] = []
    #: Asynchronous agencies answer by calling back ``callback_path`` (``{id}``: exchange id).
    callback_path: ClassVar[str | None] = None
    #: Extra options for the simulator (e.g. ``{"callback_delay": 0}``).
    simulator_options: ClassVar[dict[str, Any]] = {}

    # -- fixtures -------------------------------------------------------------------------------

    @pytest.fixture
    def agency_config(self) -> AgencyConfig:
        return load_agencies()[self.agency]

    @pytest.fixture
    def callbacks(self) -> Iterator[CallbackReceiver | None]:
        if self.callback_path is None:
            yield None
            return
        receiver = CallbackReceiver()
        try:
            yield receiver
        finally:
            receiver.stop()

    @pytest.fixture
    def simulator(self, agency_config: AgencyConfig, callbacks: CallbackReceiver | None
                  ) -> Iterator[Any]:
        options = dict(self.simulator_options)
        if callbacks is not None:
            options.setdefault("callback_url", callbacks.url)
        assert agency_config.simulator, f"{self.agency} declares no simulator in agency.yaml"
        simulator = import_object(agency_config.simulator)(port=0, **options).start()
        try:
            yield simulator
        finally:
            simulator.stop()

    @pytest.fixture
    def connector(self, agency_config: AgencyConfig, simulator: Any) -> Iterator[Any]:
        config = agency_config.with_overrides(base_url=simulator.url, timeout=KIT_TIMEOUT)
        with build_connector(config, ConnectorDeps(node_id=NODE_ID)) as connector:
            yield connector

    def send(self, connector: Any, sample: Sample, **options: Any) -> Any:
        return connector.send(envelope_for(self.agency, sample.operation, sample.payload,
                                           **options))

    def first_sample(self) -> Sample:
        return next(s for s in self.samples if s.outcome is not None)

    # -- answers --------------------------------------------------------------------------------

    def test_every_operation_has_a_sample(self, connector: Any) -> None:
        declared = set(type(connector).operations)
        sampled = {s.operation for s in self.samples}
        assert declared <= sampled, f"operations without a sample: {sorted(declared - sampled)}"

    def test_answer_maps_to_the_promised_outcome(self, connector: Any, simulator: Any,
                                                 callbacks: CallbackReceiver | None,
                                                 sample: Sample) -> None:
        envelope = envelope_for(self.agency, sample.operation, sample.payload)
        reply = connector.send(envelope)
        seen = simulator.received(str(envelope.id))
        assert len(seen) == 1, "the agency must see the envelope id as its idempotency key"
        assert seen[0].xroad_client == NODE_ID, "the agency must see the hub's X-Road identity"
        assert reply.wire_digest and len(reply.wire_digest) == 64
        if callbacks is None:
            assert not reply.pending
            assert reply.outcome == sample.outcome
            self.check_data(reply.data, sample)
            return
        assert reply.pending, "an asynchronous agency's acknowledgement is a pending reply"
        calls = callbacks.wait(1)
        assert len(calls) == 1, "the agency must call back once"
        assert calls[0]["path"] == self.callback_path.format(id=envelope.id)
        assert calls[0]["headers"].get("X-Road-Client"), "a callback names its sender"
        answer = connector.parse_answer(sample.operation, calls[0]["body"])
        assert answer.outcome == sample.outcome
        self.check_data(answer.data, sample)

    @staticmethod
    def check_data(data: dict[str, Any], sample: Sample) -> None:
        if sample.data is None:
            return
        problems = answer_data_problems(data, sample.data)
        assert not problems, f"{sample.id}: " + "; ".join(problems)

    def test_contract_samples_and_mappings_agree(self, agency_config: AgencyConfig,
                                                 connector: Any) -> None:
        """The operations of ``agency.yaml`` are the connector's; each outcome is drawn by a
        sample; each field the reply mapping writes is declared and checked by a sample."""
        contract = agency_config.operations
        declared = set(type(connector).operations)
        assert set(contract) == declared, (
            f"agency.yaml operations {sorted(contract)} but the connector has {sorted(declared)}")
        problems = []
        for name, operation in contract.items():
            samples = [s for s in self.samples if s.operation == name and s.outcome is not None]
            missing = set(operation.outcomes) - {s.outcome for s in samples}
            if missing:
                problems.append(f"{name}: no sample draws {sorted(missing)}")
            unknown = {s.outcome for s in samples} - set(operation.outcomes)
            if unknown:
                problems.append(f"{name}: samples expect outcomes the contract lacks"
                                f" {sorted(unknown)}")
            mapped = mapped_data_fields(self.agency, name)
            if set(mapped) != set(operation.data):
                problems.append(f"{name}: the reply mapping writes data {sorted(mapped)}, the "
                                f"contract declares {sorted(operation.data)}")
            checked = {field for s in samples if s.data is not None for field in s.data}
            unchecked = set(mapped) - checked
            if unchecked:
                problems.append(f"{name}: no sample checks data {sorted(unchecked)}")
        assert not problems, "; ".join(problems)

    # -- idempotency ----------------------------------------------------------------------------

    def test_repeat_has_one_effect_and_the_same_answer(self, connector: Any,
                                                       simulator: Any) -> None:
        sample = self.first_sample()
        envelope = envelope_for(self.agency, sample.operation, sample.payload)
        first = connector.send(envelope)
        second = connector.send(envelope.with_attempt(1))
        assert (second.outcome, second.agency_reference) == (first.outcome,
                                                             first.agency_reference)
        assert len(simulator.received(str(envelope.id))) == 2
        assert simulator.effect_count(str(envelope.id)) == 1

    def test_reused_key_for_another_request_is_refused(self, connector: Any) -> None:
        sample = self.first_sample()
        envelope = envelope_for(self.agency, sample.operation, sample.payload)
        connector.send(envelope)
        changed = _changed(sample.payload)  # still valid: only a name differs
        assert changed != sample.payload, "the sample needs a string field to vary"
        with pytest.raises(AgencyRefusal):
            connector.send(envelope_for(self.agency, sample.operation, changed, id=envelope.id))

    # -- schema validation both ways ------------------------------------------------------------

    def test_unmappable_payload_never_leaves(self, connector: Any, simulator: Any) -> None:
        sample = self.first_sample()
        with pytest.raises(SchemaViolation) as caught:
            connector.send(envelope_for(self.agency, sample.operation, {}))
        assert caught.value.errors, "a schema violation names the fields"
        assert simulator.received() == []

    def test_request_breaking_the_agency_schema_never_leaves(self, connector: Any,
                                                             simulator: Any) -> None:
        assert self.invalid_requests, "give at least one payload that breaks the agency schema"
        for sample in self.invalid_requests:
            with pytest.raises(SchemaViolation) as caught:
                self.send(connector, sample)
            assert caught.value.errors
        assert simulator.received() == []

    def test_unknown_operation_is_an_unknown_route(self, connector: Any, simulator: Any) -> None:
        with pytest.raises(UnknownRoute):
            connector.send(envelope_for(self.agency, "no_such_operation", {}))
        assert simulator.received() == []

    # -- faults ---------------------------------------------------------------------------------

    def test_fault_maps_to_its_error_then_recovers(self, connector: Any, simulator: Any,
                                                   agency_config: AgencyConfig,
                                                   fault: FaultCase) -> None:
        if agency_config.protocol not in fault.protocols:
            pytest.skip(f"{fault.name} does not apply to {agency_config.protocol} agencies")
        sample = self.first_sample()
        envelope = envelope_for(self.agency, sample.operation, sample.payload)
        simulator.inject(fault.kind, count=1, **fault.options)
        if fault.error is None:
            reply = connector.send(envelope)
        else:
            with pytest.raises(HubError) as caught:
                connector.send(envelope)
            assert isinstance(caught.value, fault.error), (
                f"{fault.name}: expected {fault.error.__name__}, got"
                f" {type(caught.value).__name__}: {caught.value.message}")
            assert caught.value.transient == fault.error.transient
            # The retry (same envelope) succeeds once the agency is healthy again.
            reply = connector.send(envelope.with_attempt(1))
        assert reply.outcome in (sample.outcome, "accepted")
        assert simulator.effect_count(str(envelope.id)) == 1

    def test_unreachable_agency_is_unavailable(self, agency_config: AgencyConfig) -> None:
        import socket

        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = agency_config.with_overrides(base_url=f"http://127.0.0.1:{port}",
                                              timeout=KIT_TIMEOUT)
        sample = self.first_sample()
        with build_connector(config, ConnectorDeps(node_id=NODE_ID)) as connector:
            with pytest.raises(AgencyUnavailable):
                self.send(connector, sample)

    # -- message signatures -----------------------------------------------------------------

    def test_signatures_both_ways_and_bad_signature(self, agency_config: AgencyConfig,
                                                     pki_dir: Any,
                                                     callbacks: CallbackReceiver | None
                                                     ) -> None:
        from hub.errors import SignatureInvalid

        sample = self.first_sample()
        options = dict(self.simulator_options)
        if callbacks is not None:
            options.setdefault("callback_url", callbacks.url)
        signed_sim = import_object(agency_config.simulator)(port=0, keys_dir=str(pki_dir),
                                                            **options).start()
        plain_sim = import_object(agency_config.simulator)(port=0, **options).start()
        hub_signing = MessageSigning.load(pki_dir, "hub")
        try:
            def connector_for(sim: Any, signing: MessageSigning | None) -> Connector:
                config = agency_config.with_overrides(base_url=sim.url, timeout=KIT_TIMEOUT)
                return build_connector(config, ConnectorDeps(node_id=NODE_ID, signing=signing))

            with connector_for(signed_sim, hub_signing) as connector:
                reply = self.send(connector, sample)
                assert reply.outcome in (sample.outcome, "accepted")
                signed_sim.inject("bad_signature", count=1)
                with pytest.raises(SignatureInvalid):
                    self.send(connector, sample)
            with connector_for(signed_sim, None) as unsigned:
                with pytest.raises(AgencyRefusal):  # the agency refuses an unsigned request
                    self.send(unsigned, sample)
            with connector_for(plain_sim, hub_signing) as connector:
                with pytest.raises(SignatureInvalid):  # an unsigned answer is not trusted
                    self.send(connector, sample)
        finally:
            signed_sim.stop()
            plain_sim.stop()

    # -- asynchronous agencies ------------------------------------------------------------------

    def test_duplicate_callback_fault_calls_back_twice(self, connector: Any, simulator: Any,
                                                       callbacks: CallbackReceiver | None
                                                       ) -> None:
        if callbacks is None:
            pytest.skip(f"{self.agency} answers synchronously")
        sample = self.first_sample()
        simulator.inject("duplicate_callback", count=1)
        envelope = envelope_for(self.agency, sample.operation, sample.payload)
        assert connector.send(envelope).pending
        calls = callbacks.wait(2)
        assert len(calls) == 2
        assert calls[0]["body"] == calls[1]["body"]
        assert simulator.effect_count(str(envelope.id)) == 1


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A development PKI (CA, and a signing key per party) shared by the session's tests."""
    from security.pki import init_pki

    directory = tmp_path_factory.mktemp("pki") / "keys"
    init_pki(directory, parties=("hub", *sorted(load_agencies())))  # new agencies included
    return directory


@pytest.fixture
def agency_hub(hub_factory: Any) -> Iterator[Any]:
    """Build a running hub wired to live agency simulators: ``agency_hub(broker_url=...,
    database_url=..., extra_definitions=[dir])`` (see `hub.testing.livehub.AgencyHub`)."""
    built: list[AgencyHub] = []

    def make(**options: Any) -> AgencyHub:
        world = AgencyHub(hub_factory, **options).start()
        built.append(world)
        return world

    yield make
    for world in built:
        world.stop()


def _changed(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with its first name-like string changed (same shape, another request)."""
    text = json.dumps(payload)
    for key in ("first_name", "last_name", "name", "title", "city"):
        marker = f'"{key}": "'
        if marker in text:
            return json.loads(text.replace(marker, marker + "X", 1))
    return payload


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    cls = metafunc.cls
    if cls is None or not issubclass(cls, ConnectorConformance):
        return
    if "sample" in metafunc.fixturenames:
        samples = [s for s in cls.samples if s.outcome is not None]
        metafunc.parametrize("sample", samples, ids=[s.id for s in samples])
    if "fault" in metafunc.fixturenames:
        metafunc.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
