"""Callers waiting for a pool agent: oldest first, and matched with agents atomically, so two
dispatchers at once never give one caller to two agents nor one agent two callers."""

from __future__ import annotations

import threading
from collections import Counter

import redis

from store.agent_pool import AgentPool, Availability
from store.waiting_callers import OFFER_JOB, CallerMatch, Match, WaitingCaller, WaitingCallers

FIRST, SECOND, THIRD = ("CA" + digit * 32 for digit in "123")


def test_a_caller_nobody_can_take_waits_and_keeps_the_time_they_first_began_to_wait(services):
    waiting = WaitingCallers(services.redis)
    assert waiting.claim_agent(SECOND, 0, 200.0) == CallerMatch(Match.WAITING)
    assert waiting.claim_agent(FIRST, 0, 100.0) == CallerMatch(Match.WAITING)
    assert waiting.claim_agent(SECOND, 1, 300.0) == CallerMatch(Match.WAITING)  # a retry
    assert waiting.callers() == [FIRST, SECOND] and waiting.count() == 2


def test_an_agent_who_becomes_available_is_given_the_longest_waiting_caller(services):
    waiting, pool = WaitingCallers(services.redis), AgentPool(services.redis)
    waiting.claim_agent(SECOND, 0, 200.0)
    waiting.claim_agent(FIRST, 3, 100.0)
    pool.set_availability(7, Availability.AVAILABLE, 500.0)

    assert waiting.offer(7) == WaitingCaller(FIRST, 3, 100.0)
    assert pool.availability(7) is Availability.BUSY and pool.current_call(7) == FIRST
    assert waiting.given_to(FIRST) == 7 and waiting.callers() == [SECOND]
    assert waiting.offer(7) is None, "busy now: offered nobody else"


def test_a_caller_given_to_an_agent_is_not_given_again_until_that_agent_is_released(services):
    waiting, pool = WaitingCallers(services.redis), AgentPool(services.redis)
    waiting.claim_agent(FIRST, 0, 100.0)
    pool.set_availability(7, Availability.AVAILABLE, 500.0)
    pool.set_availability(8, Availability.AVAILABLE, 600.0)
    waiting.offer(7)

    # The caller's own retry comes round while agent 7 is rung: it takes nobody else.
    assert waiting.claim_agent(FIRST, 1, 100.0) == CallerMatch(Match.GIVEN, 7)
    assert pool.availability(8) is Availability.AVAILABLE and pool.current_call(8) is None

    assert pool.release(7, FIRST, 700.0) is True  # agent 7 did not answer
    assert waiting.given_to(FIRST) is None
    assert waiting.claim_agent(FIRST, 2, 100.0) == CallerMatch(Match.CLAIMED, 8)
    assert waiting.given_to(FIRST) == 8 and waiting.callers() == []


def test_an_agent_who_is_away_busy_or_recovering_is_offered_nobody(services):
    waiting, pool = WaitingCallers(services.redis), AgentPool(services.redis)
    waiting.claim_agent(FIRST, 0, 100.0)
    pool.set_availability(7, Availability.AWAY)
    pool.assign(8, SECOND)
    pool.set_availability(9, Availability.AVAILABLE, 500.0)
    pool.begin_recovery(9, 300, 1_800_000_300.0)

    assert [waiting.offer(staff_id) for staff_id in (7, 8, 9, 10)] == [None] * 4
    assert waiting.callers() == [FIRST]


def test_a_caller_who_left_is_not_offered(services):
    waiting, pool = WaitingCallers(services.redis), AgentPool(services.redis)
    waiting.claim_agent(FIRST, 0, 100.0)
    waiting.claim_agent(SECOND, 0, 200.0)
    waiting.leave(FIRST)
    pool.set_availability(7, Availability.AVAILABLE, 500.0)
    assert waiting.offer(7) == WaitingCaller(SECOND, 0, 200.0)


def test_an_offer_is_queued_only_when_someone_waits(services):
    waiting, queue = WaitingCallers(services.redis), services.queue
    assert waiting.request_offer(queue, 7) is False and queue.count == 0
    waiting.claim_agent(FIRST, 0, 100.0)
    assert waiting.request_offer(queue, 7) is True
    (job,) = queue.jobs
    assert (job.func_name, job.args) == (OFFER_JOB, (7,))


def _race(redis_url: str, callers: list[str], agents: list[int]) -> list[tuple[str, int]]:
    """Every caller's retry and every agent's offer at once, each on its own connection."""
    matches: list[tuple[str, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(callers) + len(agents))

    def retry(call_sid: str) -> None:
        own = WaitingCallers(redis.Redis.from_url(redis_url))
        start.wait()
        found = own.claim_agent(call_sid, 1, 100.0)
        if found.match is Match.CLAIMED:
            with lock:
                matches.append((call_sid, found.staff_id))
        own.client.close()

    def offer(staff_id: int) -> None:
        own = WaitingCallers(redis.Redis.from_url(redis_url))
        start.wait()
        given = own.offer(staff_id)
        if given is not None:
            with lock:
                matches.append((given.call_sid, staff_id))
        own.client.close()

    threads = ([threading.Thread(target=retry, args=(sid,)) for sid in callers]
               + [threading.Thread(target=offer, args=(agent,)) for agent in agents])
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return matches


def test_two_dispatchers_at_once_never_share_a_caller_or_an_agent(services):
    """Callers' retries and agents' offers race on separate connections, 40 rounds."""
    client = services.redis
    for round_ in range(40):
        keys = client.keys("callflow:*")
        if keys:
            client.delete(*keys)  # the last round's agents and callers
        callers = [f"CA{round_:02d}{n:030d}" for n in range(6)]
        agents = list(range(1, 6))
        waiting, pool = WaitingCallers(client), AgentPool(client)
        for n, call_sid in enumerate(callers):
            waiting.claim_agent(call_sid, 0, 100.0 + n)
        for staff_id in agents:
            pool.set_availability(staff_id, Availability.AVAILABLE, 500.0 + staff_id)

        matches = _race(services.redis_url, callers, agents)

        assert len(matches) == len(agents), "every agent got a caller"
        assert max(Counter(sid for sid, _ in matches).values()) == 1, "a caller given twice"
        assert max(Counter(agent for _, agent in matches).values()) == 1, "an agent given two"
        for call_sid, agent in matches:
            assert pool.current_call(agent) == call_sid and waiting.given_to(call_sid) == agent
        (left,) = waiting.callers()
        assert left not in {sid for sid, _ in matches}
