"""A real ComfyUI-protocol server on 127.0.0.1 for the backend's tests.

It speaks the endpoints ComfyUI's own front end uses — ``POST /prompt``, ``GET /ws``,
``GET /history/{id}``, ``GET /view``, ``POST /upload/image``, ``GET /system_stats`` — with
ComfyUI's message shapes and its loopback Origin/Host check, over a real uvicorn socket.

Instead of diffusion it evaluates the graph with tiny node implementations: text encoders
pass their text on, the sampler carries seed/steps/cfg, the decoder renders frames whose
colours come from the seed and the prompt text (see :func:`expected_colours`) and whose
left half shows the input image, and the save nodes write an animated WebP, PNG frames or
an MP4 (H.264 or HEVC) into the output folder. So a test can check, from the pixels of the
clip it gets back, that the substitutions reached execution.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import uvicorn
from fastapi import FastAPI, File, Form, Request, UploadFile, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from PIL import Image, ImageDraw


def expected_colours(prompt: str, seed: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(background from the seed, bar colour from the prompt text) of every rendered frame."""
    s = seed * 2654435761 % (1 << 32)
    bg = (40 + s % 180, 40 + (s >> 8) % 180, 40 + (s >> 16) % 180)
    h = zlib.crc32(prompt.encode())
    bar = (h % 256, (h >> 8) % 256, (h >> 16) % 256)
    return bg, bar


# ---- node implementations: inputs → outputs tuple (and an optional UI dict) -------------

@dataclass
class Job:
    prompt_id: str
    number: int
    graph: dict[str, Any]
    client_id: str | None
    messages: list[list[Any]] = field(default_factory=list)


class NodeFailure(Exception):
    def __init__(self, exc_type: str, message: str) -> None:
        super().__init__(message)
        self.exc_type = exc_type


class Interrupted(Exception):
    pass


REQUIRED: dict[str, tuple[str, ...]] = {
    "CheckpointLoaderSimple": ("ckpt_name",),
    "UNETLoader": ("unet_name",),
    "CLIPLoader": ("clip_name",),
    "VAELoader": ("vae_name",),
    "CLIPTextEncode": ("text", "clip"),
    "EmptyHunyuanLatentVideo": ("width", "height", "length", "batch_size"),
    "EmptyLTXVLatentVideo": ("width", "height", "length", "batch_size"),
    "WanImageToVideo": ("positive", "negative", "vae", "width", "height", "length",
                        "batch_size"),
    "LoadImage": ("image",),
    "KSampler": ("model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive",
                 "negative", "latent_image", "denoise"),
    "VAEDecode": ("samples", "vae"),
    "SaveAnimatedWEBP": ("images", "filename_prefix", "fps"),
    "SaveImage": ("images", "filename_prefix"),
    "VHS_VideoCombine": ("images", "frame_rate", "filename_prefix", "format"),
}
OUTPUT_NODES = {"SaveAnimatedWEBP", "SaveImage", "VHS_VideoCombine"}
INT_MIN = {"width": 16, "height": 16, "length": 1, "batch_size": 1, "steps": 1, "seed": 0}


