"""Drive an existing ComfyUI server: substitute the prompt into an API-format graph, run it,
follow its progress, and bring the result back as an H.264 MP4.

ComfyUI's HTTP API (the one its own front end uses):

1. ``POST /upload/image`` (multipart) for an input image → the name ``LoadImage`` takes;
2. ``ws://host/ws?clientId=ID`` opened *before* submitting, so no message is missed;
3. ``POST /prompt {"prompt": graph, "client_id": ID}`` → ``prompt_id`` or ``node_errors``;
4. websocket messages until ``executing`` with ``node: null`` (or ``execution_success``);
   ``GET /history/{prompt_id}`` polled instead when the websocket is refused or drops;
5. ``GET /history/{prompt_id}`` → outputs → ``GET /view?filename=&subfolder=&type=``.

ComfyUI refuses a request on loopback whose ``Origin`` does not match its ``Host``, so every
request here sends an ``Origin`` built from the server URL.
"""

from __future__ import annotations

import contextlib
import copy
import json
import mimetypes
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageSequence
from websockets.exceptions import InvalidHandshake, WebSocketException
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

from localvideo import media
from localvideo.errors import ComfyUIError, LocalVideoError, UsageError

Progress = Callable[[dict[str, Any]], None]

START_HINT = "start it with `python main.py --listen 127.0.0.1` or pass --comfy-url"
API_FORMAT_HINT = ("in ComfyUI enable dev mode and use Workflow → Export (API) "
                   "(older menus: \"Save (API Format)\"), then pass that file to --workflow")

# Input names that hold the prompt text on the text-encode nodes video workflows use
# (CLIPTextEncode, TextEncodeHunyuanVideo_ImageToVideo, CLIPTextEncodeSDXL, ...).
_TEXT_INPUTS = ("text", "prompt", "text_g", "text_l", "t5xxl", "clip_l")
_FRAME_INPUTS = ("length", "num_frames", "video_frames", "frames")
_FPS_INPUTS = ("frame_rate", "fps")
# Nodes that decide the output size and length: the empty-latent video nodes and the
# image-to-video conditioning nodes that build the latent themselves.
_LATENT_CLASS = re.compile(r"Empty.*(Latent|Embeds)|Latent.*Video|ToVideo|img2vid",
                           re.IGNORECASE)
_VIDEO_EXT = {".mp4", ".webm", ".mkv", ".mov", ".m4v", ".avi"}
_ANIM_EXT = {".webp", ".gif", ".apng"}
_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


@dataclass
class ComfyResult:
    path: Path
    prompt_id: str
    outputs: list[str]
    timings: dict[str, float]
    # field → ["node_id.input (class_type)", ...] for every value written into the graph
    substituted: dict[str, list[str]] = field(default_factory=dict)
    # parameters the caller gave that no node in the graph could take
    skipped: list[str] = field(default_factory=list)
    transport: str = "websocket"   # or "polling" when the websocket was refused or dropped


# ---------------------------------------------------------------------------------------
# Workflow loading and substitution (pure functions: no server needed)
# ---------------------------------------------------------------------------------------

def load_workflow(workflow: Path | str | dict[str, Any]) -> dict[str, Any]:
    """Read and check an API-format graph: ``{node_id: {"class_type", "inputs"}}``."""
    if isinstance(workflow, dict):
        graph: Any = workflow
        where = "the workflow"
    else:
        path = Path(workflow)
        where = str(path)
        if not path.is_file():
            raise UsageError(f"workflow file not found: {path}",
                             hint="pass the path of a ComfyUI graph saved in API format "
                                  "to --workflow")
        try:
            graph = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"{path} is not a JSON file: {exc}", hint=API_FORMAT_HINT) from exc
    if isinstance(graph, dict) and ("nodes" in graph and "links" in graph):
        raise UsageError(f"{where} is a ComfyUI UI-format workflow (it has \"nodes\" and "
                         "\"links\"); the server API needs the API format", hint=API_FORMAT_HINT)
    if isinstance(graph, dict) and isinstance(graph.get("prompt"), dict):
        # A saved POST /prompt body: take the graph inside it.
        graph = graph["prompt"]
    if not isinstance(graph, dict) or not graph:
        raise UsageError(f"{where} is not an API-format workflow (expected a JSON object of "
                         "node id → {class_type, inputs})", hint=API_FORMAT_HINT)
    for node_id, node in graph.items():
        if (not isinstance(node, dict) or not isinstance(node.get("class_type"), str)
                or not isinstance(node.get("inputs"), dict)):
            raise UsageError(f"{where}: node {node_id!r} has no class_type/inputs, so this is "
                             "not an API-format workflow", hint=API_FORMAT_HINT)
    return graph


