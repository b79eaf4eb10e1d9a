"""The ComfyUI backend against a real HTTP + websocket server on 127.0.0.1 (comfy_server.py)."""

from __future__ import annotations

import functools
import http.server
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from localvideo.errors import ComfyUIError, UsageError
from localvideo.synth.comfyui import ComfyUIBackend, find_prompt_nodes, load_workflow, substitute

sys.path.insert(0, str(Path(__file__).parent))
from comfy_server import ComfyServer, expected_colours  # noqa: E402
from netutil import free_port  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def t2v_graph(save: str = "SaveAnimatedWEBP", fmt: str = "video/h264-mp4") -> dict[str, Any]:
    """An LTX-Video text-to-video graph as ComfyUI's "Export (API)" writes it."""
    g: dict[str, Any] = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "ltx.safetensors"},
              "_meta": {"title": "Load Checkpoint"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "old positive", "clip": ["1", 1]},
              "_meta": {"title": "CLIP Text Encode"}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "old negative", "clip": ["1", 1]},
              "_meta": {"title": "CLIP Text Encode"}},
        "8": {"class_type": "EmptyLTXVLatentVideo",
              "inputs": {"width": 768, "height": 512, "length": 97, "batch_size": 1}},
        "3": {"class_type": "KSampler",
              "inputs": {"model": ["1", 0], "seed": 1, "steps": 30, "cfg": 3.0,
                         "sampler_name": "euler", "scheduler": "normal", "positive": ["6", 0],
                         "negative": ["7", 0], "latent_image": ["8", 0], "denoise": 1.0}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["1", 2]}},
    }
    if save == "SaveAnimatedWEBP":
        g["10"] = {"class_type": save, "inputs": {"images": ["9", 0], "filename_prefix": "ltx",
                                                  "fps": 24.0, "lossless": False,
                                                  "quality": 90, "method": "default"}}
    elif save == "SaveImage":
        g["10"] = {"class_type": save, "inputs": {"images": ["9", 0], "filename_prefix": "ltx"}}
    else:
        g["10"] = {"class_type": "VHS_VideoCombine",
                   "inputs": {"images": ["9", 0], "frame_rate": 24, "loop_count": 0,
                              "filename_prefix": "ltx", "format": fmt, "pingpong": False,
                              "save_output": True}}
    return g


def i2v_graph() -> dict[str, Any]:
    """A Wan 2.1 image-to-video graph: conditioning passes through WanImageToVideo."""
    return {
        "37": {"class_type": "UNETLoader", "inputs": {"unet_name": "wan.safetensors",
                                                      "weight_dtype": "default"}},
        "38": {"class_type": "CLIPLoader", "inputs": {"clip_name": "umt5.safetensors",
                                                      "type": "wan"}},
        "39": {"class_type": "VAELoader", "inputs": {"vae_name": "wan_vae.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a", "clip": ["38", 0]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "b", "clip": ["38", 0]}},
        "52": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "50": {"class_type": "WanImageToVideo",
               "inputs": {"positive": ["6", 0], "negative": ["7", 0], "vae": ["39", 0],
                          "start_image": ["52", 0], "width": 832, "height": 480,
                          "length": 81, "batch_size": 1}},
        "3": {"class_type": "KSampler",
              "inputs": {"model": ["37", 0], "seed": 7, "steps": 20, "cfg": 6.0,
                         "sampler_name": "uni_pc", "scheduler": "simple",
                         "positive": ["50", 0], "negative": ["50", 1],
                         "latent_image": ["50", 2], "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["39", 0]}},
        "30": {"class_type": "VHS_VideoCombine",
               "inputs": {"images": ["8", 0], "frame_rate": 16, "loop_count": 0,
                          "filename_prefix": "wan", "format": "video/h264-mp4",
                          "pingpong": False, "save_output": True}},
    }


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    with ComfyServer(tmp_path / "comfy") as s:
        yield s


def run(backend: ComfyUIBackend, workflow: Any, out: Path, **kw: Any):  # type: ignore[no-untyped-def]
    args: dict[str, Any] = dict(prompt="a red fox running through snow", negative="blurry",
                                seed=42, width=64, height=48, frames=9, fps=8.0, steps=3,
                                guidance=4.5, image=None, out=out)
    args.update(kw)
    return backend.run(workflow, **args)


def probe(path: Path) -> tuple[str, int, int, int, list[np.ndarray]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        return s.codec_context.name, s.width, s.height, len(frames), frames


def close(pixel: np.ndarray, colour: tuple[int, int, int], tol: int = 12) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) <= tol))


