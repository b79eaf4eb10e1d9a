"""Fixtures for the reasoner tests: real local endpoints, settings and a real index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from reason.servers import AnthropicServer, GeminiServer, OpenAIServer

from localvideo.config import Settings, load_settings
from localvideo.store.db import Database


@pytest.fixture
def anthropic_server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as srv:
        yield srv


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def gemini_server() -> Iterator[GeminiServer]:
    with GeminiServer() as srv:
        yield srv


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return load_settings(data_dir)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    d = Database(settings.db_path)
    yield d
    d.close()
