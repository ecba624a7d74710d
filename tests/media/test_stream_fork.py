"""<Start><Stream> forks, sans-I/O: track interleaving and per-track counters
(media.streams.ForkTracks), and several listeners on one leg's tap (media.taps)."""

from __future__ import annotations

import base64
import json

from media.leg import Frame
from media.streams import TRACKS, ForkTracks, MediaStream
from media.taps import TapFanout, add_tap, remove_tap


def fork(track: str) -> ForkTracks:
    return ForkTracks(
        MediaStream("AC" + "0" * 32, "CA" + "1" * 32, "MZ" + "2" * 32, tracks=TRACKS[track])
    )


def test_both_tracks_interleave_with_a_chunk_counter_each():
    tracks = fork("both_tracks")
    assert json.loads(tracks.protocol.start())["start"]["tracks"] == ["inbound", "outbound"]
    sent = []
    for tick in range(3):
        for side in (0, 1):
            text = tracks.media(side, bytes([side, tick]) * 80, now_ms=tick * 20)
            sent.append(json.loads(text))
    assert [m["sequenceNumber"] for m in sent] == ["2", "3", "4", "5", "6", "7"]
    assert [m["media"]["track"] for m in sent] == ["inbound", "outbound"] * 3
    assert [m["media"]["chunk"] for m in sent] == ["1", "1", "2", "2", "3", "3"]
    assert [m["media"]["timestamp"] for m in sent] == ["0", "0", "20", "20", "40", "40"]
    assert base64.b64decode(sent[3]["media"]["payload"]) == bytes([1, 1]) * 80


def test_one_track_only_sends_its_side():
    inbound = fork("inbound_track")
    assert inbound.wants(0) and not inbound.wants(1)
    assert inbound.media(1, b"\xff" * 160, now_ms=0) is None
    message = json.loads(inbound.media(0, b"\xff" * 160, now_ms=7))
    assert message["media"]["track"] == "inbound" and message["media"]["chunk"] == "1"
    assert message["sequenceNumber"] == "1"  # no start sent yet in this test

    outbound = fork("outbound_track")
    assert json.loads(outbound.protocol.start())["start"]["tracks"] == ["outbound"]
    assert outbound.media(0, b"\xff" * 160, now_ms=0) is None
    assert json.loads(outbound.media(1, b"\xff" * 160, 0))["media"]["track"] == "outbound"


def test_timestamps_never_go_backwards_within_a_track():
    tracks = fork("both_tracks")
    stamps = [
        json.loads(tracks.media(0, b"\x00" * 160, now_ms=ms))["media"]["timestamp"]
        for ms in (0, 0, 15, 10, 40)
    ]
    assert stamps == ["0", "1", "15", "16", "40"]
    # The other track's clock is its own.
    assert json.loads(tracks.media(1, b"\x00" * 160, now_ms=5))["media"]["timestamp"] == "5"


class FakeLeg:
    tap = None
    tap_paced = False

    def __init__(self) -> None:
        self.replans = 0

    def on_reconfigured(self) -> None:
        self.replans += 1


def test_tap_fan_out_adds_and_removes_listeners():
    leg = FakeLeg()
    heard: list[tuple[str, int, bytes]] = []

    def listener(name):
        return lambda side, frame: heard.append((name, side, frame.payload))

    recording, fork_a, fork_b = listener("rec"), listener("a"), listener("b")
    add_tap(leg, recording)
    assert leg.tap is recording  # one listener: no fan-out in the tick's way
    add_tap(leg, fork_a)
    add_tap(leg, fork_b)
    assert isinstance(leg.tap, TapFanout)
    leg.tap(0, Frame("PCMU", b"x"))
    assert heard == [("rec", 0, b"x"), ("a", 0, b"x"), ("b", 0, b"x")]

    heard.clear()
    remove_tap(leg, fork_a)
    leg.tap(1, Frame("PCMU", b"y"))
    assert heard == [("rec", 1, b"y"), ("b", 1, b"y")]
    remove_tap(leg, recording)
    assert leg.tap is fork_b
    remove_tap(leg, fork_a)  # not there: nothing changes
    assert leg.tap is fork_b
    remove_tap(leg, fork_b)
    assert leg.tap is None


def test_bound_methods_are_removed_too():
    class Recorder:
        def __init__(self):
            self.frames = 0

        def tap(self, side, frame):
            self.frames += 1

    leg, recorder = FakeLeg(), Recorder()
    add_tap(leg, recorder.tap)
    add_tap(leg, lambda side, frame: None)
    remove_tap(leg, recorder.tap)  # a new bound-method object, equal to the one added
    leg.tap(0, Frame("PCMU", b""))
    assert recorder.frames == 0


def test_the_leg_says_whether_a_listener_needs_the_ticks_pacing():
    """Forks (unpaced) leave a relaying bridge a relay; a recording (paced) makes it
    pass frames: the bridge re-plans whenever that, or whether anyone listens, changes."""
    leg = FakeLeg()
    fork_a, fork_b, recording = (lambda side, frame: None for _ in range(3))
    add_tap(leg, fork_a, paced=False)
    assert leg.tap is fork_a and not leg.tap_paced and leg.replans == 1
    add_tap(leg, fork_b, paced=False)
    assert not leg.tap_paced and leg.replans == 1  # still only forks: nothing to re-plan
    add_tap(leg, recording)
    assert leg.tap_paced and leg.replans == 2
    assert leg.tap.paced == [False, False, True]
    remove_tap(leg, fork_a)
    assert leg.tap_paced and leg.replans == 2
    remove_tap(leg, recording)
    assert leg.tap is fork_b and not leg.tap_paced and leg.replans == 3
    add_tap(leg, recording)
    remove_tap(leg, fork_b)
    assert leg.tap is recording and leg.tap_paced and leg.replans == 4
    remove_tap(leg, recording)
    assert leg.tap is None and not leg.tap_paced and leg.replans == 5