def test_full_job_webp_output(server: ComfyServer, tmp_path: Path) -> None:
    wf = tmp_path / "ltx_api.json"
    wf.write_text(json.dumps(t2v_graph()))
    events: list[dict[str, Any]] = []
    with ComfyUIBackend(server.url) as b:
        res = run(b, wf, tmp_path / "out" / "clip.mp4", on_progress=events.append)

    # What the server received: every value landed in the right input.
    graph = server.prompts[-1]["prompt"]
    assert graph["6"]["inputs"]["text"] == "a red fox running through snow"
    assert graph["7"]["inputs"]["text"] == "blurry"
    assert graph["3"]["inputs"]["seed"] == 42 and graph["3"]["inputs"]["steps"] == 3
    assert graph["3"]["inputs"]["cfg"] == 4.5
    assert (graph["8"]["inputs"]["width"], graph["8"]["inputs"]["height"],
            graph["8"]["inputs"]["length"]) == (64, 48, 9)
    assert graph["10"]["inputs"]["fps"] == 8.0
    assert res.substituted["prompt"] == ["6.text (CLIPTextEncode)"]
    assert res.substituted["frames"] == ["8.length (EmptyLTXVLatentVideo)"]
    assert res.skipped == [] and res.transport == "websocket"

    # Progress came over the websocket, one event per sampler step.
    steps = [(e["step"], e["total"]) for e in events if e["stage"] == "progress"]
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert [e["class_type"] for e in events if e["stage"] == "node"][-2:] == \
        ["VAEDecode", "SaveAnimatedWEBP"]

    # The clip: H.264, the substituted size and length, pixels from this prompt and seed.
    codec, w, h, n, frames = probe(res.path)
    assert res.path == tmp_path / "out" / "clip.mp4"
    assert (codec, w, h, n) == ("h264", 64, 48, 9)
    bg, bar = expected_colours("a red fox running through snow", 42)
    assert close(frames[4][4, 60], bg)          # top right: background from the seed
    assert close(frames[4][44, 60], bar)        # bottom right: bar colour from the prompt
    assert res.outputs and res.outputs[0].endswith(".webp")
    assert set(res.timings) >= {"queue_wait", "execution", "download", "convert", "total"}
    assert not list((tmp_path / "out").glob(".comfy-*"))   # temp folder cleaned up


def test_image_to_video_uploads_and_keeps_h264(server: ComfyServer, tmp_path: Path) -> None:
    img = tmp_path / "first frame.png"
    Image.new("RGB", (40, 30), (250, 20, 200)).save(img)
    with ComfyUIBackend(server.url) as b:
        res = run(b, i2v_graph(), tmp_path / "i2v.mp4", image=img, width=80, height=64,
                  frames=5, fps=None, seed=3)
    assert server.uploads == ["first frame.png"]
    graph = server.prompts[-1]["prompt"]
    assert graph["52"]["inputs"]["image"] == "first frame.png"
    # The prompt was traced through WanImageToVideo's conditioning to the text nodes.
    assert graph["6"]["inputs"]["text"] == "a red fox running through snow"
    assert graph["7"]["inputs"]["text"] == "blurry"
    assert graph["50"]["inputs"]["length"] == 5
    codec, w, h, n, frames = probe(res.path)
    assert (codec, w, h, n) == ("h264", 80, 64, 5)
    assert close(frames[0][10, 10], (250, 20, 200), tol=20)   # the uploaded image, top left
    # The server's H.264 MP4 was copied, not re-encoded: same bytes.
    served = server.output_dir / res.outputs[0]
    assert served.read_bytes() == res.path.read_bytes()
    with av.open(str(res.path)) as c:
        assert float(c.streams.video[0].average_rate or 0) == pytest.approx(16)


