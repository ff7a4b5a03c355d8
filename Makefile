# The two commands of the README, for those who have make.
.PHONY: demo test lint bench

demo:
	python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[examples]' && python examples/voice_agent.py

test:
	python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[dev]' && pytest

lint:
	. .venv/bin/activate && ruff check . && ruff format --check . && mypy langchain_openrouter_audio

bench:
	python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[dev,benchmark]' && python benchmarks/run.py
