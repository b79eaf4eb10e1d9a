"""fal through its official client (``pip install fal-client``), over fal's queue API.

Protocol (https://docs.fal.ai/model-apis/model-endpoints/queue), as the client speaks it:

* ``POST https://queue.fal.run/{endpoint id}`` with the input as JSON → ``{"request_id",
  "status_url", "response_url", "cancel_url"}``; the three URLs name only the app
  (``owner/alias``), not the endpoint's sub-path (``fal-ai/kling-video/v2/master/...``);
* ``GET status_url?logs=…`` → ``{"status": "IN_QUEUE", "queue_position"}`` /
  ``"IN_PROGRESS"`` / ``"COMPLETED"`` (a failed request is COMPLETED too: its
  ``error``/``error_type`` say why, and ``response_url`` answers with the error);
* ``GET response_url`` → the model's output, for video models ``{"video": {"url", ...}}``;
* ``PUT cancel_url`` → 202 ``CANCELLATION_REQUESTED`` (400 ``ALREADY_COMPLETED``).

The client has no base-URL option: the queue host comes from FAL_QUEUE_RUN_HOST when the
module is imported and the scheme is always https. With ``--base-url`` the submit is sent
through the client's own authenticated HTTP client to ``{base_url}/{endpoint id}``, and the
handle the client builds from the answer does the rest (status, result, cancel) as usual.

Input image: sent inline as a base64 data URI in ``image_url`` (fal accepts data URIs for
file inputs), so nothing goes to fal's CDN first.
Key: ``Authorization: Key …`` from ``localvideo keys set fal`` or FAL_KEY.
"""

from __future__ import annotations

import re
from typing import Any

from ...errors import LocalVideoError, UsageError
from .base import Estimate, HostedProvider, HostedRequest, Status, data_uri

_ENDPOINT = re.compile(r"^[\w.-]+/[\w.-]+(/[\w.-]+)*$")


class FalProvider(HostedProvider):
    name = "fal"
    title = "fal"
    sdk_module = "fal_client"
    key_envs = ("FAL_KEY",)
    default_host = "https://queue.fal.run"
    model_hint = ("name a model by its fal endpoint id, e.g. "
                  "fal-ai/ltx-video or fal-ai/wan-i2v (https://fal.ai/models?categories=video)")

    def check_model(self, model: str) -> str:
        model = (model or "").strip().strip("/")
        if not _ENDPOINT.match(model):
            raise UsageError(f"{model!r} is not a fal endpoint id", self.model_hint)
        return model

    def estimate(self, model: str, req: HostedRequest) -> Estimate:
        # fal prices each endpoint on its page; the queue API quotes nothing before a run.
        return Estimate(price=None, time=None,
                        source=f"https://fal.ai/models/{model} (pricing is on the model's page)")

    def image_transport(self) -> str:
        return "inline in the request as a base64 data URI (image_url)"

    def _client(self) -> Any:
        try:
            import fal_client
        except ImportError as exc:
            raise self.missing_sdk(exc) from exc
        return fal_client.SyncClient(key=self.api_key())

    def _submit(self, client: Any, model: str, req: HostedRequest) -> tuple[str, Any]:
        from fal_client.client import SyncRequestHandle, _raise_for_status

        args: dict[str, Any] = {"prompt": req.prompt, **self.native_params(model, req)}
        if req.image is not None:
            args[str(req.params.get("image_field") or "image_url")] = data_uri(req.image)
        if self.base_url is None:
            handle = client.submit(model, args)
        else:
            http = client._client  # the SDK's own client: its auth header and user agent
            resp = http.post(f"{self.base_url}/{model}", json=args,
                             timeout=client.default_timeout)
            _raise_for_status(resp)
            data = resp.json()
            handle = SyncRequestHandle(request_id=data["request_id"],
                                       response_url=data["response_url"],
                                       status_url=data["status_url"],
                                       cancel_url=data["cancel_url"], client=http)
        return handle.request_id, handle

    def _status(self, client: Any, handle: Any) -> Status:
        from fal_client import Completed, InProgress, Queued

        st = handle.status(with_logs=True)
        if isinstance(st, Queued):
            return Status("queued", position=st.position)
        if isinstance(st, InProgress):
            return Status("running")
        assert isinstance(st, Completed)
        if st.error:
            return Status("failed", error=st.error, error_code=st.error_type,
                          info={"metrics": st.metrics} if st.metrics else {})
        result = handle.get()
        video = result.get("video") if isinstance(result, dict) else None
        urls = []
        if isinstance(video, dict) and isinstance(video.get("url"), str):
            urls.append(video["url"])
        elif isinstance(result, dict) and isinstance(result.get("videos"), list):
            urls += [v["url"] for v in result["videos"] if isinstance(v, dict) and "url" in v]
        info: dict[str, Any] = {"metrics": st.metrics} if st.metrics else {}
        if isinstance(result, dict) and "seed" in result:
            info["seed"] = result["seed"]
        return Status("succeeded", outputs=urls, info=info)

    def _cancel(self, client: Any, handle: Any) -> None:
        handle.cancel()

    def _map_error(self, exc: Exception, *, model: str,
                   request_id: str | None) -> LocalVideoError | None:
        from fal_client.client import FalClientHTTPError

        if isinstance(exc, FalClientHTTPError):
            detail = exc.message if isinstance(exc.message, str) else repr(exc.message)
            if exc.error_type:
                detail = f"{detail} [{exc.error_type}]"
            return self.http_error(exc.status_code, detail, model=model, request_id=request_id)
        return None
