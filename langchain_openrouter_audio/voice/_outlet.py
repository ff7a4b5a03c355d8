"""Where a turn's speech and events go while the agent streams: the transport, unless held."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langchain_openrouter_audio.voice._reply import Reply
    from langchain_openrouter_audio.voice.transport import VoiceEvent, VoiceTransport

__all__ = ["ReplyOutlet"]


class ReplyOutlet:
    """Sends a reply's speech to the transport as it streams, and the turn's events.

    `held(reply)` is True while the reply is paused by clearing the channel: its speech
    stays in the reply's audio and is sent with the rest when it plays on.
    """

    def __init__(self, transport: VoiceTransport, held: Callable[[Reply], bool]) -> None:
        self.transport = transport
        self.held = held

    async def audio(self, reply: Reply, pcm: bytes) -> None:
        """Speech of `reply` (at the transport's output rate) to play, unless held or cut."""
        if self.held(reply):
            return
        if pcm and not reply.interrupted:
            await self.transport.play(reply.index, pcm)

    async def event(self, event: VoiceEvent) -> None:
        """An event for the UI."""
        await self.transport.send_event(event)