@pytest.mark.parametrize("save,fmt", [("SaveImage", ""), ("VHS_VideoCombine", "video/h265-mp4")])
def test_png_frames_and_hevc_are_converted(server: ComfyServer, tmp_path: Path, save: str,
                                           fmt: str) -> None:
    with ComfyUIBackend(server.url) as b:
        res = run(b, t2v_graph(save, fmt), tmp_path / "c.mp4", fps=12.0, frames=6)
    codec, w, h, n, frames = probe(res.path)
    assert (codec, w, h, n) == ("h264", 64, 48, 6)
    with av.open(str(res.path)) as c:
        assert float(c.streams.video[0].average_rate or 0) == pytest.approx(12)
    if save == "SaveImage":
        assert len(res.outputs) == 6 and all(o.endswith(".png") for o in res.outputs)
    else:
        assert res.outputs[0].startswith("vhs/")
    bg, _ = expected_colours("a red fox running through snow", 42)
    assert close(frames[0][4, 60], bg)


def test_node_errors_are_listed(server: ComfyServer, tmp_path: Path) -> None:
    g = t2v_graph()
    del g["3"]["inputs"]["model"]
    out = tmp_path / "x.mp4"
    with ComfyUIBackend(server.url) as b, pytest.raises(ComfyUIError) as ei:
        run(b, g, out)
    msg = str(ei.value)
    assert "node 3 (KSampler): Required input is missing — model" in msg
    assert ei.value.hint and "export" in ei.value.hint.lower()
    assert not out.exists()


def test_unknown_node_type_is_reported(server: ComfyServer, tmp_path: Path) -> None:
    g = t2v_graph()
    g["11"] = {"class_type": "SomeCustomNode", "inputs": {}}
    with ComfyUIBackend(server.url) as b, pytest.raises(ComfyUIError, match="SomeCustomNode"):
        run(b, g, tmp_path / "x.mp4")


def test_execution_error_names_node(server: ComfyServer, tmp_path: Path) -> None:
    server.fail_node = "VAEDecode"
    out = tmp_path / "x.mp4"
    with ComfyUIBackend(server.url) as b, pytest.raises(ComfyUIError) as ei:
        run(b, t2v_graph(), out)
    assert "node 9 (VAEDecode)" in str(ei.value)
    assert "OutOfMemoryError: Allocation on device" in str(ei.value)
    assert "--frames" in (ei.value.hint or "")
    assert not out.exists()


def test_execution_error_seen_by_polling(server: ComfyServer, tmp_path: Path) -> None:
    server.fail_node = "KSampler"
    server.ws_enabled = False
    with ComfyUIBackend(server.url) as b, pytest.raises(ComfyUIError, match=r"node 3 \(KSampler"):
        run(b, t2v_graph(), tmp_path / "x.mp4")


def test_polling_when_websocket_refused(server: ComfyServer, tmp_path: Path) -> None:
    server.ws_enabled = False
    server.step_delay = 0.2   # long enough that the first polls find no history yet
    events: list[dict[str, Any]] = []
    with ComfyUIBackend(server.url) as b:
        res = run(b, t2v_graph(), tmp_path / "p.mp4", on_progress=events.append)
    assert res.transport == "polling"
    assert any(e["stage"] == "fallback" for e in events)
    assert sum(1 for m, p in server.requests if p.startswith("/history/")) >= 2
    assert probe(res.path)[:4] == ("h264", 64, 48, 9)
    assert res.timings["execution"] >= 0.5   # 3 steps × 0.2 s, from the history timestamps


def test_websocket_dropped_mid_job_falls_back(server: ComfyServer, tmp_path: Path) -> None:
    server.drop_ws_after = 4
    server.step_delay = 0.05
    with ComfyUIBackend(server.url) as b:
        res = run(b, t2v_graph(), tmp_path / "d.mp4")
    assert res.transport == "polling"
    assert probe(res.path)[3] == 9


