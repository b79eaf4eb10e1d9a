"""Real HTTP servers on 127.0.0.1 speaking each hosted provider's documented protocol.

One class per provider, each a FastAPI app on a real uvicorn socket, driven in the tests by
the provider's official SDK pointed at it with a base URL:

* :class:`ReplicateServer` — predictions API (https://replicate.com/docs/reference/http):
  ``POST /v1/models/{owner}/{name}/predictions``, ``POST /v1/predictions`` (version),
  ``GET /v1/predictions/{id}``, ``POST /v1/predictions/{id}/cancel``, ``POST /v1/files``;
  every prediction carries all the fields the client's model reads and ``urls.stream`` as a
  string (the client rejects a null);
* :class:`FalServer` — queue API (https://docs.fal.ai/model-apis/model-endpoints/queue):
  submit to the endpoint id (``fal-ai/app/sub/path``), status/result/cancel URLs that name
  only ``owner/alias``, ``PUT .../cancel`` answering 202 / 400 ALREADY_COMPLETED;
* :class:`VertexVeoServer` — Vertex AI long-running prediction: ``:predictLongRunning`` and
  ``:fetchPredictOperation``, the key in ``x-goog-api-key`` (a bad one answered as Google
  does, 400 INVALID_ARGUMENT "API key not valid"), videos inline as base64;
* :class:`RunwayServer` — task API (https://docs.dev.runwayml.com/api/):
  ``POST /v1/text_to_video`` / ``/v1/image_to_video``, ``GET /v1/tasks/{id}``,
  ``DELETE /v1/tasks/{id}``, requiring ``X-Runway-Version``.

All share the job life: the first status read says queued, the second running (half done),
the third finished. Words in the prompt steer the job, as a real model's output would differ:
``REFUSE`` → the provider's content-refusal answer, ``FAIL`` → a plain failure, ``HANG`` →
running until cancelled. The output is an MPEG-4 Part 2 clip (not H.264, so the client's
conversion shows) whose colour comes from the prompt: see :func:`clip_colour`.
Every request is recorded in ``calls``; cancellations in ``cancels``.
"""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

FRAMES, WIDTH, HEIGHT, FPS = 12, 64, 48, 24


def clip_colour(prompt: str) -> tuple[int, int, int]:
    h = zlib.crc32(prompt.encode())
    return (40 + h % 180, 40 + (h >> 8) % 180, 40 + (h >> 16) % 180)


