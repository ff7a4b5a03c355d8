"""Speech in, structured output out: turn a spoken request into an action.

    python examples/transcribe_and_act.py          # offline unless OPENROUTER_API_KEY is set

The model hears a spoken request ("Please book a table for two at eight
tonight.") and answers with a `Booking` object through `with_structured_output`
(a tool call on the wire, asked for as text since the question is audio). The
program then acts on the typed fields. Offline, the local server answers with
the tool call a model would make.
"""

from __future__ import annotations

import sys

from _offline import chat_model, clip_wav, transcript
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field

from langchain_openrouter_audio import audio_block_from_bytes
from langchain_openrouter_audio.testing import tool_call_reply


class Booking(BaseModel):
    """A restaurant booking taken from a spoken request."""

    party_size: int = Field(description="How many people")
    time: str = Field(description="Time of the booking, 24-hour HH:MM")


def book(booking: Booking) -> str:
    """The action: here a message; in an app, a call to the booking system."""
    return f"Booked a table for {booking.party_size} at {booking.time}."


def main() -> int:
    print(f"Spoken request: {transcript('booking_request')!r}")
    request = HumanMessage(
        content=[
            {"type": "text", "text": "Take the booking in this voice message."},
            audio_block_from_bytes(clip_wav("booking_request")),
        ]
    )
    offline_answer = tool_call_reply("Booking", {"party_size": 2, "time": "20:00"})
    with chat_model(offline_answer) as llm:
        booking = llm.with_structured_output(Booking).invoke([request])
    print(f"Structured: {booking!r}")
    print(book(booking))
    return 0


if __name__ == "__main__":
    sys.exit(main())