def _is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int)
            and isinstance(value[1], int))


def _title(node: dict[str, Any]) -> str:
    meta = node.get("_meta")
    return str(meta.get("title", "")) if isinstance(meta, dict) else ""


def _text_inputs(node: dict[str, Any]) -> list[str]:
    return [k for k in _TEXT_INPUTS if isinstance(node["inputs"].get(k), str)]


def _trace_text_node(graph: dict[str, Any], start: Any, role: str) -> str | None:
    """Follow a positive/negative link back to the node that holds the text.

    Conditioning often passes through other nodes first (WanImageToVideo, LTXVConditioning,
    FluxGuidance, CFGGuider): follow the input of the same role, else ``conditioning``.
    """
    node_id = str(start)
    for _ in range(32):  # a graph is acyclic; the bound only guards a malformed one
        node = graph.get(node_id)
        if node is None:
            return None
        if _text_inputs(node):
            return node_id
        inputs = node["inputs"]
        nxt = next((inputs[k] for k in (role, "conditioning", "conditioning_to")
                    if _is_link(inputs.get(k))), None)
        if nxt is None:
            return None
        node_id = str(nxt[0])
    return None


def find_prompt_nodes(graph: dict[str, Any]) -> tuple[str | None, str | None]:
    """(positive node id, negative node id); titles win, then sampler links, then uniqueness."""
    text_nodes = [nid for nid, n in graph.items() if _text_inputs(n)]
    pos = neg = None
    # 1. Titles a user can set in the UI ("Positive Prompt", "Negative Prompt").
    for nid in text_nodes:
        title = _title(graph[nid]).lower()
        if "negative" in title and neg is None:
            neg = nid
        elif ("positive" in title or "prompt" in title) and "negative" not in title \
                and pos is None:
            pos = nid
    # 2. Links from samplers / guiders / conditioning nodes.
    for node in graph.values():
        inputs = node["inputs"]
        if pos is None and _is_link(inputs.get("positive")):
            pos = _trace_text_node(graph, inputs["positive"][0], "positive")
        if neg is None and _is_link(inputs.get("negative")):
            neg = _trace_text_node(graph, inputs["negative"][0], "negative")
    # 3. A single text node (e.g. a BasicGuider flow) can only be the positive prompt.
    if pos is None:
        rest = [nid for nid in text_nodes if nid != neg]
        if len(rest) == 1:
            pos = rest[0]
    if pos is not None and pos == neg:
        neg = None
    return pos, neg


def _set(graph: dict[str, Any], done: dict[str, list[str]], what: str, nid: str, key: str,
         value: Any) -> None:
    graph[nid]["inputs"][key] = value
    done.setdefault(what, []).append(f"{nid}.{key} ({graph[nid]['class_type']})")


