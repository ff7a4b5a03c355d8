"""LangChain's standard integration tests against the real OpenRouter API (marked live)."""

from __future__ import annotations

import base64
import io
import wave

from langchain_core.messages import AIMessage, HumanMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_openrouter_audio import ChatOpenRouterAudio, audio_block_from_bytes, pcm16_to_wav
from langchain_openrouter_audio.testing import tone_pcm16


def _spoken_question() -> HumanMessage:
    try:
        from langchain_openrouter_audio.testing import speech_pcm16

        pcm = speech_pcm16("Please say the word hello.")
    except RuntimeError:
        pcm = tone_pcm16(1.0)
    return HumanMessage(
        content=[
            {"type": "text", "text": "Reply briefly."},
            audio_block_from_bytes(pcm16_to_wav(pcm)),
        ]
    )


class TestChatOpenRouterAudioLive(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatOpenRouterAudio]:
        return ChatOpenRouterAudio

    @property
    def chat_model_params(self) -> dict[str, str]:
        return {"model": "openai/gpt-audio-mini"}

    @property
    def supports_audio_inputs(self) -> bool:
        return True

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[str]]:
        return {
            "invoke": ["audio_input", "audio_output"],
            "stream": ["audio_input", "audio_output"],
        }

    def invoke_with_audio_input(self, *, stream: bool = False) -> AIMessage:
        llm = ChatOpenRouterAudio(modalities=["text"])
        return _run(llm, [_spoken_question()], stream=stream)

    def invoke_with_audio_output(self, *, stream: bool = False) -> AIMessage:
        llm = ChatOpenRouterAudio()
        return _run(llm, [HumanMessage("Say hello.")], stream=stream)


def _run(llm: ChatOpenRouterAudio, messages: list[HumanMessage], *, stream: bool) -> AIMessage:
    if not stream:
        return llm.invoke(messages)  # type: ignore[return-value]
    total = None
    for chunk in llm.stream(messages):
        total = chunk if total is None else total + chunk
    assert total is not None
    return total  # type: ignore[return-value]


def test_live_spoken_reply_is_a_valid_wav() -> None:
    reply = ChatOpenRouterAudio().invoke("Say: good morning.")
    assert reply.text
    [audio] = [b for b in reply.content_blocks if b["type"] == "audio"]
    with wave.open(io.BytesIO(base64.b64decode(audio["base64"]))) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        assert w.getnframes() > 2400