def test_server_down(tmp_path: Path) -> None:
    port = free_port()   # a port nobody listens on
    with ComfyUIBackend(f"http://127.0.0.1:{port}") as b, pytest.raises(ComfyUIError) as ei:
        run(b, t2v_graph(), tmp_path / "x.mp4")
    assert f"ComfyUI is not reachable at http://127.0.0.1:{port}" in str(ei.value)
    assert "python main.py --listen 127.0.0.1" in str(ei.value)


def test_origin_must_match_host(server: ComfyServer, tmp_path: Path) -> None:
    # The server really enforces the check: a foreign Origin is refused...
    r = httpx.get(f"{server.url}/system_stats", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    # ...and the backend's requests (HTTP and websocket) all pass it.
    with ComfyUIBackend(server.url) as b:
        res = run(b, t2v_graph(), tmp_path / "o.mp4")
    assert res.transport == "websocket"
    assert server.refused == [("/system_stats", "http://evil.example")]


def test_ui_format_workflow_rejected(tmp_path: Path) -> None:
    wf = tmp_path / "ui.json"
    wf.write_text(json.dumps({"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}],
                              "links": [[1, 4, 0, 3, 0, "MODEL"]], "version": 0.4}))
    with pytest.raises(UsageError) as ei:
        load_workflow(wf)
    assert "UI-format" in str(ei.value) and "Export (API)" in (ei.value.hint or "")


@pytest.mark.parametrize("text,needle", [("{not json", "not a JSON file"),
                                         ('{"1": {"inputs": {}}}', "no class_type"),
                                         ("[1, 2]", "not an API-format workflow")])
def test_bad_workflow_files(tmp_path: Path, text: str, needle: str) -> None:
    wf = tmp_path / "w.json"
    wf.write_text(text)
    with pytest.raises(UsageError, match=needle):
        load_workflow(wf)
    with pytest.raises(UsageError, match="not found"):
        load_workflow(tmp_path / "missing.json")


@pytest.mark.parametrize("url", ["127.0.0.1:8188", "ftp://host", "http://", "not a url"])
def test_bad_url(url: str) -> None:
    with pytest.raises(UsageError, match="invalid ComfyUI URL"):
        ComfyUIBackend(url)


def test_missing_prompt_node_is_explained(server: ComfyServer, tmp_path: Path) -> None:
    g = t2v_graph()
    for nid in ("6", "7"):
        g[nid]["inputs"]["text"] = ["1", 1]   # text wired from elsewhere: nothing to fill
    with ComfyUIBackend(server.url) as b, pytest.raises(UsageError) as ei:
        run(b, g, tmp_path / "x.mp4")
    assert "positive prompt node" in str(ei.value) and "Positive Prompt" in (ei.value.hint or "")
    assert server.prompts == []   # nothing was submitted


def test_titles_win_and_missing_targets_are_reported() -> None:
    g = t2v_graph()
    # Swap the roles by title only: the user's labels beat the sampler links.
    g["6"]["_meta"]["title"] = "Negative Prompt"
    g["7"]["_meta"]["title"] = "Positive Prompt"
    assert find_prompt_nodes(g) == ("7", "6")
    del g["10"]["inputs"]["fps"]
    new, done, skipped = substitute(g, prompt="p", negative="n", seed=1, fps=10.0)
    assert new["7"]["inputs"]["text"] == "p" and new["6"]["inputs"]["text"] == "n"
    assert skipped == ["fps"]
    assert g["7"]["inputs"]["text"] == "old negative"   # the input graph is not modified


def test_image_without_loadimage_node(server: ComfyServer, tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(img)
    with ComfyUIBackend(server.url) as b, pytest.raises(UsageError, match="no LoadImage"):
        run(b, t2v_graph(), tmp_path / "x.mp4", image=img)


def test_ctrl_c_cancels_the_job_on_the_server(server: ComfyServer, tmp_path: Path) -> None:
    server.step_delay = 0.2

    def on_progress(e: dict[str, Any]) -> None:
        if e["stage"] == "progress":
            raise KeyboardInterrupt   # what Ctrl-C does while the bar is drawing

    with ComfyUIBackend(server.url) as b, pytest.raises(KeyboardInterrupt):
        run(b, t2v_graph(), tmp_path / "x.mp4", steps=50, on_progress=on_progress)
    assert len(server.deleted) == 1
    pid = server.deleted[0]
    assert server.interrupted == [pid]
    # The server stopped the sampler early instead of finishing 50 steps.
    deadline = time.time() + 5
    while pid not in server.history and time.time() < deadline:
        time.sleep(0.05)
    status = server.history[pid]["status"]
    assert status["status_str"] == "error"
    assert status["messages"][-1][0] == "execution_interrupted"


def test_timeout(server: ComfyServer, tmp_path: Path) -> None:
    server.step_delay = 0.5
    with ComfyUIBackend(server.url, timeout=0.6) as b, \
            pytest.raises(ComfyUIError, match="did not finish within") as ei:
        run(b, t2v_graph(), tmp_path / "x.mp4", steps=10)
    assert "/history/" in (ei.value.hint or "")


HUNYUAN_CUSTOM = {  # SamplerCustomAdvanced + BasicGuider: no "positive" input anywhere
    "44": {"class_type": "TextEncodeHunyuanVideo_ImageToVideo",
           "inputs": {"prompt": "x", "clip_vision_output": ["81", 0], "clip": ["11", 0],
                      "image_interleave": 2}},
    "26": {"class_type": "FluxGuidance", "inputs": {"conditioning": ["44", 0],
                                                    "guidance": 6.0}},
    "22": {"class_type": "BasicGuider", "inputs": {"model": ["12", 0],
                                                   "conditioning": ["26", 0]}},
    "25": {"class_type": "RandomNoise", "inputs": {"noise_seed": 1}},
    "17": {"class_type": "BasicScheduler", "inputs": {"scheduler": "simple", "steps": 20,
                                                      "denoise": 1, "model": ["12", 0]}},
    "45": {"class_type": "EmptyHunyuanLatentVideo",
           "inputs": {"width": 848, "height": 480, "length": 73, "batch_size": 1}},
    "13": {"class_type": "SamplerCustomAdvanced",
           "inputs": {"noise": ["25", 0], "guider": ["22", 0], "sampler": ["16", 0],
                      "sigmas": ["17", 0], "latent_image": ["45", 0]}},
}
LTXV_I2V = {  # conditioning passes LTXVImgToVideo → LTXVConditioning → CFGGuider
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "p", "clip": ["38", 0]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "n", "clip": ["38", 0]}},
    "78": {"class_type": "LoadImage", "inputs": {"image": "cat.png"}},
    "77": {"class_type": "LTXVImgToVideo",
           "inputs": {"positive": ["6", 0], "negative": ["7", 0], "vae": ["44", 2],
                      "image": ["78", 0], "width": 768, "height": 512, "length": 97,
                      "batch_size": 1, "strength": 1.0}},
    "69": {"class_type": "LTXVConditioning",
           "inputs": {"positive": ["77", 0], "negative": ["77", 1], "frame_rate": 25.0}},
    "82": {"class_type": "CFGGuider", "inputs": {"model": ["44", 0], "positive": ["69", 0],
                                                 "negative": ["69", 1], "cfg": 3}},
    "72": {"class_type": "SamplerCustomAdvanced",
           "inputs": {"noise": ["73", 0], "guider": ["82", 0], "latent_image": ["77", 2]}},
    "73": {"class_type": "RandomNoise", "inputs": {"noise_seed": 5}},
    "41": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["8", 0], "fps": 24.0,
                                                        "filename_prefix": "ltxv"}},
}
WAN_WRAPPER = {  # one text node holds both prompts
    "16": {"class_type": "WanVideoTextEncode",
           "inputs": {"positive_prompt": "p", "negative_prompt": "n", "t5": ["11", 0]}},
    "37": {"class_type": "WanVideoEmptyEmbeds",
           "inputs": {"width": 832, "height": 480, "num_frames": 81}},
    "27": {"class_type": "WanVideoSampler",
           "inputs": {"model": ["22", 0], "text_embeds": ["16", 0], "image_embeds": ["37", 0],
                      "steps": 30, "cfg": 6.0, "shift": 5.0, "seed": 9, "force_offload": True}},
    "30": {"class_type": "VHS_VideoCombine",
           "inputs": {"images": ["28", 0], "frame_rate": 16, "format": "video/h264-mp4"}},
}


