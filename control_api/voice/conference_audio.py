"""What a conference plays besides its participants' voices: the wait and hold
experiences of one participant, and announcements.

A participant who waits for the conference to start (``waitUrl``) or is on hold
(``HoldUrl``) is set aside in the mixer (it is sent no mix) while its own leg plays:

- no URL: the local hold music (media/hold_music.py), looped;
- ``""`` (an empty ``waitUrl``): nothing; the conference's silence;
- a URL: its TwiML (``<Play>``, ``<Say>``, ``<Pause>``, ``<Redirect>``), fetched
  again each round, at most once a second; an answer that is not TwiML is played as
  an audio file (MP3, WAV), looped. A URL that fails falls back to the hold music.

An announcement (``AnnounceUrl``) is one such document played once: to one
participant (:func:`announce_to`), or mixed into what every participant hears
(:func:`announcement_samples`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin

import numpy as np

from control_api.twiml.parser import TwimlError, parse_voice_twiml
from control_api.twiml.verbs import Pause, Play, Redirect, Say
from control_api.voice.queue import run_wait_document
from control_api.webhooks import WebhookError
from media.hold_music import hold_music
from media.player import play

if TYPE_CHECKING:
    from control_api.voice.runner import TwimlRunner

__all__ = ["AnnouncementSources", "announce_to", "announcement_samples", "play_aside"]

log = logging.getLogger("callswitch.voice")

# An announcement is played from memory: at most ten minutes of it (a <Play loop="1000">
# of a long file must not become gigabytes of samples).
MAX_ANNOUNCEMENT_SAMPLES = 600 * 8000
MIN_ROUND_S = 1.0  # a document that plays nothing is fetched at most once a second
MAX_DOCUMENTS = 10  # <Redirect>s followed for one announcement
RATE = 8000


async def play_aside(runner: TwimlRunner, url: str | None, method: str) -> None:
    """Play the wait or hold experience at ``url`` to the runner's call until cancelled
    (or the call ends)."""
    call = runner.call
    if url:
        url = urljoin(runner.document_url or "", url)
        loop = asyncio.get_running_loop()
        while not call.ended.is_set():
            started = loop.time()
            try:
                await run_wait_document(runner, url, method, [], whisper=True)
            except TwimlError:  # not TwiML: an audio file
                await _loop_audio(runner, url)
                return
            except WebhookError as exc:
                runner.errors.append(f"11200 {exc}")
                log.warning("conference.wait_url_failed", extra={"call_sid": call.sid})
                break
            remaining = MIN_ROUND_S - (loop.time() - started)
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(call.ended.wait(), remaining)
    if call.leg is not None and not call.ended.is_set():
        await play(call.leg, hold_music(), loop=0)


async def _loop_audio(runner: TwimlRunner, url: str) -> None:
    call = runner.call
    try:
        samples = _samples(await runner.services.load_audio(url))
    except Exception as exc:
        runner.errors.append(f"11100 {exc}")
        samples = hold_music()
    if call.leg is not None and not call.ended.is_set():
        await play(call.leg, samples, loop=0)


async def announce_to(runner: TwimlRunner, url: str, method: str) -> bool:
    """Play the announcement at ``url`` once to the runner's call; False when it failed."""
    try:
        await run_wait_document(runner, url, method, [], whisper=True)
    except TwimlError:
        try:
            samples = _samples(await runner.services.load_audio(url))
        except Exception as exc:
            runner.errors.append(f"11100 {exc}")
            return False
        if runner.call.leg is not None:
            await play(runner.call.leg, samples)
    except WebhookError as exc:
        runner.errors.append(f"11200 {exc}")
        return False
    return True


Fetch = Callable[[str, str, list[tuple[str, str]]], Awaitable[str]]
Synthesize = Callable[[str, str, str], Awaitable[object]]
LoadAudio = Callable[[str], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class AnnouncementSources:
    """Where a room's announcements come from: the account's signed TwiML fetch
    (``WebhookClient.fetch_twiml``), speech, audio files, the accounts' tokens."""

    fetch_twiml: Callable[[str, str, list[tuple[str, str]], str], Awaitable[str]]
    synthesize: Synthesize
    load_audio: LoadAudio
    token_of: Callable[[str], Awaitable[str | None]]

    async def samples(
        self, account_sid: str, url: str, method: str, params: list[tuple[str, str]]
    ) -> np.ndarray:
        token = await self.token_of(account_sid) or ""

        async def fetch(url: str, method: str, params: list[tuple[str, str]]) -> str:
            return await self.fetch_twiml(url, method, params, token)

        return await announcement_samples(
            fetch, self.synthesize, self.load_audio, url, method, params
        )


async def announcement_samples(
    fetch: Fetch,
    synthesize: Synthesize,
    load_audio: LoadAudio,
    url: str,
    method: str,
    params: list[tuple[str, str]],
) -> np.ndarray:
    """The announcement at ``url`` as 8 kHz int16 samples (its ``<Say>``, ``<Play>`` and
    ``<Pause>`` one after the other); raises WebhookError or TwimlError when it fails."""
    parts: list[np.ndarray] = []

    def add(samples: np.ndarray, times: int = 1) -> None:
        room = MAX_ANNOUNCEMENT_SAMPLES - sum(part.size for part in parts)
        if samples.size == 0:
            return
        for _ in range(max(1, times)):
            if room <= 0:
                return
            parts.append(samples[:room])
            room -= min(room, samples.size)

    for _ in range(MAX_DOCUMENTS):
        try:
            text = await fetch(url, method, params)
            verbs = parse_voice_twiml(text).verbs
        except TwimlError:
            add(_samples(await load_audio(url)))
            break
        next_url = None
        for verb in verbs:
            if isinstance(verb, Say) and verb.text:
                add(_samples(await synthesize(verb.text, verb.voice, verb.language)), verb.loop)
            elif isinstance(verb, Play) and verb.url:
                add(_samples(await load_audio(verb.url)), verb.loop)
            elif isinstance(verb, Pause):
                add(np.zeros(int(verb.length * RATE), dtype=np.int16))
            elif isinstance(verb, Redirect):
                next_url = (urljoin(url, verb.url or url), verb.method)
                break
        if next_url is None:
            break
        url, method = next_url
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def _samples(value: object) -> np.ndarray:
    return np.asarray(value, dtype=np.int16).reshape(-1)
