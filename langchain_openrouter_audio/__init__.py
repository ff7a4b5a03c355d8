"""LangChain chat model for OpenRouter's audio models: speech in, speech out.

```python
from langchain_openrouter_audio import ChatOpenRouterAudio

reply = ChatOpenRouterAudio().invoke("Say hello")
reply.text            # the transcript
reply.content_blocks  # [{'type': 'text', ...}, {'type': 'audio', 'mime_type': 'audio/wav', ...}]
```
"""

from langchain_openrouter_audio.audio import (
    audio_block_from_bytes,
    audio_block_from_file,
    audio_bytes,
    audio_pcm,
    display_audio,
    pcm16_to_wav,
    record_audio_block,
    save_audio,
)
from langchain_openrouter_audio.callbacks import (
    AsyncAudioCallbackHandler,
    AudioCallbackHandler,
    SpeakerPlayer,
    WavFileWriter,
)
from langchain_openrouter_audio.chat_models import ChatOpenRouterAudio
from langchain_openrouter_audio.chunks import join_chunks
from langchain_openrouter_audio.cost import get_openrouter_callback
from langchain_openrouter_audio.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    IncompleteStreamError,
    InsufficientCreditsError,
    MalformedStreamError,
    NotFoundError,
    OpenRouterError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    StreamError,
)
from langchain_openrouter_audio.speech import OpenRouterSpeech
from langchain_openrouter_audio.transcription import OpenRouterTranscription

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AsyncAudioCallbackHandler",
    "AudioCallbackHandler",
    "AuthenticationError",
    "BadRequestError",
    "ChatOpenRouterAudio",
    "IncompleteStreamError",
    "InsufficientCreditsError",
    "MalformedStreamError",
    "NotFoundError",
    "OpenRouterError",
    "OpenRouterSpeech",
    "OpenRouterTranscription",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "ServerError",
    "SpeakerPlayer",
    "StreamError",
    "WavFileWriter",
    "audio_block_from_bytes",
    "audio_block_from_file",
    "audio_bytes",
    "audio_pcm",
    "display_audio",
    "get_openrouter_callback",
    "join_chunks",
    "pcm16_to_wav",
    "record_audio_block",
    "save_audio",
]

__version__ = "0.1.0"
