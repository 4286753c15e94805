from __future__ import annotations

import random

import pytest

from hub.delivery.circuit import CircuitBreaker
from hub.errors import AgencyRefusal, AgencyTimeout, CircuitOpen, ConfigurationError
from hub.delivery.retry import RetryPolicy


def test_ladder_doubles_and_caps():
    policy = RetryPolicy(base_delay=1, max_delay=5, max_attempts=6)
    assert policy.ladder == (1, 2, 4, 5, 5)


def test_exhaustion_counts_the_first_delivery():
    policy = RetryPolicy(max_attempts=3)
    assert [policy.exhausted(a) for a in range(4)] == [False, False, True, True]


def test_jittered_delay_stays_within_half_rung_and_rung():
    policy = RetryPolicy(base_delay=2, max_delay=8, max_attempts=5, jitter=0.5,
                         _random=random.Random(7))
    for attempt, rung in enumerate(policy.ladder):
        for _ in range(200):
            assert rung / 2 <= policy.delay(attempt) <= rung
    # Beyond the ladder the last rung repeats.
    assert 4 <= policy.delay(10) <= 8


def test_jitter_spreads_delays():
    policy = RetryPolicy(base_delay=1, max_delay=1, max_attempts=2, _random=random.Random(1))
    assert len({round(policy.delay(0), 3) for _ in range(50)}) > 10


@pytest.mark.parametrize("options", [{"base_delay": 0}, {"base_delay": 5, "max_delay": 1},
                                     {"max_attempts": 0}, {"jitter": 1.0}])
def test_invalid_policies_are_configuration_errors(options):
    with pytest.raises(ConfigurationError):
        RetryPolicy(**options)


def test_from_mapping_refuses_unknown_keys():
    with pytest.raises(ConfigurationError, match="unknown retry settings"):
        RetryPolicy.from_mapping({"base_delay": 1, "retries": 3})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_and_half_opens_after_timeout():
    clock = Clock()
    breaker = CircuitBreaker("narsa", failure_threshold=3, reset_timeout=10, clock=clock)
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure(AgencyTimeout())
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now = 10.0
    assert breaker.state == "half_open"
    breaker.before_call()  # the one trial call
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # no second call while the trial runs
    breaker.record_success()
    assert breaker.state == "closed"


def test_failed_trial_reopens_for_a_full_timeout():
    clock = Clock()
    breaker = CircuitBreaker("dgsn", failure_threshold=1, reset_timeout=5, clock=clock)
    breaker.record_failure(AgencyTimeout())
    clock.now = 5
    breaker.before_call()
    breaker.record_failure(AgencyTimeout())
    assert breaker.state == "open"
    clock.now = 9
    assert breaker.state == "open"
    clock.now = 10
    assert breaker.state == "half_open"


def test_business_refusals_do_not_open_the_circuit():
    breaker = CircuitBreaker("narsa", failure_threshold=2, reset_timeout=5, clock=Clock())
    for _ in range(5):
        breaker.before_call()
        breaker.record_failure(AgencyRefusal("no"))
    assert breaker.state == "closed"
