"""Find an OpenAI-compatible model server already running on this machine.

Ollama (11434), LM Studio (1234) and llama.cpp's server (8080) all answer ``GET /v1/models``
on their usual loopback port. The probe is that one GET to 127.0.0.1 per port, with a short
timeout, in parallel: nothing else is sent and nothing leaves the machine, and a found
server is only *offered* (doctor, the Settings page); the configured reasoner is unchanged
until the user picks it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException

# The usual port of each server, for its name; any other port is "a local server".
KNOWN_PORTS: dict[int, str] = {11434: "Ollama", 1234: "LM Studio", 8080: "llama.cpp"}
HOST = "127.0.0.1"
PROBE_TIMEOUT = 0.5
# Embedding models are listed by the same route but cannot answer a chat request.
_NOT_CHAT = ("embed", "bge-", "nomic-bert", "minilm", "rerank", "whisper")


@dataclass(frozen=True)
class LocalServer:
    name: str                       # "Ollama", "LM Studio", "llama.cpp" or "local server"
    port: int
    base_url: str                   # http://127.0.0.1:PORT/v1
    models: list[str] = field(default_factory=list)

    @property
    def slug(self) -> str:
        """How the CLI names it: ``ollama``, ``lm-studio``, ``llama.cpp`` or the port."""
        if self.port in KNOWN_PORTS and KNOWN_PORTS[self.port] == self.name:
            return self.name.lower().replace(" ", "-")
        return str(self.port)

    @property
    def model(self) -> str | None:
        """The model offered: the first one listed that can chat."""
        chat = [m for m in self.models if not any(w in m.lower() for w in _NOT_CHAT)]
        pick = chat or self.models
        return pick[0] if pick else None


def probe(port: int, timeout: float = PROBE_TIMEOUT) -> LocalServer | None:
    """One ``GET /v1/models`` to 127.0.0.1:port; a server that answers with a model list."""
    conn = HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", "/v1/models", headers={"Accept": "application/json"})
        resp = conn.getresponse()
        body = resp.read(1 << 20)
        if resp.status != 200:
            return None
        doc = json.loads(body)
    except (OSError, HTTPException, ValueError):
        return None              # nothing listening, or not an OpenAI-compatible server
    finally:
        conn.close()
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        return None
    models = [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")]
    return LocalServer(name=KNOWN_PORTS.get(port, "local server"), port=port,
                       base_url=f"http://{HOST}:{port}/v1", models=models)


def find_local(ports: Sequence[int], timeout: float = PROBE_TIMEOUT) -> list[LocalServer]:
    """The servers answering on ``ports`` (in that order); all probed at once, so the wait
    is one timeout at most."""
    ports = list(dict.fromkeys(ports))
    if not ports:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(ports))) as pool:
        found = list(pool.map(lambda p: probe(p, timeout), ports))
    return [s for s in found if s is not None]
