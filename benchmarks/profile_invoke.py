"""Profile `ChatOpenRouterAudio.invoke` on a 60 s spoken reply with pyinstrument.

    python benchmarks/profile_invoke.py [--seconds 60] [--calls 20]

The reply is recorded from `OpenRouterTestServer` and replayed from a
subprocess (see `replay.py`), so the profile holds the client's work only.
Prints the profile; `--out FILE` also writes it to FILE.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx
from pyinstrument import Profiler

sys.path.insert(0, str(Path(__file__).resolve().parent))

from floor import floor_invoke
from replay import Payload, ReplayProcess, split_events
from run import KEY, MODEL, PROMPT, client_body, headers_for, record, speech

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.testing import OpenRouterTestServer

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.0002)
    parser.add_argument("--floor", action="store_true", help="profile floor.py instead")
    parser.add_argument("--out", help="also write the profile to this file")
    args = parser.parse_args()

    reply = speech(args.seconds)
    with OpenRouterTestServer(api_key=KEY) as server:
        model = ChatOpenRouterAudio(api_key=KEY, base_url=server.base_url, model=MODEL)
        body = client_body(server, lambda: model.invoke(PROMPT), reply)
        data, _ = record(server, reply, body)
    with ReplayProcess({"speech": Payload(events=split_events(data))}) as replay:
        model = ChatOpenRouterAudio(api_key=KEY, base_url=replay.base_url("speech"), model=MODEL)
        client = httpx.Client(timeout=60)
        url = replay.base_url("speech") + "/chat/completions"

        def call() -> object:
            if args.floor:
                return floor_invoke(client, url, headers_for(True), body, encode_block=True)
            return model.invoke(PROMPT)

        call()  # warm-up: imports, connection, transport
        profiler = Profiler(interval=args.interval)
        profiler.start()
        for _ in range(args.calls):
            call()
        profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    what = "floor_invoke(encode_block=True)" if args.floor else "ChatOpenRouterAudio.invoke"
    header = (
        f"# pyinstrument: {args.calls} x {what}, {args.seconds} s spoken "
        f"reply ({args.seconds * 48_000 / 1e6:.2f} MB PCM, {args.seconds * 10} audio events), "
        f"interval {args.interval * 1000:g} ms\n"
        f"# command: python benchmarks/profile_invoke.py --seconds {args.seconds} "
        f"--calls {args.calls}{' --floor' if args.floor else ''}\n\n"
    )
    if args.out:
        Path(args.out).write_text(header + text)
    print(header + text)


if __name__ == "__main__":
    main()
