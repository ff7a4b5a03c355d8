"""A custom LangGraph graph whose last node speaks, heard through a callback handler.

    python examples/langgraph_voice_graph.py       # offline unless OPENROUTER_API_KEY is set

Two nodes: `lookup` (plain Python: fetches the facts) and `speak` (the audio
model says them). The graph runs with `stream_mode="messages"`, so transcript
pieces print as they are spoken, while a `WavFileWriter` passed in the graph's
config hears the speech of the `speak` node and writes `graph_reply.wav` in
`examples-output/` (or `$EXAMPLES_OUT`).
"""

from __future__ import annotations

import sys
from typing import Any

from _offline import chat_model, output_dir
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph

from langchain_openrouter_audio import ChatOpenRouterAudio, WavFileWriter, audio_pcm


def build_graph(llm: ChatOpenRouterAudio) -> CompiledStateGraph[Any, Any, Any, Any]:
    def lookup(state: MessagesState) -> dict[str, Any]:
        facts = "Weather in Paris: 21 degrees, sunny."  # a real app would call an API here
        return {"messages": [SystemMessage(f"Facts: {facts} Answer in one sentence.")]}

    def speak(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        # Passing `config` on keeps the graph's callbacks, so the handler hears this call.
        return {"messages": [llm.invoke(state["messages"], config)]}

    graph = StateGraph(MessagesState)
    graph.add_node("lookup", lookup)
    graph.add_node("speak", speak)
    graph.add_edge(START, "lookup")
    graph.add_edge("lookup", "speak")
    graph.add_edge("speak", END)
    return graph.compile()


def main() -> int:
    out = output_dir() / "graph_reply.wav"
    writer = WavFileWriter(out)
    audio_bytes = 0
    with chat_model() as llm:
        graph = build_graph(llm)
        question = {"messages": [HumanMessage("What is the weather like in Paris?")]}
        for message, meta in graph.stream(
            question, {"callbacks": [writer]}, stream_mode="messages"
        ):
            if isinstance(message, AIMessageChunk) and meta["langgraph_node"] == "speak":
                print(message.text, end="", flush=True)
                audio_bytes += len(audio_pcm(message))  # this chunk's raw PCM
    print()
    print(f"Streamed {audio_bytes / 2 / llm.sample_rate:.1f} s of speech; the handler wrote {out}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