@pytest.mark.parametrize("graph,expect,skipped", [
    (HUNYUAN_CUSTOM, {"prompt": ["44.prompt"], "seed": ["25.noise_seed"], "steps": ["17.steps"],
                      "width": ["45.width"], "frames": ["45.length"]},
     ["negative", "guidance", "fps"]),
    (LTXV_I2V, {"prompt": ["6.text"], "negative": ["7.text"], "seed": ["73.noise_seed"],
                "guidance": ["82.cfg"], "width": ["77.width"], "frames": ["77.length"],
                "fps": ["41.fps", "69.frame_rate"], "image": ["78.image"]}, ["steps"]),
    (WAN_WRAPPER, {"prompt": ["16.positive_prompt"], "negative": ["16.negative_prompt"],
                   "seed": ["27.seed"], "steps": ["27.steps"], "guidance": ["27.cfg"],
                   "width": ["37.width"], "frames": ["37.num_frames"],
                   "fps": ["30.frame_rate"]}, []),
], ids=["hunyuan-basicguider", "ltxv-i2v", "wan-wrapper"])
def test_substitution_in_video_workflows(graph: dict[str, Any], expect: dict[str, list[str]],
                                         skipped: list[str]) -> None:
    image = "up.png" if any(n["class_type"] == "LoadImage" for n in graph.values()) else None
    new, done, miss = substitute(graph, prompt="P", negative="N", seed=11, width=320,
                                 height=192, frames=17, fps=12.0, steps=4, guidance=2.5,
                                 image_name=image)
    for what, where in expect.items():
        assert [w.split(" ")[0] for w in done[what]] == where, what
    assert miss == skipped
    for what, value in (("prompt", "P"), ("negative", "N"), ("seed", 11), ("frames", 17),
                        ("width", 320), ("steps", 4), ("image", image)):
        for w in done.get(what, []):
            nid, key = w.split(" ")[0].split(".")
            assert new[nid]["inputs"][key] == value
    # An INT input stays an int: VHS frame_rate was 16, 12.0 is written as 12.
    if "30" in new:
        assert new["30"]["inputs"]["frame_rate"] == 12
        assert isinstance(new["30"]["inputs"]["frame_rate"], int)