def substitute(graph: dict[str, Any], *, prompt: str, negative: str | None = None,
               seed: int | None = None, width: int | None = None, height: int | None = None,
               frames: int | None = None, fps: float | None = None, steps: int | None = None,
               guidance: float | None = None, image_name: str | None = None,
               ) -> tuple[dict[str, Any], dict[str, list[str]], list[str]]:
    """Return (a new graph with the values written in, what went where, what found no node).

    Only literal inputs are replaced; an input wired to another node is left alone.
    """
    g = copy.deepcopy(graph)
    done: dict[str, list[str]] = {}
    skipped: list[str] = []

    # Wrapper nodes (e.g. WanVideoTextEncode) hold both prompts in one node.
    pair = [nid for nid in sorted(g, key=_node_order)
            if isinstance(g[nid]["inputs"].get("positive_prompt"), str)]
    for nid in pair:
        _set(g, done, "prompt", nid, "positive_prompt", prompt)
        if negative is not None and isinstance(g[nid]["inputs"].get("negative_prompt"), str):
            _set(g, done, "negative", nid, "negative_prompt", negative)
    pos, neg = find_prompt_nodes(g)
    if pair and pos is None:
        if negative is not None and "negative" not in done:
            skipped.append("negative")
    elif pos is None:
        classes = sorted({n["class_type"] for n in g.values()})
        raise UsageError(
            "could not find the positive prompt node in the workflow (no text-encode node "
            f"is linked to a sampler's positive input; node types: {', '.join(classes)})",
            hint="in ComfyUI set the prompt node's title to \"Positive Prompt\" (and the "
                 "negative one to \"Negative Prompt\"), export the API format again")
    else:
        for key in _text_inputs(g[pos]):
            _set(g, done, "prompt", pos, key, prompt)
        if negative is not None and "negative" not in done:
            if neg is None:
                skipped.append("negative")
            else:
                for key in _text_inputs(g[neg]):
                    _set(g, done, "negative", neg, key, negative)

    def literal(kind: type | tuple[type, ...], names: tuple[str, ...],
                only: Callable[[dict[str, Any]], bool] = lambda n: True,
                ) -> Iterator[tuple[str, str]]:
        for nid in sorted(g, key=_node_order):
            node = g[nid]
            if not only(node):
                continue
            for key in names:
                v = node["inputs"].get(key)
                # bool is an int: never overwrite a toggle with a number
                if isinstance(v, kind) and not isinstance(v, bool):
                    yield nid, key

    def put(what: str, value: Any, hits: list[tuple[str, str]]) -> None:
        if value is None:
            return
        if not hits:
            skipped.append(what)
        for nid, key in hits:
            old = g[nid]["inputs"][key]
            # Keep an INT input an int (ComfyUI validates types) when the value allows it.
            v = int(value) if isinstance(old, int) and float(value).is_integer() else value
            _set(g, done, what, nid, key, v)

    put("seed", seed, list(literal(int, ("seed", "noise_seed"))))
    put("steps", steps, list(literal(int, ("steps",))))
    put("guidance", guidance, list(literal((int, float), ("cfg",))))

    def is_latent(n: dict[str, Any]) -> bool:
        return bool(_LATENT_CLASS.search(n["class_type"]))

    put("width", width, list(literal(int, ("width",), is_latent)))
    put("height", height, list(literal(int, ("height",), is_latent)))
    if frames is not None:
        hits = list(literal(int, _FRAME_INPUTS, is_latent))
        if not hits:
            # AnimateDiff-style graphs: the frame count is the empty latent's batch size.
            hits = list(literal(int, ("batch_size",),
                                lambda n: "EmptyLatentImage" in n["class_type"]))
        put("frames", frames, hits)
    put("fps", fps, list(literal((int, float), _FPS_INPUTS)))
    if image_name is not None:
        loaders = [nid for nid in sorted(g, key=_node_order)
                   if g[nid]["class_type"].startswith("LoadImage")
                   and isinstance(g[nid]["inputs"].get("image"), str)]
        if not loaders:
            raise UsageError("--image was given but the workflow has no LoadImage node to take "
                             "it", hint="use an image-to-video workflow (one with a LoadImage "
                                        "node) or drop --image")
        titled = [nid for nid in loaders
                  if re.search(r"start|first|input|image", _title(g[nid]), re.IGNORECASE)]
        _set(g, done, "image", (titled or loaders)[0], "image", image_name)
    return g, done, skipped


def _node_order(nid: str) -> tuple[int, str]:
    return (int(nid), "") if nid.isdigit() else (1 << 30, nid)


# ---------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------

