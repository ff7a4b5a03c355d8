"""LangChain's standard unit tests for chat models, all of them, none overridden."""

from __future__ import annotations

from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_openrouter_audio import ChatOpenRouterAudio


class TestChatOpenRouterAudioStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatOpenRouterAudio]:
        return ChatOpenRouterAudio

    @property
    def chat_model_params(self) -> dict[str, str]:
        return {"model": "openai/gpt-audio-mini", "api_key": "test"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        return (
            {
                "OPENROUTER_API_KEY": "api_key",
                "OPENROUTER_BASE_URL": "https://example.test/api/v1",
            },
            {"model": "openai/gpt-audio-mini"},
            {"api_key": "api_key", "base_url": "https://example.test/api/v1"},
        )

    @property
    def supports_audio_inputs(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True
