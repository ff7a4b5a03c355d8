"""Benchmarks of langchain-openrouter-audio: `python -m benchmarks --help`."""