class ComfyServer:
    """Start with ``with ComfyServer(tmp) as s: s.url``. Knobs (set before submitting):

    - ``fail_node`` = class_type: that node raises during execution (execution_error);
    - ``ws_enabled`` = False: the websocket upgrade is refused (clients must poll);
    - ``drop_ws_after`` = n: the server closes each websocket after n messages of a job;
    - ``step_delay`` seconds per sampler step (a slow job).
    Everything received is recorded in ``prompts``, ``uploads``, ``requests`` and
    ``refused`` (requests turned away by the Origin check).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.input_dir = root / "input"
        self.output_dir = root / "output"
        self.input_dir.mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.fail_node: str | None = None
        self.ws_enabled = True
        self.drop_ws_after: int | None = None
        self.step_delay = 0.0
        self.prompts: list[dict[str, Any]] = []
        self.uploads: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.refused: list[tuple[str, str | None]] = []
        self.interrupted: list[str | None] = []
        self.deleted: list[str] = []
        self.running: str | None = None
        self.history: dict[str, dict[str, Any]] = {}
        self._sockets: dict[str, WebSocket] = {}
        self._sent: dict[str, int] = {}
        self._number = 0
        self._queue: asyncio.Queue[Job] | None = None
        self.app = self._build_app()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> ComfyServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", ws="websockets-sansio", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        daemon=True)
        self._thread.start()
        end = time.time() + 10
        while not self._server.started:
            if time.time() > end:
                raise RuntimeError("the test ComfyUI server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(10)

    # -- origin check, as ComfyUI does it on loopback ---------------------------------------

    @staticmethod
    def _origin_ok(host: str | None, origin: str | None) -> bool:
        if not origin or not host:
            return True
        return urlsplit(origin).netloc == host

    # -- the app ----------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        srv = self

        @asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            srv._queue = asyncio.Queue()
            worker = asyncio.get_running_loop().create_task(srv._worker())
            yield
            worker.cancel()

        app = FastAPI(lifespan=lifespan)

        @app.middleware("http")
        async def origin_check(request: Request, call_next: Callable[..., Any]) -> Any:
            srv.requests.append((request.method, request.url.path))
            host, origin = request.headers.get("host"), request.headers.get("origin")
            if not srv._origin_ok(host, origin):
                srv.refused.append((request.url.path, origin))
                return JSONResponse({"error": "origin mismatch"}, status_code=403)
            return await call_next(request)

        @app.get("/system_stats")
        async def system_stats() -> dict[str, Any]:
            return {"system": {"os": "posix", "comfyui_version": "test-server"}, "devices": []}

        @app.post("/upload/image")
        async def upload(image: UploadFile = File(...), subfolder: str = Form(""),
                         overwrite: str = Form("false"), type: str = Form("input")) -> Any:
            name = Path(image.filename or "upload.png").name
            dest_dir = srv.input_dir / subfolder if subfolder else srv.input_dir
            dest_dir.mkdir(parents=True, exist_ok=True)
            dest = dest_dir / name
            if dest.exists() and overwrite.lower() != "true":
                dest = dest_dir / f"{dest.stem} (1){dest.suffix}"
            dest.write_bytes(await image.read())
            srv.uploads.append(dest.name)
            return {"name": dest.name, "subfolder": subfolder, "type": type}

        @app.post("/prompt")
        async def prompt(request: Request) -> Any:
            body = await request.json()
            graph = body.get("prompt")
            srv.prompts.append(body)
            error, node_errors = srv._validate(graph)
            if error or node_errors:
                return JSONResponse({"error": error or {
                    "type": "prompt_outputs_failed_validation",
                    "message": "Prompt outputs failed validation", "details": "",
                    "extra_info": {}}, "node_errors": node_errors}, status_code=400)
            srv._number += 1
            job = Job(str(uuid.uuid4()), srv._number, graph, body.get("client_id"))
            assert srv._queue is not None
            await srv._queue.put(job)
            return {"prompt_id": job.prompt_id, "number": job.number, "node_errors": {}}

        @app.post("/interrupt")
        async def interrupt(request: Request) -> Any:
            body = await request.json() if await request.body() else {}
            # Newer ComfyUI interrupts only the named prompt, and only if it is running.
            if body.get("prompt_id") in (None, srv.running):
                srv.interrupted.append(srv.running)
            return JSONResponse({})

        @app.post("/queue")
        async def queue(request: Request) -> Any:
            body = await request.json()
            srv.deleted.extend(body.get("delete") or [])
            return JSONResponse({})

        @app.get("/history/{prompt_id}")
        async def history(prompt_id: str) -> Any:
            entry = srv.history.get(prompt_id)
            return {prompt_id: entry} if entry else {}

        @app.get("/view")
        async def view(filename: str, subfolder: str = "", type: str = "output") -> Any:
            base = {"output": srv.output_dir, "input": srv.input_dir}.get(type)
            path = (base / subfolder / filename).resolve() if base else None
            if base is None or path is None or not path.is_relative_to(base.resolve()) \
                    or not path.is_file():
                return JSONResponse({"error": "not found"}, status_code=404)
            return FileResponse(path)

        @app.websocket("/ws")
        async def ws(websocket: WebSocket) -> None:
            host, origin = websocket.headers.get("host"), websocket.headers.get("origin")
            if not srv.ws_enabled or not srv._origin_ok(host, origin):
                if srv.ws_enabled:
                    srv.refused.append(("/ws", origin))
                await websocket.close(code=1008)   # before accept: the upgrade gets a 403
                return
            client_id = websocket.query_params.get("clientId") or uuid.uuid4().hex
            await websocket.accept()
            srv._sockets[client_id] = websocket
            srv._sent[client_id] = 0
            await websocket.send_json({"type": "status", "data": {
                "status": {"exec_info": {"queue_remaining": srv._queue.qsize()
                                         if srv._queue else 0}}, "sid": client_id}})
            try:
                while True:
                    await websocket.receive_text()
            except Exception:
                pass
            finally:
                srv._sockets.pop(client_id, None)

        return app

    # -- validation (shapes ComfyUI returns) -----------------------------------------------

    def _validate(self, graph: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        if not isinstance(graph, dict) or not graph:
            return {"type": "invalid_prompt", "message": "Cannot execute because the prompt "
                    "is not a node graph.", "details": "", "extra_info": {}}, {}
        for nid, node in graph.items():
            cls = node.get("class_type") if isinstance(node, dict) else None
            if cls not in REQUIRED:
                return {"type": "invalid_prompt", "message": f"Cannot execute because node "
                        f"{cls} does not exist.", "details": f"Node ID '#{nid}'",
                        "extra_info": {}}, {}
        if not any(n["class_type"] in OUTPUT_NODES for n in graph.values()):
            return {"type": "prompt_no_outputs", "message": "Prompt has no outputs",
                    "details": "", "extra_info": {}}, {}
        node_errors: dict[str, Any] = {}
        for nid, node in graph.items():
            errors = []
            inputs = node.get("inputs") or {}
            for name in REQUIRED[node["class_type"]]:
                v = inputs.get(name)
                if v is None:
                    errors.append({"type": "required_input_missing",
                                   "message": "Required input is missing",
                                   "details": name, "extra_info": {"input_name": name}})
                elif isinstance(v, list) and (len(v) != 2 or str(v[0]) not in graph):
                    errors.append({"type": "bad_linked_input",
                                   "message": "Bad linked input, must be a length-2 list of "
                                              "[node_id, slot_index]",
                                   "details": name, "extra_info": {"input_name": name}})
                elif name in INT_MIN and isinstance(v, int) and v < INT_MIN[name]:
                    errors.append({"type": "value_smaller_than_min",
                                   "message": f"Value {v} smaller than min of {INT_MIN[name]}",
                                   "details": f"{name}", "extra_info": {"input_name": name}})
            if node["class_type"] == "LoadImage" and isinstance(inputs.get("image"), str) \
                    and not (self.input_dir / inputs["image"]).is_file():
                errors.append({"type": "custom_validation_failed",
                               "message": "Custom validation failed for node",
                               "details": f"image - Invalid image file: {inputs['image']}",
                               "extra_info": {}})
            if errors:
                node_errors[nid] = {"errors": errors, "dependent_outputs": [],
                                    "class_type": node["class_type"]}
        return None, node_errors

    # -- execution ----------------------------------------------------------------------------

    async def _send(self, job: Job, kind: str, data: dict[str, Any]) -> None:
        job.messages.append([kind, data]) if kind.startswith("execution") else None
        ws = self._sockets.get(job.client_id or "")
        if ws is None:
            return
        self._sent[job.client_id or ""] += 1
        try:
            await ws.send_json({"type": kind, "data": data})
        except Exception:
            self._sockets.pop(job.client_id or "", None)
            return
        if self.drop_ws_after is not None and self._sent[job.client_id or ""] >= \
                self.drop_ws_after:
            self._sockets.pop(job.client_id or "", None)
            await ws.close()

    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            if job.prompt_id in self.deleted:
                continue
            self.running = job.prompt_id
            try:
                await self._execute(job)
            except Exception as exc:  # a bug here must not kill the worker silently
                print(f"test ComfyUI server: {exc!r}")
            finally:
                self.running = None

    async def _execute(self, job: Job) -> None:
        pid = job.prompt_id
        now_ms = lambda: int(time.time() * 1000)  # noqa: E731
        await self._send(job, "status", {"status": {"exec_info": {
            "queue_remaining": self._queue.qsize() + 1 if self._queue else 1}}})
        await self._send(job, "execution_start", {"prompt_id": pid, "timestamp": now_ms()})
        await self._send(job, "execution_cached", {"nodes": [], "prompt_id": pid,
                                                   "timestamp": now_ms()})
        graph = job.graph
        values: dict[str, tuple[Any, ...]] = {}
        outputs: dict[str, Any] = {}
        status = {"status_str": "success", "completed": True, "messages": job.messages}
        try:
            for nid in _topo_order(graph):
                node = graph[nid]
                await self._send(job, "executing", {"node": nid, "display_node": nid,
                                                    "prompt_id": pid})
                if node["class_type"] == self.fail_node:
                    raise NodeFailure("torch.OutOfMemoryError",
                                      "Allocation on device would exceed allowed memory.")
                args = {k: (values[str(v[0])][v[1]] if isinstance(v, list) else v)
                        for k, v in node["inputs"].items()}
                result, ui = await self._run_node(job, nid, node["class_type"], args)
                values[nid] = result
                if ui is not None:
                    outputs[nid] = ui
                    await self._send(job, "executed", {"node": nid, "display_node": nid,
                                                       "output": ui, "prompt_id": pid})
            await self._send(job, "execution_success", {"prompt_id": pid,
                                                        "timestamp": now_ms()})
        except Interrupted:
            await self._send(job, "execution_interrupted", {
                "prompt_id": pid, "node_id": nid, "node_type": graph[nid]["class_type"],
                "executed": list(outputs), "timestamp": now_ms()})
            status = {"status_str": "error", "completed": False, "messages": job.messages}
        except NodeFailure as exc:
            err = {"prompt_id": pid, "node_id": nid, "node_type": graph[nid]["class_type"],
                   "executed": list(outputs), "exception_message": str(exc),
                   "exception_type": exc.exc_type, "traceback": ["(test server)"],
                   "current_inputs": {}, "current_outputs": {}, "timestamp": now_ms()}
            await self._send(job, "execution_error", err)
            status = {"status_str": "error", "completed": False, "messages": job.messages}
        self.history[pid] = {"prompt": [job.number, pid, graph, {}, list(outputs)],
                             "outputs": outputs, "status": status, "meta": {}}
        await self._send(job, "executing", {"node": None, "prompt_id": pid})
        await self._send(job, "status", {"status": {"exec_info": {"queue_remaining": 0}}})

    async def _run_node(self, job: Job, nid: str, cls: str, a: dict[str, Any]
                        ) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        if cls == "CheckpointLoaderSimple":
            return ("model", "clip", "vae"), None
        if cls in ("UNETLoader", "CLIPLoader", "VAELoader"):
            return (cls,), None
        if cls == "CLIPTextEncode":
            return ({"text": a["text"]},), None
        if cls == "LoadImage":
            with Image.open(self.input_dir / a["image"]) as im:
                return (im.convert("RGB"), None), None
        if cls in ("EmptyHunyuanLatentVideo", "EmptyLTXVLatentVideo"):
            return ({"w": a["width"], "h": a["height"], "n": a["length"], "image": None},), None
        if cls == "WanImageToVideo":
            latent = {"w": a["width"], "h": a["height"], "n": a["length"],
                      "image": a.get("start_image")}
            return (a["positive"], a["negative"], latent), None
        if cls == "KSampler":
            for step in range(1, a["steps"] + 1):
                if self.step_delay:
                    await asyncio.sleep(self.step_delay)
                if job.prompt_id in self.interrupted:
                    raise Interrupted()
                await self._send(job, "progress", {"value": step, "max": a["steps"],
                                                   "prompt_id": job.prompt_id, "node": nid})
            return ({**a["latent_image"], "text": a["positive"]["text"], "seed": a["seed"],
                     "steps": a["steps"], "cfg": a["cfg"]},), None
        if cls == "VAEDecode":
            return (await asyncio.to_thread(_render, a["samples"]),), None
        if cls in OUTPUT_NODES:
            return (), await asyncio.to_thread(self._save, cls, a)
        raise NodeFailure("KeyError", f"no implementation for {cls}")

    def _save(self, cls: str, a: dict[str, Any]) -> dict[str, Any]:
        frames: list[Image.Image] = a["images"]
        prefix = str(a["filename_prefix"])
        stem = f"{prefix}_{uuid.uuid4().hex[:6]}"
        if cls == "SaveAnimatedWEBP":
            name = f"{stem}.webp"
            frames[0].save(self.output_dir / name, save_all=True, append_images=frames[1:],
                           duration=int(1000 / a["fps"]), lossless=True, loop=0)
            return {"images": [{"filename": name, "subfolder": "", "type": "output"}],
                    "animated": [True]}
        if cls == "SaveImage":
            items = []
            for i, fr in enumerate(frames):
                name = f"{stem}_{i:05d}_.png"
                fr.save(self.output_dir / name)
                items.append({"filename": name, "subfolder": "", "type": "output"})
            return {"images": items}
        codec = {"video/h264-mp4": "libx264", "video/h265-mp4": "libx265"}[a["format"]]
        sub = "vhs"
        (self.output_dir / sub).mkdir(exist_ok=True)
        name = f"{stem}.mp4"
        with av.open(str(self.output_dir / sub / name), "w") as c:
            rate = Fraction(a["frame_rate"]).limit_denominator(1001)
            s = c.add_stream(codec, rate=rate)
            assert isinstance(s, av.VideoStream)
            s.width, s.height, s.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
            if codec == "libx265":
                s.options = {"x265-params": "log-level=error"}
            for fr in frames:
                for p in s.encode(av.VideoFrame.from_image(fr)):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        return {"gifs": [{"filename": name, "subfolder": sub, "type": "output",
                          "format": a["format"], "frame_rate": a["frame_rate"]}]}


def _render(latent: dict[str, Any]) -> list[Image.Image]:
    bg, bar = expected_colours(latent["text"], latent["seed"])
    w, h, n = latent["w"], latent["h"], latent["n"]
    frames = []
    for i in range(n):
        im = Image.new("RGB", (w, h), bg)
        # A bar across the bottom quarter in the prompt's colour, moving right frame by frame
        # so the clip is not a still.
        d = ImageDraw.Draw(im)
        x = (i * 4) % max(1, w // 2)
        d.rectangle([w // 2 + x // 2, h * 3 // 4, w - 1, h - 1], fill=bar)
        if latent["image"] is not None:
            im.paste(latent["image"].resize((w // 2, h * 3 // 4)), (0, 0))
        frames.append(im)
    return frames


def _topo_order(graph: dict[str, Any]) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()

    def visit(nid: str) -> None:
        if nid in seen:
            return
        seen.add(nid)
        for v in graph[nid]["inputs"].values():
            if isinstance(v, list):
                visit(str(v[0]))
        order.append(nid)

    for nid in sorted(graph, key=lambda k: json.dumps(k)):
        visit(nid)
    return order