class ComfyUIBackend:
    """One ComfyUI server at ``url``; ``run()`` submits a graph and returns the clip."""

    def __init__(self, url: str, *, timeout: float = 3600.0) -> None:
        try:
            parsed = httpx.URL(url.strip())
        except (httpx.InvalidURL, TypeError) as exc:
            raise UsageError(f"invalid ComfyUI URL {url!r}: {exc}",
                             hint="pass --comfy-url http://127.0.0.1:8188") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            guess = f"http://{url.strip()}" if "://" not in url else "http://127.0.0.1:8188"
            raise UsageError(f"invalid ComfyUI URL {url!r}: expected http://HOST:PORT",
                             hint=f"pass --comfy-url {guess}")
        if timeout <= 0:
            raise UsageError(f"timeout must be positive, got {timeout}")
        self.url = str(parsed).rstrip("/")
        self.timeout = timeout
        netloc = parsed.netloc.decode("ascii")
        self.origin = f"{parsed.scheme}://{netloc}"
        ws_scheme = "wss" if parsed.scheme == "https" else "ws"
        self.ws_url = f"{ws_scheme}://{netloc}{parsed.path.rstrip('/')}/ws"
        self._http = httpx.Client(base_url=self.url + "/", headers={"Origin": self.origin},
                                  timeout=httpx.Timeout(30.0, connect=5.0))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ComfyUIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP helpers ----------------------------------------------------------------------

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kw)
        except httpx.ConnectError as exc:
            raise ComfyUIError(f"ComfyUI is not reachable at {self.url} — {START_HINT}",
                               hint=f"check the server is running: curl {self.url}/system_stats"
                               ) from exc
        except httpx.TimeoutException as exc:
            raise ComfyUIError(f"ComfyUI at {self.url} did not answer {method} /{path} in time",
                               hint="the server may be busy or stuck; check its console"
                               ) from exc
        except httpx.HTTPError as exc:
            raise ComfyUIError(f"request to ComfyUI at {self.url} failed: {exc}") from exc

    def _json(self, resp: httpx.Response, what: str) -> Any:
        if resp.status_code == 403:
            raise ComfyUIError(f"ComfyUI at {self.url} refused {what} (403)",
                               hint="the server checks Origin/Host; connect to the address it "
                                    "listens on, e.g. --comfy-url http://127.0.0.1:8188")
        if resp.status_code >= 400:
            raise ComfyUIError(f"ComfyUI at {self.url}: {what} failed with HTTP "
                               f"{resp.status_code}: {resp.text[:300]}")
        try:
            return resp.json()
        except ValueError as exc:
            raise ComfyUIError(f"ComfyUI at {self.url}: {what} did not answer JSON — is this a "
                               "ComfyUI server?", hint="pass the right --comfy-url") from exc

    def check(self) -> dict[str, Any]:
        """GET /system_stats: proves the server is up and is ComfyUI."""
        resp = self._request("GET", "system_stats")
        if resp.status_code == 404:
            raise ComfyUIError(f"{self.url} answers HTTP but is not a ComfyUI server "
                               "(no /system_stats)", hint="pass the right --comfy-url")
        data = self._json(resp, "GET /system_stats")
        return data if isinstance(data, dict) else {}

    def upload_image(self, image: Path) -> str:
        """POST /upload/image; returns the name a LoadImage node takes."""
        if not image.is_file():
            raise UsageError(f"image not found: {image}", hint="pass an existing file to --image")
        mime = mimetypes.guess_type(image.name)[0] or "application/octet-stream"
        with image.open("rb") as fh:
            resp = self._request("POST", "upload/image",
                                 files={"image": (image.name, fh, mime)},
                                 data={"type": "input", "overwrite": "true"})
        data = self._json(resp, f"uploading {image.name}")
        name = str(data.get("name", "")) if isinstance(data, dict) else ""
        if not name:
            raise ComfyUIError(f"ComfyUI did not return a name for the uploaded {image.name}")
        sub = str(data.get("subfolder") or "")
        return f"{sub}/{name}" if sub else name

    def submit(self, graph: dict[str, Any], client_id: str) -> tuple[str, int | None]:
        resp = self._request("POST", "prompt", json={"prompt": graph, "client_id": client_id})
        if resp.status_code == 400:
            raise ComfyUIError(_describe_rejection(resp, graph),
                               hint="fix the workflow in ComfyUI (missing models or custom "
                                    "nodes are the usual cause), export the API format again")
        data = self._json(resp, "POST /prompt")
        if not isinstance(data, dict) or not data.get("prompt_id"):
            raise ComfyUIError(f"ComfyUI accepted the prompt but returned no prompt_id: {data}")
        if data.get("node_errors"):
            raise ComfyUIError(_describe_rejection(resp, graph))
        number = data.get("number")
        return str(data["prompt_id"]), number if isinstance(number, int) else None

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        data = self._json(self._request("GET", f"history/{prompt_id}"), "GET /history")
        entry = data.get(prompt_id) if isinstance(data, dict) else None
        return entry if isinstance(entry, dict) else None

    def cancel(self, prompt_id: str) -> None:
        """Drop the prompt from the queue, or stop it if it is running; best effort."""
        for path, body in (("queue", {"delete": [prompt_id]}),
                           ("interrupt", {"prompt_id": prompt_id})):
            try:
                self._http.post(path, json=body, timeout=5.0)
            except httpx.HTTPError:
                pass   # the server went away: nothing left to cancel

    # -- the job ---------------------------------------------------------------------------

    def run(self, workflow: Path | dict[str, Any], *, prompt: str, negative: str | None,
            seed: int, width: int | None, height: int | None, frames: int | None,
            fps: float | None, steps: int | None, guidance: float | None,
            image: Path | None, out: Path, on_progress: Progress | None = None) -> ComfyResult:
        emit: Progress = on_progress or (lambda _e: None)
        t0 = time.monotonic()
        timings: dict[str, float] = {}
        if not prompt or not prompt.strip():
            raise UsageError("the prompt is empty", hint='pass a prompt: localvideo generate '
                                                         '"a red fox running through snow"')
        for name, val in (("width", width), ("height", height), ("frames", frames),
                          ("steps", steps)):
            if val is not None and val < 1:
                raise UsageError(f"--{name} must be a positive number, got {val}")
        if fps is not None and fps <= 0:
            raise UsageError(f"--fps must be positive, got {fps}")
        out = Path(out)
        if out.suffix.lower() != ".mp4":
            raise UsageError(f"the output must be an .mp4 file, got {out}",
                             hint="pass --out clip.mp4")
        graph = load_workflow(workflow)
        if image is not None and not Path(image).is_file():
            raise UsageError(f"image not found: {image}", hint="pass an existing file to --image")
        # A dry run of the substitution catches a graph with no prompt or LoadImage node
        # before anything is uploaded or queued.
        substitute(graph, prompt=prompt, image_name=None if image is None else "<upload>")

        self.check()
        timings["connect"] = time.monotonic() - t0
        image_name = None
        if image is not None:
            t = time.monotonic()
            image_name = self.upload_image(Path(image))
            timings["upload"] = time.monotonic() - t
            emit({"stage": "upload", "name": image_name})
        g, done, skipped = substitute(graph, prompt=prompt, negative=negative, seed=seed,
                                      width=width, height=height, frames=frames, fps=fps,
                                      steps=steps, guidance=guidance, image_name=image_name)
        emit({"stage": "substituted", "substituted": done, "skipped": skipped})

        client_id = uuid.uuid4().hex
        with contextlib.ExitStack() as stack:
            ws, ws_error = self._open_ws(client_id, stack)
            t_submit = time.monotonic()
            prompt_id, number = self.submit(g, client_id)
            deadline = t_submit + self.timeout
            transport = "websocket"
            marks: dict[str, float] = {}
            try:
                emit({"stage": "queued", "prompt_id": prompt_id, "number": number})
                finished = False
                if ws is not None:
                    finished = self._follow_ws(ws, g, prompt_id, deadline, emit, marks)
                if not finished:
                    transport = "polling"
                    emit({"stage": "fallback", "reason": ws_error or "websocket closed"})
                entry = self._poll(prompt_id, g, deadline, emit, marks, poll_only=not finished)
            except KeyboardInterrupt:
                # Ctrl-C here must not leave the GPU busy with a job nobody will collect.
                self.cancel(prompt_id)
                raise
        t_done = marks.get("done", time.monotonic())
        t_start = marks.get("start", t_submit)
        timings["queue_wait"] = max(0.0, t_start - t_submit)
        timings["execution"] = max(0.0, t_done - t_start)

        t = time.monotonic()
        files = _collect_outputs(entry.get("outputs") or {})
        names = [f"{f['subfolder']}/{f['filename']}" if f.get("subfolder") else f["filename"]
                 for f in files]
        chosen = _choose(files)
        if not chosen:
            raise ComfyUIError(f"ComfyUI finished prompt {prompt_id} but it produced no image "
                               "or video output", hint="add a save node (SaveAnimatedWEBP, "
                                                       "SaveVideo, VHS_VideoCombine) to the workflow")
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".comfy-", dir=out.parent) as tmp:
            # A PNG-frame output is one request per frame: a few in flight hide the
            # per-request round trip (pool.map keeps the frame order).
            with ThreadPoolExecutor(max_workers=4) as pool:
                local = list(pool.map(lambda i: self._download(chosen[i], Path(tmp), i, emit),
                                      range(len(chosen))))
            timings["download"] = time.monotonic() - t
            t = time.monotonic()
            emit({"stage": "convert", "source": local[0].name})
            staged = Path(tmp) / "out.mp4"
            to_h264_mp4(local, staged, fps=fps or _graph_fps(g))
            os.replace(staged, out)   # never leave a half-written clip at `out`
        timings["convert"] = time.monotonic() - t
        timings["total"] = time.monotonic() - t0
        emit({"stage": "done", "prompt_id": prompt_id, "path": str(out)})
        return ComfyResult(path=out, prompt_id=prompt_id, outputs=names, timings=timings,
                           substituted=done, skipped=skipped, transport=transport)

    def _open_ws(self, client_id: str, stack: contextlib.ExitStack
                 ) -> tuple[ClientConnection | None, str | None]:
        try:
            # Entered through the stack so the socket closes however run() ends.
            ws = stack.enter_context(ws_connect(
                f"{self.ws_url}?clientId={client_id}", origin=Origin(self.origin),
                open_timeout=10, max_size=None))
            return ws, None
        except (OSError, InvalidHandshake, WebSocketException, TimeoutError) as exc:
            # The HTTP side answered (check() passed), so a proxy or an old server is refusing
            # the upgrade: polling /history still works, only slower to notice progress.
            return None, f"websocket unavailable ({exc})"

    def _follow_ws(self, ws: ClientConnection, graph: dict[str, Any], prompt_id: str,
                   deadline: float, emit: Progress, marks: dict[str, float]) -> bool:
        """Read messages until this prompt is done; False if the socket dropped first."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _timeout_error(self, prompt_id)
            try:
                raw = ws.recv(timeout=min(left, 5.0))
            except TimeoutError:
                continue
            except WebSocketException:
                return False
            if isinstance(raw, bytes):   # preview images: not needed for the result
                continue
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            kind, data = msg.get("type"), msg.get("data") or {}
            if kind == "status":
                info = (data.get("status") or {}).get("exec_info") or {}
                if "queue_remaining" in info:
                    emit({"stage": "status", "queue_remaining": info["queue_remaining"]})
                continue
            if data.get("prompt_id") not in (None, prompt_id):
                continue   # another client's job on a shared server
            if kind == "execution_start":
                marks["start"] = time.monotonic()
                emit({"stage": "start", "prompt_id": prompt_id})
            elif kind == "execution_cached":
                emit({"stage": "cached", "nodes": data.get("nodes", [])})
            elif kind == "executing":
                node = data.get("node")
                if node is None:
                    marks["done"] = time.monotonic()
                    return True
                emit({"stage": "node", "node": str(node), "class_type": _cls(graph, node)})
            elif kind == "progress":
                node = data.get("node")
                emit({"stage": "progress", "node": None if node is None else str(node),
                      "class_type": _cls(graph, node), "step": data.get("value"),
                      "total": data.get("max")})
            elif kind == "executed":
                node = data.get("node")
                emit({"stage": "executed", "node": str(node), "class_type": _cls(graph, node)})
            elif kind == "execution_success":
                marks["done"] = time.monotonic()
                return True
            elif kind == "execution_error":
                raise _execution_error(data, graph, prompt_id)
            elif kind == "execution_interrupted":
                raise _interrupted_error(data, prompt_id)

    def _poll(self, prompt_id: str, graph: dict[str, Any], deadline: float, emit: Progress,
              marks: dict[str, float], *, poll_only: bool) -> dict[str, Any]:
        """GET /history until the entry is complete (ComfyUI adds it only when done)."""
        delay = 0.2
        while True:
            entry = self.history(prompt_id)
            if entry is not None:
                status = entry.get("status") or {}
                messages = status.get("messages") or []
                for m in messages:
                    if isinstance(m, list) and len(m) == 2 and m[0] == "execution_error":
                        raise _execution_error(m[1], graph, prompt_id)
                    if isinstance(m, list) and len(m) == 2 and m[0] == "execution_interrupted":
                        raise _interrupted_error(m[1], prompt_id)
                if status.get("status_str") == "error":
                    raise ComfyUIError(f"ComfyUI job {prompt_id} failed: {messages}")
                if status.get("completed", True) or entry.get("outputs"):
                    if poll_only:
                        _marks_from_messages(messages, marks)
                        emit({"stage": "progress", "node": None, "class_type": None,
                              "step": 1, "total": 1})
                    return entry
            if not poll_only:
                # The websocket said done; history is written in the same step, but give a
                # slow disk a moment before calling it missing.
                if time.monotonic() > marks.get("done", 0) + 10:
                    raise ComfyUIError(f"ComfyUI reported prompt {prompt_id} done but "
                                       "/history has no entry for it")
            if time.monotonic() > deadline:
                raise _timeout_error(self, prompt_id)
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def _download(self, f: dict[str, Any], tmp: Path, index: int, emit: Progress) -> Path:
        name = Path(str(f["filename"])).name   # never let a server name escape tmp
        dest = tmp / f"{index:05d}-{name}"
        params = {"filename": f["filename"], "subfolder": f.get("subfolder", ""),
                  "type": f.get("type", "output")}
        emit({"stage": "download", "filename": f["filename"]})
        try:
            with self._http.stream("GET", "view", params=params) as resp:
                if resp.status_code != 200:
                    raise ComfyUIError(f"ComfyUI could not serve output {f['filename']}: HTTP "
                                       f"{resp.status_code}")
                with dest.open("wb") as fh:
                    for chunk in resp.iter_bytes(1 << 20):
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            raise ComfyUIError(f"downloading {f['filename']} from {self.url} failed: {exc}"
                               ) from exc
        return dest


def _cls(graph: dict[str, Any], node: Any) -> str | None:
    n = graph.get(str(node)) if node is not None else None
    return n["class_type"] if n else None


def _timeout_error(backend: ComfyUIBackend, prompt_id: str) -> ComfyUIError:
    return ComfyUIError(f"ComfyUI job {prompt_id} did not finish within {backend.timeout:.0f} s",
                        hint=f"it may still be running: see {backend.url}/history/{prompt_id}")


def _interrupted_error(data: dict[str, Any], prompt_id: str) -> ComfyUIError:
    return ComfyUIError(f"ComfyUI job {prompt_id} was interrupted at node "
                        f"{data.get('node_id')} ({data.get('node_type')})",
                        hint="the job was cancelled in ComfyUI (Cancel button or /interrupt); "
                             "run the command again")


def _execution_error(data: dict[str, Any], graph: dict[str, Any], prompt_id: str
                     ) -> ComfyUIError:
    node = data.get("node_id")
    cls = data.get("node_type") or _cls(graph, node) or "?"
    exc_type = data.get("exception_type") or "error"
    message = str(data.get("exception_message") or "").strip() or "(no message)"
    hint = None
    if "OutOfMemory" in exc_type or "out of memory" in message.lower():
        hint = "lower --width/--height/--frames, or use a smaller model in the workflow"
    return ComfyUIError(f"ComfyUI job {prompt_id} failed at node {node} ({cls}): "
                        f"{exc_type}: {message}", hint=hint)


def _describe_rejection(resp: httpx.Response, graph: dict[str, Any]) -> str:
    try:
        data = resp.json()
    except ValueError:
        return f"ComfyUI rejected the workflow: {resp.text[:300]}"
    lines = []
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        head = str(err.get("message") or err.get("type") or "rejected")
        if err.get("details"):
            head += f": {err['details']}"
    else:
        head = str(err or "rejected")
    for nid, info in (data.get("node_errors") or {}).items():
        cls = info.get("class_type") or _cls(graph, nid) or "?"
        for e in info.get("errors") or [{}]:
            detail = e.get("details") or ""
            lines.append(f"  node {nid} ({cls}): {e.get('message', 'error')}"
                         + (f" — {detail}" if detail else ""))
    return "ComfyUI rejected the workflow: " + head + ("\n" + "\n".join(lines) if lines else "")


def _marks_from_messages(messages: list[Any], marks: dict[str, float]) -> None:
    """Polling sees no live events: rebuild start/end from the history's timestamps (ms)."""
    stamps = {m[0]: m[1].get("timestamp") for m in messages
              if isinstance(m, list) and len(m) == 2 and isinstance(m[1], dict)}
    start, end = stamps.get("execution_start"), stamps.get("execution_success")
    now_wall, now_mono = time.time(), time.monotonic()
    if isinstance(start, int | float):
        marks["start"] = now_mono - (now_wall - start / 1000)
    if isinstance(end, int | float):
        marks["done"] = now_mono - (now_wall - end / 1000)