def render_clip(prompt: str) -> bytes:
    """A small MPEG-4 Part 2 MP4: flat colour from the prompt with a moving white bar."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as c:
        s = c.add_stream("mpeg4", rate=Fraction(FPS))
        s.width, s.height, s.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        s.options = {"qscale": "2"}
        colour = np.array(clip_colour(prompt), dtype=np.uint8)
        for i in range(FRAMES):
            img = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
            img[:] = colour
            img[:, (i * 4) % WIDTH:(i * 4) % WIDTH + 4] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return buf.getvalue()


@dataclass
class Job:
    id: str
    model: str
    prompt: str
    body: dict[str, Any]
    polls: int = 0
    cancelled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def hang(self) -> bool:
        return "HANG" in self.prompt

    def phase(self) -> str:
        """queued → running → done|refused|failed on successive reads; HANG stays running."""
        if self.cancelled:
            return "cancelled"
        self.polls += 1
        if self.polls == 1:
            return "queued"
        if self.polls == 2 or self.hang:
            return "running"
        if "REFUSE" in self.prompt:
            return "refused"
        if "FAIL" in self.prompt:
            return "failed"
        return "done"


class LoopbackServer:
    """A FastAPI app on a real 127.0.0.1 socket in a thread: ``with XServer() as s: s.url``."""

    key = "test-key"

    def __init__(self, models: tuple[str, ...] = ()) -> None:
        self.models = set(models)
        self.calls: list[dict[str, Any]] = []
        self.cancels: list[str] = []
        self.jobs: dict[str, Job] = {}
        self.clips: dict[str, bytes] = {}
        self.app = FastAPI()

        @self.app.middleware("http")
        async def record(request: Request, call_next: Any) -> Any:
            body = await request.body()
            self.calls.append({"method": request.method, "path": request.url.path,
                               "query": str(request.url.query),
                               "headers": dict(request.headers), "body": body})
            return await call_next(request)

        @self.app.get("/_out/{name}")
        async def output(name: str) -> Response:
            data = self.clips.get(name)
            if data is None:
                return JSONResponse({"detail": "gone"}, status_code=404)
            return Response(data, media_type="video/mp4")

        self.routes()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def routes(self) -> None:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output_url(self, job: Job) -> str:
        name = f"{job.id}.mp4"
        if name not in self.clips:
            self.clips[name] = render_clip(job.prompt)
        return f"{self.url}/_out/{name}"

    def new_job(self, model: str, prompt: str, body: dict[str, Any]) -> Job:
        job = Job(id=uuid.uuid4().hex[:16], model=model, prompt=prompt, body=body)
        self.jobs[job.id] = job
        return job

    def calls_to(self, method: str, fragment: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["method"] == method and fragment in c["path"]]

    def __enter__(self) -> LoopbackServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        daemon=True)
        self._thread.start()
        end = time.time() + 10
        while not self._server.started:
            if time.time() > end:
                raise RuntimeError(f"{type(self).__name__} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(10)


# ---------------------------------------------------------------------------------------
# Replicate
# ---------------------------------------------------------------------------------------

class ReplicateServer(LoopbackServer):
    """Models in ``models`` as ``owner/name``; ``versions`` maps a version id to its model."""

    def __init__(self, models: tuple[str, ...] = ("acme/tiny-video",),
                 versions: dict[str, str] | None = None) -> None:
        self.versions = versions or {"5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa":
                                     "acme/tiny-video"}
        self.files: dict[str, bytes] = {}
        super().__init__(models)

    def _problem(self, status: int, title: str, detail: str) -> JSONResponse:
        # Replicate answers errors as RFC 7807 problem details.
        return JSONResponse({"type": "about:blank", "title": title, "detail": detail,
                             "status": status}, status_code=status)

    def _auth(self, request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return self._problem(401, "Unauthenticated",
                                 "You did not pass a valid authentication token")
        return None

    def prediction(self, job: Job, phase: str | None = None) -> dict[str, Any]:
        phase = phase or job.extra.get("phase", "queued")
        status = {"queued": "starting", "running": "processing", "done": "succeeded",
                  "refused": "failed", "failed": "failed", "cancelled": "canceled"}[phase]
        logs = ""
        if phase == "running":
            logs = "Generating video\n 50%|█████     | 5/10 [00:01<00:01,  5.00it/s]\n"
        error = None
        if phase == "refused":
            error = ("The input or output was flagged as sensitive. Please try again with "
                     "different inputs. (E005)")
        elif phase == "failed":
            error = "CUDA error: device-side assert triggered"
        base = f"{self.url}/v1/predictions/{job.id}"
        return {
            "id": job.id, "model": job.model, "version": job.extra["version"],
            "status": status, "input": job.body.get("input"),
            "output": self.output_url(job) if phase == "done" else None,
            "logs": logs, "error": error, "data_removed": False,
            "metrics": {"predict_time": 1.5} if phase == "done" else {},
            "created_at": "2026-12-01T12:00:00.000Z",
            "started_at": None if phase == "queued" else "2026-12-01T12:00:01.000Z",
            "completed_at": "2026-12-01T12:00:03.000Z" if status in
            ("succeeded", "failed", "canceled") else None,
            "source": "api",
            "urls": {"get": base, "cancel": f"{base}/cancel",
                     "stream": f"{self.url}/v1/stream/{job.id}",
                     "web": f"{self.url}/p/{job.id}"},
        }

    def routes(self) -> None:
        app = self.app

        async def create(request: Request, model: str, version: str) -> JSONResponse:
            body = await request.json()
            inputs = body.get("input") or {}
            if not isinstance(inputs.get("prompt"), str):
                return self._problem(422, "Input validation failed", "prompt is required")
            if "QUOTA" in inputs["prompt"]:
                return self._problem(429, "Request was throttled",
                                     "Request was throttled. Expected available in 10 seconds.")
            job = self.new_job(model, inputs["prompt"], body)
            job.extra["version"] = version
            return JSONResponse(self.prediction(job, "queued"), status_code=201)

        @app.post("/v1/models/{owner}/{name}/predictions")
        async def create_official(owner: str, name: str, request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            model = f"{owner}/{name}"
            if model not in self.models:
                return self._problem(404, "Not found", "The requested resource could not be found.")
            return await create(request, model, "official")

        @app.post("/v1/predictions")
        async def create_version(request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            body = await request.json()
            model = self.versions.get(str(body.get("version")))
            if model is None:
                return self._problem(422, "Invalid version",
                                     "The specified version does not exist (or perhaps you "
                                     "don't have permission to use it?)")
            return await create(request, model, str(body["version"]))

        @app.get("/v1/predictions/{pid}")
        async def get(pid: str, request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            job = self.jobs.get(pid)
            if job is None:
                return self._problem(404, "Not found", "prediction not found")
            job.extra["phase"] = job.phase()
            return JSONResponse(self.prediction(job))

        @app.post("/v1/predictions/{pid}/cancel")
        async def cancel(pid: str, request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            job = self.jobs.get(pid)
            if job is None:
                return self._problem(404, "Not found", "prediction not found")
            self.cancels.append(pid)
            job.cancelled = True
            job.extra["phase"] = "cancelled"
            return JSONResponse(self.prediction(job))

        @app.post("/v1/files")
        async def upload(request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            form = await request.form()
            item: Any = form["content"]
            data = await item.read()
            fid = uuid.uuid4().hex[:12]
            self.files[fid] = data
            return JSONResponse({
                "id": fid, "name": item.filename, "content_type": item.content_type,
                "size": len(data), "etag": fid, "checksums": {"sha256": "0" * 64},
                "metadata": {}, "created_at": "2026-12-01T12:00:00.000Z",
                "expires_at": "2026-12-02T12:00:00.000Z",
                "urls": {"get": f"{self.url}/v1/files/{fid}"}}, status_code=201)


# ---------------------------------------------------------------------------------------
# fal
# ---------------------------------------------------------------------------------------

class FalServer(LoopbackServer):
    def __init__(self, models: tuple[str, ...] = ("fal-ai/tiny-video",
                                                  "fal-ai/tiny-video/image-to-video")) -> None:
        super().__init__(models)

    def _auth(self, request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Key {self.key}":
            return JSONResponse({"detail": "Invalid key authorization header"}, status_code=401)
        return None

    def _urls(self, owner: str, alias: str, rid: str) -> dict[str, str]:
        # Only owner/alias: the endpoint's sub-path is not part of the request URLs.
        base = f"{self.url}/{owner}/{alias}/requests/{rid}"
        return {"response_url": base, "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel"}

    def routes(self) -> None:
        app = self.app

        @app.put("/{owner}/{alias}/requests/{rid}/cancel")
        async def cancel(owner: str, alias: str, rid: str, request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            job = self.jobs.get(rid)
            if job is None:
                return JSONResponse({"detail": "Request not found"}, status_code=404)
            self.cancels.append(rid)
            if job.extra.get("phase") in ("done", "refused", "failed"):
                return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
            job.cancelled = True
            return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

        @app.get("/{owner}/{alias}/requests/{rid}/status")
        async def status(owner: str, alias: str, rid: str, request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            job = self.jobs.get(rid)
            if job is None:
                return JSONResponse({"detail": "Request not found"}, status_code=404)
            phase = job.phase()
            job.extra["phase"] = phase
            urls = self._urls(owner, alias, rid)
            logs = [{"message": "step 5/10", "level": "INFO", "source": "user",
                     "timestamp": "2026-12-01T12:00:01"}]
            if phase == "queued":
                return JSONResponse({"status": "IN_QUEUE", "queue_position": 2,
                                     "response_url": urls["response_url"]}, status_code=202)
            if phase == "running":
                return JSONResponse({"status": "IN_PROGRESS", "logs": logs,
                                     "response_url": urls["response_url"]}, status_code=202)
            body: dict[str, Any] = {"status": "COMPLETED", "logs": logs,
                                    "metrics": {"inference_time": 1.25},
                                    "response_url": urls["response_url"]}
            if phase == "refused":
                body.update(error="The content could not be processed because it contained "
                                  "material flagged by a content checker.",
                            error_type="content_policy_violation")
            elif phase == "failed":
                body.update(error="Internal server error", error_type="internal_error")
            elif phase == "cancelled":
                body.update(error="Request was cancelled", error_type="request_cancelled")
            return JSONResponse(body)

        @app.get("/{owner}/{alias}/requests/{rid}")
        async def result(owner: str, alias: str, rid: str, request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            job = self.jobs.get(rid)
            if job is None or job.extra.get("phase") != "done":
                return JSONResponse({"detail": "Request is still in progress"}, status_code=400)
            url = self.output_url(job)
            return JSONResponse({"video": {"url": url, "content_type": "video/mp4",
                                           "file_name": f"{job.id}.mp4",
                                           "file_size": len(self.clips[f"{job.id}.mp4"])},
                                 "seed": job.body.get("seed", 1234)})

        @app.post("/{endpoint:path}")
        async def submit(endpoint: str, request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            if endpoint not in self.models:
                return JSONResponse({"detail": f"Application '{endpoint}' not found"},
                                    status_code=404)
            body = await request.json()
            if "QUOTA" in str(body.get("prompt")):
                return JSONResponse({"detail": "User is locked. Reason: Exhausted balance."},
                                    status_code=403)
            owner, alias = endpoint.split("/")[:2]
            job = self.new_job(endpoint, str(body.get("prompt")), body)
            return JSONResponse({"request_id": job.id, **self._urls(owner, alias, job.id),
                                 "queue_position": 0})


# ---------------------------------------------------------------------------------------
# Google Veo on Vertex AI
# ---------------------------------------------------------------------------------------

class VertexVeoServer(LoopbackServer):
    project = "test-project"
    location = "us-central1"

    def __init__(self, models: tuple[str, ...] = ("veo-3.0-fast-generate-001",)) -> None:
        super().__init__(models)

    @staticmethod
    def _error(code: int, status: str, message: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"error": {"code": code, "message": message, "status": status,
                                       **extra}}, status_code=code)

    def routes(self) -> None:
        app = self.app

        @app.post("/v1beta1/{resource:path}")
        async def rpc(resource: str, request: Request) -> JSONResponse:
            if request.headers.get("x-goog-api-key") != self.key:
                # What Google answers for a wrong key: 400, not 401.
                return self._error(400, "INVALID_ARGUMENT",
                                   "API key not valid. Please pass a valid API key.",
                                   details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                             "reason": "API_KEY_INVALID",
                                             "domain": "googleapis.com"}])
            path, _, method = resource.rpartition(":")
            model = path.rsplit("/", 1)[-1]
            body = await request.json()
            if method == "predictLongRunning":
                if not path.endswith(f"publishers/google/models/{model}") or \
                        model not in self.models:
                    return self._error(404, "NOT_FOUND",
                                       f"Publisher Model `projects/{self.project}/locations/"
                                       f"{self.location}/publishers/google/models/{model}` "
                                       "not found.")
                instance = (body.get("instances") or [{}])[0]
                if "QUOTA" in str(instance.get("prompt")):
                    return self._error(429, "RESOURCE_EXHAUSTED",
                                       "Quota exceeded for aiplatform.googleapis.com/"
                                       "online_prediction_requests_per_base_model")
                job = self.new_job(model, str(instance.get("prompt")), body)
                name = (f"projects/{self.project}/locations/{self.location}/publishers/google/"
                        f"models/{model}/operations/{job.id}")
                job.extra["name"] = name
                return JSONResponse({"name": name})
            if method == "fetchPredictOperation":
                op = str(body.get("operationName"))
                job = self.jobs.get(op.rsplit("/", 1)[-1])
                if job is None or not op.startswith(path + "/operations/"):
                    return self._error(404, "NOT_FOUND", f"Operation {op} not found.")
                phase = job.phase()
                out: dict[str, Any] = {"name": op}
                if phase in ("queued", "running"):
                    return JSONResponse(out)
                out["done"] = True
                rtype = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
                if phase == "done":
                    clip = render_clip(job.prompt)
                    out["response"] = {"@type": rtype, "videos": [
                        {"bytesBase64Encoded": base64.b64encode(clip).decode(),
                         "mimeType": "video/mp4"}]}
                elif phase == "refused":
                    out["response"] = {"@type": rtype, "raiMediaFilteredCount": 1,
                                       "raiMediaFilteredReasons": [
                                           "Unable to generate videos because the prompt "
                                           "violates the usage guidelines (support code 17301594)."]}
                else:
                    out["error"] = {"code": 13, "message": "Internal error encountered."}
                return JSONResponse(out)
            return self._error(404, "NOT_FOUND", f"unknown method {method}")


# ---------------------------------------------------------------------------------------
# Runway
# ---------------------------------------------------------------------------------------

class RunwayServer(LoopbackServer):
    def __init__(self, models: tuple[str, ...] = ("gen4_turbo", "gen4.5")) -> None:
        super().__init__(models)

    def _auth(self, request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return JSONResponse({"error": "Invalid API secret."}, status_code=401)
        if request.headers.get("x-runway-version") != "2024-11-06":
            return JSONResponse({"error": "The X-Runway-Version header is required."},
                                status_code=400)
        return None

    def task(self, job: Job) -> dict[str, Any]:
        phase = job.extra.get("phase", "queued")
        base = {"id": job.id, "createdAt": "2026-12-01T12:00:00.000Z"}
        est = {"estimatedCost": {"credits": 25}}
        if phase == "queued":
            return {**base, **est, "status": "PENDING"}
        if phase == "running":
            return {**base, **est, "status": "RUNNING", "progress": 0.5}
        if phase == "done":
            return {**base, "status": "SUCCEEDED", "cost": {"credits": 25},
                    "output": [self.output_url(job)]}
        if phase == "cancelled":
            return {**base, "status": "CANCELLED", "cost": {"credits": 0}}
        if phase == "refused":
            return {**base, "status": "FAILED", "cost": {"credits": 0},
                    "failure": "The prompt did not pass our content moderation.",
                    "failureCode": "SAFETY.INPUT.TEXT"}
        return {**base, "status": "FAILED", "cost": {"credits": 0},
                "failure": "An unexpected error occurred.", "failureCode": "INTERNAL"}

    def routes(self) -> None:
        app = self.app

        async def create(request: Request, needs_image: bool) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            body = await request.json()
            model = body.get("model")
            if model not in self.models:
                return JSONResponse({"error": "Validation of body failed", "issues": [
                    {"code": "invalid_enum_value", "path": ["model"],
                     "message": f"Invalid enum value. Expected {' | '.join(sorted(self.models))}, "
                                f"received '{model}'"}]}, status_code=400)
            if needs_image and not str(body.get("promptImage", "")).startswith("data:image/"):
                return JSONResponse({"error": "Validation of body failed", "issues": [
                    {"path": ["promptImage"], "message": "Required"}]}, status_code=400)
            if "QUOTA" in str(body.get("promptText")):
                return JSONResponse({"error": "You have exceeded your rate limit."},
                                    status_code=429)
            job = self.new_job(str(model), str(body.get("promptText")), body)
            return JSONResponse({"id": job.id})

        @app.post("/v1/text_to_video")
        async def t2v(request: Request) -> JSONResponse:
            return await create(request, needs_image=False)

        @app.post("/v1/image_to_video")
        async def i2v(request: Request) -> JSONResponse:
            return await create(request, needs_image=True)

        @app.get("/v1/tasks/{tid}")
        async def get(tid: str, request: Request) -> JSONResponse:
            if (denied := self._auth(request)) is not None:
                return denied
            job = self.jobs.get(tid)
            if job is None:
                return JSONResponse({"error": "Task not found."}, status_code=404)
            job.extra["phase"] = job.phase()
            return JSONResponse(self.task(job))

        @app.delete("/v1/tasks/{tid}")
        async def delete(tid: str, request: Request) -> Response:
            if (denied := self._auth(request)) is not None:
                return denied
            job = self.jobs.get(tid)
            if job is None:
                return JSONResponse({"error": "Task not found."}, status_code=404)
            self.cancels.append(tid)
            job.cancelled = True
            job.extra["phase"] = "cancelled"
            return Response(status_code=204)
