"""Channels the turn engine talks through (see `langchain_openrouter_audio.voice.transport`)."""