def _collect_outputs(outputs: dict[str, Any]) -> list[dict[str, Any]]:
    files = []
    for nid in sorted(outputs, key=_node_order):
        ui = outputs[nid]
        if not isinstance(ui, dict):
            continue
        for key in ("videos", "video", "gifs", "images", "animated"):
            for item in ui.get(key) or []:
                if isinstance(item, dict) and item.get("filename"):
                    files.append({**item, "node": nid})
    return files


def _choose(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The files that make the clip: a video, else an animation, else one node's frames."""
    saved = [f for f in files if f.get("type", "output") == "output"] or files

    def ext(f: dict[str, Any]) -> str:
        return Path(str(f["filename"])).suffix.lower()

    for group in (_VIDEO_EXT, _ANIM_EXT):
        hit = [f for f in saved if ext(f) in group]
        if hit:
            return hit[:1]
    frames = [f for f in saved if ext(f) in _IMAGE_EXT]
    if frames:
        first_node = frames[0]["node"]
        return [f for f in frames if f["node"] == first_node]
    return []


def _graph_fps(graph: dict[str, Any]) -> float | None:
    for node in graph.values():
        for key in _FPS_INPUTS:
            v = node["inputs"].get(key)
            if isinstance(v, int | float) and not isinstance(v, bool) and v > 0:
                return float(v)
    return None


# ---------------------------------------------------------------------------------------
# Output conversion
# ---------------------------------------------------------------------------------------

def to_h264_mp4(sources: list[Path], out: Path, *, fps: float | None = None) -> None:
    """Make ``out`` an H.264 MP4 from a video file, an animated WebP/GIF or PNG frames, with
    the one deterministic writer (media.H264Writer: odd sizes padded, not cropped).

    An MP4/MOV that already holds H.264 is copied untouched (no generation loss).
    """
    src = sources[0]
    ext = src.suffix.lower()
    try:
        if len(sources) == 1 and ext in _VIDEO_EXT:
            info = media.probe(src)
            is_mp4 = "mp4" in info.container or "mov" in info.container
            if info.codec == "h264" and is_mp4:
                shutil.copyfile(src, out)
                return
            rate = fps or info.fps or 24.0
            _encode((d.frame for d in media.iter_frames(src, strict=True)), out, rate)
            return
        if len(sources) == 1 and ext in _ANIM_EXT:
            with Image.open(src) as im:
                durations = []
                def frames() -> Iterator[Image.Image]:
                    for fr in ImageSequence.Iterator(im):
                        durations.append(fr.info.get("duration") or 0)
                        yield fr.convert("RGB")
                # Frame durations are only known while reading; read them first when no
                # fps was given, so the clip keeps the animation's own speed.
                if fps is None:
                    imgs = list(frames())
                    ms = [d for d in durations if d]
                    rate = 1000.0 / (sum(ms) / len(ms)) if ms else 24.0
                    _encode(iter(imgs), out, rate)
                else:
                    _encode(frames(), out, fps)
            return
        def stills() -> Iterator[Image.Image]:
            for p in sources:
                with Image.open(p) as im:
                    yield im.convert("RGB")
        _encode(stills(), out, fps or 24.0)
    except (LocalVideoError, OSError) as exc:
        if isinstance(exc, ComfyUIError):
            raise
        raise ComfyUIError(f"could not convert ComfyUI output {src.name} to MP4: {exc}") from exc


def _encode(images: Iterator[Image.Image | media.VideoFrame], out: Path, fps: float) -> None:
    with media.H264Writer(out, fps) as writer:
        for img in images:
            writer.write(img)
        if not writer.frames:
            raise ComfyUIError("ComfyUI output has no frames")
