# The README's commands, for those who have make.
.PHONY: demo test lint docs bench assets

demo:
	python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[examples]' && python examples/voice_agent.py

test:
	python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[dev]' && pytest

lint:
	. .venv/bin/activate && ruff check . && ruff format --check . && mypy langchain_openrouter_audio

docs:
	. .venv/bin/activate && pip install -q -e '.[docs]' && NO_MKDOCS_2_WARNING=1 mkdocs build --strict

bench:
	python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[dev,benchmark]' && python -m benchmarks

# Regenerate the spoken clips in langchain_openrouter_audio/testing/assets (needs espeak-ng).
assets:
	. .venv/bin/activate && python scripts/make_assets.py
