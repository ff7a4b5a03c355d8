"""Hear a reply while it is generated: play it on the speaker, or write it to a file.

    python examples/stream_to_speaker.py            # offline unless OPENROUTER_API_KEY is set
    python examples/stream_to_speaker.py --file     # always write the file, never play

Speech reaches the `SpeakerPlayer` callback chunk by chunk, so playback starts
with the first piece, long before the reply is complete. Without sounddevice
(`pip install 'langchain-openrouter-audio[playback]'`) or without an output
device, the same chunks go to a `WavFileWriter` and land in `story.wav` in
`examples-output/` (or `$EXAMPLES_OUT`).
"""

from __future__ import annotations

import sys

from _offline import chat_model, output_dir
from langchain_core.callbacks import BaseCallbackHandler

from langchain_openrouter_audio import SpeakerPlayer, WavFileWriter, audio_pcm, join_chunks

PROMPT = "Tell me a very short story."


def speech_sink(to_file: bool) -> BaseCallbackHandler:
    """A `SpeakerPlayer` when a sound device is there, else a `WavFileWriter`."""
    if not to_file:
        try:
            player = SpeakerPlayer()  # ImportError without the [playback] extra
            import sounddevice

            sounddevice.query_devices(kind="output")  # raises when there is no output device
        except Exception as err:  # no extra, no PortAudio library, no device: all mean "no"
            print(f"No speaker ({type(err).__name__}: {err}); writing a file instead.")
        else:
            print("Playing on the default output device as the speech arrives.")
            return player
    return WavFileWriter(output_dir() / "story.wav")


def main(argv: list[str]) -> int:
    sink = speech_sink(to_file="--file" in argv)
    with chat_model() as llm:
        chunks = []
        for chunk in llm.stream(PROMPT, config={"callbacks": [sink]}):
            print(chunk.text, end="", flush=True)
            chunks.append(chunk)
    print()
    if not chunks:
        print("No reply.")
        return 1
    reply = join_chunks(chunks)  # linear time, however long the story
    seconds = len(audio_pcm(reply)) / 2 / llm.sample_rate
    where = f"written to {sink.path}" if isinstance(sink, WavFileWriter) else "played"
    print(f"{len(chunks)} chunks, {seconds:.1f} s of speech {where}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
