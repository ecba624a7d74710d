"""The silence watchdog: sessions whose peer sends nothing are reported once, after
the timeout (the hold timeout while on hold); any RTP or RTCP resets the count."""

from __future__ import annotations

import asyncio

from media.watchdog import SilenceWatchdog


class FakeSession:
    def __init__(self) -> None:
        self.packets = 0
        self.hold = False
        self.closed = False

    def activity(self) -> int:
        return self.packets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_silent_session_is_reported_once_after_the_timeout():
    clock = Clock()
    dog = SilenceWatchdog(60, 3600, clock=clock)
    session, reports = FakeSession(), []
    dog.watch(session, lambda seconds, held: reports.append((seconds, held)))
    clock.now += 59
    dog.check()
    assert reports == []
    clock.now += 1
    dog.check()
    assert reports == [(60, False)]
    clock.now += 60
    dog.check()
    assert len(reports) == 1 and len(dog) == 0 and dog.timeouts == 1
    dog.close()


async def test_packets_keep_a_session_alive():
    clock = Clock()
    dog = SilenceWatchdog(10, 3600, clock=clock)
    session, reports = FakeSession(), []
    dog.watch(session, lambda *args: reports.append(args))
    for _ in range(10):
        clock.now += 5
        session.packets += 1
        dog.check()
    assert reports == []
    clock.now += 9.9
    dog.check()
    assert reports == []
    clock.now += 0.1
    dog.check()
    assert len(reports) == 1
    dog.close()


async def test_a_held_session_gets_the_hold_timeout():
    clock = Clock()
    dog = SilenceWatchdog(10, 100, clock=clock)
    session, reports = FakeSession(), []
    session.hold = True
    dog.watch(session, lambda seconds, held: reports.append(held))
    clock.now += 50
    dog.check()
    assert reports == []
    clock.now += 50
    dog.check()
    assert reports == [True]
    dog.close()


async def test_zero_turns_a_timeout_off_and_closed_sessions_are_forgotten():
    clock = Clock()
    dog = SilenceWatchdog(0, 0, clock=clock)
    assert not dog.enabled
    dog.watch(FakeSession(), lambda *args: None)
    assert len(dog) == 0
    dog = SilenceWatchdog(0, 100, clock=clock)
    session, reports = FakeSession(), []
    dog.watch(session, lambda *args: reports.append(args))
    clock.now += 1000
    dog.check()
    assert reports == []  # not on hold, and the plain timeout is off
    session.closed = True
    dog.check()
    assert len(dog) == 0
    dog.close()


async def test_the_timer_checks_on_its_own_and_stops_when_nothing_is_watched():
    dog = SilenceWatchdog(1.0, 0)
    assert dog.check_period == 0.25
    session = FakeSession()
    ended = asyncio.get_running_loop().create_future()
    dog.watch(session, lambda seconds, held: ended.set_result(seconds))
    seconds = await asyncio.wait_for(ended, 5)
    assert 1.0 <= seconds < 2.0
    await asyncio.sleep(0.3)
    assert dog._handle is None
    dog.close()
