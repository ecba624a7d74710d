import logging

from callswitch.refusals import Refusals


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_source_is_logged_once_per_window_and_every_refusal_counted(caplog):
    clock = Clock()
    refusals = Refusals(60.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="callswitch.security"):
        for _ in range(5):
            refusals("sip.rate", "192.0.2.1")
        refusals("sip.rate", "192.0.2.2")
        refusals("auth.lockout", "192.0.2.1", user="alice")
        clock.now = 61.0
        refusals("sip.rate", "192.0.2.1")
    lines = [(r.reason, r.source_ip, getattr(r, "repeated", 0)) for r in caplog.records]
    assert lines == [
        ("sip.rate", "192.0.2.1", 0),
        ("sip.rate", "192.0.2.2", 0),
        ("auth.lockout", "192.0.2.1", 0),
        ("sip.rate", "192.0.2.1", 4),
    ]
    assert refusals.counts == {"sip.rate": 7, "auth.lockout": 1}


def test_the_sources_remembered_are_bounded():
    clock = Clock()
    refusals = Refusals(60.0, clock=clock, max_sources=3)
    for n in range(10):
        refusals("sip.rate", f"192.0.2.{n}")
    assert len(refusals._seen) == 3
    assert refusals.counts["sip.rate"] == 10


def test_an_ipv6_host_is_logged_once_per_window_whatever_address_of_its_slash_64(caplog):
    refusals = Refusals(60.0, clock=Clock())
    with caplog.at_level(logging.WARNING, logger="callswitch.security"):
        for n in range(1, 6):
            refusals("sip.rate", f"2001:db8::{n}")
    assert [r.source_ip for r in caplog.records] == ["2001:db8::1"]
    assert refusals.counts["sip.rate"] == 5
