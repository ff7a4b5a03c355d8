"""`langgraph dev` serving examples/langgraph_server offline, streamed with `langgraph_sdk`.

Every PCM byte of the spoken reply must arrive through `messages-tuple` streaming, in
order, and the thread's final state must hold the reply: its transcript and one audio block.
"""

from __future__ import annotations

import base64
import io
import shutil
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._helpers import ASSETS, CLIP_WORDS, ROOT, wav_frames
from tests.web._proc import serving

langgraph_sdk = pytest.importorskip("langgraph_sdk", reason="langgraph-sdk is not installed")

EXAMPLE = ROOT / "examples" / "langgraph_server"
CLI = Path(sys.executable).with_name("langgraph")


def clip(name: str) -> tuple[bytes, bytes]:
    """The shipped clip `name`: WAV bytes and its raw PCM."""
    wav_bytes = (ASSETS / f"{name}.wav").read_bytes()
    return wav_bytes, wav_frames(wav_bytes)


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cli = str(CLI) if CLI.exists() else shutil.which("langgraph")
    if cli is None:
        pytest.skip("the langgraph CLI is not installed (pip install 'langgraph-cli[inmem]')")
    # A copy, so the server's .langgraph_api store lands in a temporary directory.
    workdir = tmp_path_factory.mktemp("langgraph_server")
    for name in ("langgraph.json", "voice_agent.py"):
        shutil.copy(EXAMPLE / name, workdir / name)
    cmd = [cli, "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", "{port}"]
    env = {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false"}
    with serving(cmd, "/ok", cwd=workdir, env=env, timeout_s=90) as port:
        yield f"http://127.0.0.1:{port}"


def audio_pieces(message: dict[str, Any]) -> list[bytes]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [
        base64.b64decode(block["base64"])
        for block in content
        if isinstance(block, dict) and block.get("type") == "audio" and block.get("base64")
    ]


async def test_speech_streams_through_langgraph_server(server_url: str) -> None:
    question_wav, _ = clip("question")
    _, answer_pcm = clip("weather_answer")
    answer_words = CLIP_WORDS["weather_answer"]
    async with langgraph_sdk.get_client(url=server_url) as client:
        await ask_and_check(client, question_wav, answer_pcm, answer_words)


async def ask_and_check(
    client: Any, question_wav: bytes, answer_pcm: bytes, answer_words: str
) -> None:
    thread = await client.threads.create()
    question = {
        "role": "user",
        "content": [
            {
                "type": "audio",
                "base64": base64.b64encode(question_wav).decode(),
                "mime_type": "audio/wav",
            }
        ],
    }

    streamed = bytearray()
    transcript = ""
    errors: list[Any] = []
    async for part in client.runs.stream(
        thread["thread_id"],
        "voice_agent",
        input={"messages": [question]},
        stream_mode="messages-tuple",
    ):
        if part.event == "error":
            errors.append(part.data)
        if part.event != "messages":
            continue
        message, metadata = part.data
        assert metadata["graph_id"] == "voice_agent"
        if message.get("type") == "AIMessageChunk":
            for piece in audio_pieces(message):
                streamed += piece
            content = message.get("content")
            if isinstance(content, list):
                transcript += "".join(b.get("text", "") for b in content if b.get("type") == "text")
    assert not errors
    assert bytes(streamed) == answer_pcm  # every byte, in order, nothing more
    assert transcript == answer_words

    state = await client.threads.get_state(thread["thread_id"])
    messages = state["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"]
    assert messages[1]["tool_calls"][0]["name"] == "get_weather"
    reply = messages[-1]
    blocks = reply["content"]
    assert [b["text"] for b in blocks if b["type"] == "text"] == [answer_words]
    audio = [b for b in blocks if b["type"] == "audio"]
    assert len(audio) == 1
    assert audio[0]["mime_type"] == "audio/wav"
    with wave.open(io.BytesIO(base64.b64decode(audio[0]["base64"]))) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24_000, 1, 2)
        assert w.readframes(w.getnframes()) == answer_pcm
