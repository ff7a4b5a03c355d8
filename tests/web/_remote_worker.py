"""A voice worker in front of a LangGraph deployment, as `uvicorn --factory` starts it.

``LANGGRAPH_URL`` is the deployment; ``VOICE_CONVERSATION_SECRET`` is shared by every
worker, so a conversation started on one continues on another.
"""

from __future__ import annotations

import os

from langgraph.pregel.remote import RemoteGraph
from starlette.applications import Starlette

from langchain_openrouter_audio.web import voice_app


def app() -> Starlette:
    return voice_app(RemoteGraph("voice_agent", url=os.environ["LANGGRAPH_URL"]))
