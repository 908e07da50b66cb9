"""The agent pool's recovery after an abusive call: never offered a call until it is over."""

from __future__ import annotations

from store.agent_pool import RECOVERY_KEY, AgentPool, Availability, Claim

CALL = "CA" + "1" * 32
NEXT = "CA" + "2" * 32
UNTIL = 1_800_000_300.0


def test_a_recovering_agent_is_offered_no_call_until_recovery_is_over(services):
    pool = AgentPool(services.redis)
    pool.set_availability(7, Availability.AVAILABLE, 100.0)
    pool.begin_recovery(7, 300, UNTIL)
    assert pool.availability(7) is Availability.RECOVERING
    assert pool.claim_longest_idle(NEXT) is None
    assert pool.claim_named(7, NEXT) is Claim.AWAY
    assert pool.set_availability(7, Availability.AVAILABLE, 200.0) is False
    recovery = pool.recovery(7)
    assert 299 < recovery.seconds_left <= 300 and recovery.until == UNTIL
    [(member, listed)] = pool.recovering().items()
    assert member == 7 and listed.until == UNTIL

    services.redis.delete(RECOVERY_KEY.format(staff_id=7))  # Redis expires it
    assert pool.recovery(7, 400.0) is None
    assert pool.availability(7) is Availability.AVAILABLE
    assert pool.recovering() == {}
    assert pool.claim_longest_idle(NEXT) == 7


def test_an_agent_on_the_call_recovers_when_it_ends_and_may_return_early_if_allowed(services):
    pool = AgentPool(services.redis)
    pool.assign(7, CALL)
    pool.begin_recovery(7, 300, UNTIL)
    assert pool.availability(7) is Availability.BUSY
    assert pool.release(7, CALL, 100.0) is True
    assert pool.availability(7) is Availability.RECOVERING
    assert pool.set_availability(7, Availability.AVAILABLE, 200.0, early_return=True) is True
    assert pool.recovery(7) is None
    assert pool.claim_longest_idle(NEXT) == 7


def test_an_owed_wrap_up_comes_first_and_recovery_follows_it(services):
    pool = AgentPool(services.redis)
    pool.assign(7, CALL)
    pool.begin_wrap_up(7, CALL)
    pool.release(7, CALL, 100.0)
    pool.begin_recovery(7, 300, UNTIL)
    assert pool.availability(7) is Availability.WRAP_UP
    assert pool.finish_wrap_up(7, CALL, 150.0) is True
    assert pool.availability(7) is Availability.RECOVERING
    assert pool.claim_longest_idle(NEXT) is None
    pool.end_recovery(7)
    assert pool.availability(7) is Availability.AVAILABLE