@pytest.mark.parametrize("ws_enabled", [True, False], ids=["websocket", "polling"])
def test_cancelled_in_comfyui(server: ComfyServer, tmp_path: Path, ws_enabled: bool) -> None:
    server.step_delay = 0.1
    server.ws_enabled = ws_enabled

    def press_cancel(e: dict[str, Any]) -> None:
        # Another client (the ComfyUI page) presses Cancel once the job is queued.
        if e["stage"] == "queued":
            threading.Timer(0.15, httpx.post, args=(f"{server.url}/interrupt",),
                            kwargs={"json": {}}).start()

    with ComfyUIBackend(server.url) as b, pytest.raises(ComfyUIError, match="interrupted"):
        run(b, t2v_graph(), tmp_path / "x.mp4", steps=40, on_progress=press_cancel)


def test_a_server_that_is_not_comfyui(tmp_path: Path) -> None:
    # Some other web server on the port (here the stdlib file server): 404 on /system_stats.
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{httpd.server_address[1]}"
            with ComfyUIBackend(url) as b, pytest.raises(ComfyUIError) as ei:
                run(b, t2v_graph(), tmp_path / "x.mp4")
        finally:
            httpd.shutdown()
    assert "is not a ComfyUI server" in str(ei.value) and "--comfy-url" in (ei.value.hint or "")
    assert not (tmp_path / "x.mp4").exists()
