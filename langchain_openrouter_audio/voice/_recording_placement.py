"""Where a reply goes on the conversation's recording, and what can be written out yet.

The user's audio is written as it comes; the agent's reply goes where it started playing
(or, if it never played, where the user stopped speaking), so the recording holds back
what a reply not yet placed could still overlap.
"""

from __future__ import annotations

from langchain_openrouter_audio.voice._pcm import SAMPLE_WIDTH
from langchain_openrouter_audio.voice._reply import Reply
from langchain_openrouter_audio.voice.recording import ConversationRecorder
from langchain_openrouter_audio.voice.resample import resample_pcm16

__all__ = ["place_reply", "settled_until"]


def place_reply(recorder: ConversationRecorder, reply: Reply) -> None:
    """Put what was heard of `reply` on the agent's channel, where it played."""
    reply.recorded = True
    heard = bytes(reply.audio[: round(reply.played_s * reply.output_rate) * SAMPLE_WIDTH])
    pcm = resample_pcm16(heard, reply.output_rate, recorder.sample_rate)
    start = reply.play_start_sample
    if start is None:
        start = reply.utterance_sample
    recorder.agent_audio(start, pcm)


def settled_until(input_samples: int, reply: Reply | None, next_question: int | None) -> int:
    """The input sample up to which no reply can be placed any more.

    `reply` is the one under way; `next_question` where the first utterance still waiting
    for its turn ended (a reply to it has not even started).
    """
    upto = input_samples
    if reply is not None and not reply.recorded:
        upto = reply.utterance_sample
    if next_question is not None:
        upto = min(upto, next_question)
    return upto
