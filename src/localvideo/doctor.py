"""`localvideo doctor`: check this machine, say which job it suits and what to install.

The seed's "pick the right stack in 60 seconds", done by the program: every check tries the
real thing (a capture grab, an encoder that encodes a frame, tesseract that answers) rather
than looking for a library's name, because a present-but-broken part is the usual failure.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import EncoderError, LocalVideoError
from .store.layout import exposure

# The capture stack (numpy, python-xlib, the portal's D-Bus), the recorder's encoder probe
# (PyAV) and torch are imported inside the checks that use them: every CLI command imports
# this module (through service/doctor.py), and only `doctor` should pay for them.

GIB = 1024**3


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None         # the exact command that installs / fixes what is missing
    data: dict[str, Any] | None = None


def _package_manager() -> str | None:
    for pm in ("apt-get", "dnf", "pacman", "zypper", "brew", "winget"):
        if shutil.which(pm):
            return pm
    return None


_INSTALL = {
    "tesseract": {
        "apt-get": "sudo apt-get install -y tesseract-ocr",
        "dnf": "sudo dnf install -y tesseract",
        "pacman": "sudo pacman -S --noconfirm tesseract tesseract-data-eng",
        "zypper": "sudo zypper install -y tesseract-ocr",
        "brew": "brew install tesseract",
        "winget": "winget install UB-Mannheim.TesseractOCR",
    },
    "xvfb": {
        "apt-get": "sudo apt-get install -y xvfb openbox xterm",
        "dnf": "sudo dnf install -y xorg-x11-server-Xvfb openbox xterm",
        "pacman": "sudo pacman -S --noconfirm xorg-server-xvfb openbox xterm",
        "zypper": "sudo zypper install -y xorg-x11-server-Xvfb openbox xterm",
    },
    "ffmpeg": {
        "apt-get": "sudo apt-get install -y ffmpeg",
        "dnf": "sudo dnf install -y ffmpeg",
        "pacman": "sudo pacman -S --noconfirm ffmpeg",
        "zypper": "sudo zypper install -y ffmpeg",
        "brew": "brew install ffmpeg",
        "winget": "winget install Gyan.FFmpeg",
    },
}


def install_command(what: str) -> str | None:
    pm = _package_manager()
    return _INSTALL.get(what, {}).get(pm or "")


# -- checks ---------------------------------------------------------------------------------
def check_display(settings: Settings | None = None) -> Check:
    system = platform.system()
    if system == "Linux":
        x11 = os.environ.get("DISPLAY")
        wayland = os.environ.get("WAYLAND_DISPLAY")
        if not x11 and not wayland:
            fix = "localvideo observe --virtual-display"
            if not shutil.which("Xvfb"):
                fix = f"{install_command('xvfb') or 'install Xvfb and openbox'} && {fix}"
            return Check("display", False, "no display server (DISPLAY and WAYLAND_DISPLAY "
                         "are unset)", fix)
        # Which capture path `record` takes here and why, without opening it (the portal
        # would show its screen-picker dialog); what is missing for it is the fix.
        from .capture.registry import plan_linux

        backend = settings.record.backend if settings else "auto"
        plan = plan_linux(backend, settings.data_dir if settings else None)
        what = (f"Wayland {wayland}" + (f" (XWayland {x11})" if x11 else "")
                if wayland else f"X11 {x11}")
        what += f" — capture: {plan['backend']} via {plan['path']} ({plan['why']})"
        if plan["prompt"]:
            what += "; the first `localvideo record` asks once which screen to share"
        return Check("display", not plan["install"], what, plan["install"] or None,
                     data=plan)
    if system == "Darwin":
        return Check("display", True, "macOS (capture needs the Screen Recording permission)")
    return Check("display", True, system)


def check_capture(settings: Settings | None = None) -> Check:
    """One real grab through the backend the recorder would use."""
    desc: dict[str, str] = {}
    try:
        from .capture.base import open_backend

        start = time.perf_counter()
        with open_backend(mode="display", backend=settings.record.backend if settings else "auto",
                          state_dir=settings.data_dir if settings else None) as backend:
            desc = backend.describe()
            frame = backend.grab()
        ms = (time.perf_counter() - start) * 1000
    except ImportError as exc:
        return Check("capture", False, f"no capture backend in this build ({exc})")
    except LocalVideoError as exc:
        return Check("capture", False, exc.message, exc.hint)
    except Exception as exc:  # noqa: BLE001 - a doctor reports, it does not crash
        return Check("capture", False, f"{type(exc).__name__}: {exc}")
    if frame is None:
        return Check("capture", False, "the backend opened but returned no frame",
                     "on macOS grant Screen Recording to your terminal in System Settings › "
                     "Privacy & Security")
    w, h = frame.size
    return Check("capture", True, f"{desc['backend']} via {desc['path']}: grabbed {w}×{h} in "
                 f"{ms:.0f} ms", data={"width": w, "height": h, "ms": round(ms, 1), **desc})


def check_encoders(settings: Settings) -> Check:
    """The recorder's own probe (a one-frame test encode per encoder), fresh, so the doctor
    reports exactly what ``record`` will pick."""
    from .record.encoder import HW_HEVC, plan_encoders, probe

    candidates = (*HW_HEVC, "libx264", "libx265")
    try:
        tried = probe(settings.data_dir, candidates, refresh=True)
    except Exception as exc:  # noqa: BLE001 - a broken PyAV is a finding
        return Check("encoders", False, f"cannot probe encoders: {exc}",
                     "pip install --force-reinstall av")
    encoders = [{"name": n, "hardware": n in HW_HEVC, "works": r is None, "error": r}
                for n, r in tried.items()]
    working = [n for n, r in tried.items() if r is None]
    hw = [n for n in working if n in HW_HEVC]
    try:
        chain = plan_encoders(settings.data_dir, settings.record.codec).chain
    except EncoderError as exc:
        return Check("encoders", False, exc.message, exc.hint,
                     data={"encoders": encoders, "working": working, "hardware": hw})
    detail = f"record will use {chain[0]} (working: {', '.join(working)})"
    if not hw:
        detail += "; no hardware HEVC encoder, software x264 at 2 fps is cheap enough"
    return Check("encoders", True, detail, data={"encoders": encoders, "working": working,
                                                 "hardware": hw, "chain": chain})


def check_tesseract(engine: str = "auto") -> Check:
    exe = shutil.which("tesseract")
    fix = install_command("tesseract") or "install tesseract-ocr (https://tesseract-ocr.github.io)"
    if not exe:
        return Check("tesseract", False, "tesseract is not installed: no text search", fix)
    from .analyze import ocr  # PIL and pytesseract: only when doctor runs

    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
        version = (out.stdout or out.stderr).splitlines()[0].strip()
        langs = ocr.program_languages(exe)[1]
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        return Check("tesseract", False, f"tesseract does not answer: {exc}", fix)
    try:
        reads = ocr.check_tesseract(engine)      # "library 5.5.4" or "program 5.3.0"
    except LocalVideoError as exc:
        return Check("tesseract", False, f"{version}; the {engine} OCR engine cannot run: "
                     f"{exc.message}", exc.hint or fix)
    return Check("tesseract", True, f"{version}; languages: {', '.join(langs) or 'none'}; "
                 f"reads through the {reads}",
                 data={"version": version, "languages": langs, "engine": reads})


def check_gpu() -> Check:
    try:
        import torch
    except ImportError:
        torch = None  # type: ignore[assignment]
    if torch is not None:
        try:
            if torch.cuda.is_available():
                gpus: list[dict[str, Any]] = []
                for i in range(torch.cuda.device_count()):
                    free, total = torch.cuda.mem_get_info(i)
                    gpus.append({"index": i, "name": torch.cuda.get_device_name(i),
                                 "total_bytes": total, "free_bytes": free})
                best = max(gpus, key=lambda g: g["free_bytes"])
                return Check("gpu", True,
                             f"{best['name']}: {best['free_bytes'] / GIB:.1f} GiB free of "
                             f"{best['total_bytes'] / GIB:.1f} GiB (CUDA, torch "
                             f"{torch.__version__})",
                             data={"kind": "cuda", "gpus": gpus,
                                   "free_bytes": best["free_bytes"],
                                   "total_bytes": best["total_bytes"]})
            if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
                return Check("gpu", True, "Apple Silicon GPU (MPS; memory shared with the system)",
                             data={"kind": "mps", "free_bytes": _ram_bytes()})
        except Exception as exc:  # noqa: BLE001 - a broken driver is a finding, not a crash
            return Check("gpu", False, f"torch cannot use the GPU: {exc}")
    smi = shutil.which("nvidia-smi")
    if smi:
        out = subprocess.run([smi, "--query-gpu=name,memory.total,memory.free",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        fix = "pip install 'localvideo[synth]'   # torch with CUDA"
        return Check("gpu", False, f"NVIDIA GPU present ({out}) but torch cannot use it", fix)
    detail = "no GPU found" + ("" if torch is not None else " (torch is not installed)")
    return Check("gpu", False, detail, None if torch is not None
                 else "pip install 'localvideo[synth]'", data={"kind": "none"})


def _ram_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def check_disk(data_dir: Path, min_free: int) -> Check:
    probe = data_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    ok = usage.free > min_free
    # 2 fps window capture measured at well under 1 GB/day; a day of room is the floor.
    detail = f"{usage.free / 1000**3:.1f} GB free at {probe}"
    return Check("disk", ok, detail, None if ok else
                 f"free space, or point --data-dir at a larger disk (needs > "
                 f"{min_free / 1000**3:.1f} GB)",
                 data={"free_bytes": usage.free, "total_bytes": usage.total, "path": str(probe)})


def check_privacy(data_dir: Path) -> Check:
    """Can another account on this machine read the screen history? (0700 / 0600 expected.)"""
    if os.name != "posix":
        return Check("privacy", True, "file modes are not checked on this system")
    if not data_dir.exists():
        return Check("privacy", True, f"{data_dir} does not exist yet; it is created owner-only")
    exp = exposure(data_dir)
    data = {"root_mode": oct(exp.root_mode)[2:], "readable_by_others": exp.count,
            "checked": exp.checked, "examples": exp.examples}
    if not exp.count:
        return Check("privacy", True, f"owner-only: {exp.checked} entries under {data_dir}, "
                     "none readable by other accounts", data=data)
    gate = ("and the store folder itself is open to them" if exp.root_open
            else "(the store folder itself is closed to them, which protects them for now)")
    return Check("privacy", False, f"{exp.count} of {exp.checked} entries under {data_dir} are "
                 f"readable or writable by other accounts {gate}; e.g. {exp.examples[0]}",
                 f"chmod -R go-rwx {data_dir}", data=data)


# -- verdicts -------------------------------------------------------------------------------
def _observe_verdict(checks: dict[str, Check], settings: Settings) -> dict[str, Any]:
    enc = checks["encoders"].data or {}
    encoder = (enc.get("chain") or [None])[0]
    blockers = [c.name for c in (checks["display"], checks["capture"], checks["encoders"],
                                 checks["disk"]) if not c.ok]
    suited = not blockers
    reason = ("capture, encoding and disk work" if suited
              else f"blocked by: {', '.join(blockers)}")
    if suited and not checks["tesseract"].ok:
        reason += "; without tesseract nothing is searchable by text"
    command = "localvideo observe" if suited else None
    if not checks["display"].ok and not set(blockers) - {"display", "capture"}:
        # Everything but a screen works: the private display shows the whole path working.
        command = "localvideo observe --virtual-display"
    return {
        "suited": suited,
        "reason": reason,
        "settings": {"mode": settings.record.mode, "fps": settings.record.fps,
                     "encoder": encoder,
                     "codec": "hevc" if encoder and encoder.startswith("hevc") else "h264",
                     "ocr": checks["tesseract"].ok},
        "command": command,
    }


# Signatures of svc.synth.plan / svc.synth.models (dumped), passed in by service/doctor.py so
# the doctor has no service.
PlanFn = Callable[..., dict[str, Any]]
ModelsFn = Callable[[], list[dict[str, Any]]]


def fitting_models(plan: PlanFn, models: ModelsFn, device: str,
                   vram: int | None) -> list[dict[str, Any]]:
    """Text-to-video presets whose memory plan fits ``vram`` at their default size — the same
    planner `generate` uses, so the doctor's advice is what generate will do."""
    out = []
    for m in models():
        if m.get("i2v"):
            continue
        try:
            p = plan(model=m["name"], device=device, max_vram=vram)
        except LocalVideoError:
            continue
        if p.get("fits"):
            out.append({"model": m["name"], "params": m.get("params"),
                        "height": p["params"]["height"], "width": p["params"]["width"],
                        "frames": p["params"]["frames"], "offload": p.get("offload"),
                        "dtype": p.get("dtype"),
                        "peak_gb": round(p["estimate"]["peak"] / 1000**3, 1)})
    return out


HOSTED_MODEL = "veo-3.0-fast-generate-001"


def _synth_verdict(checks: dict[str, Check], plan: PlanFn | None = None,
                   models: ModelsFn | None = None) -> dict[str, Any]:
    gpu = checks["gpu"]
    data = gpu.data or {}
    free = int(data.get("free_bytes") or 0)
    kind = data.get("kind")
    if gpu.ok and kind in ("cuda", "mps"):
        fits = fitting_models(plan, models, kind, free) if plan and models else []
        where = (f"{free / GIB:.1f} GiB of free VRAM" if kind == "cuda"
                 else "Apple Silicon (memory shared with the system)")
        if not fits:
            return {"suited": False, "reason": f"{where}: no model preset fits at its "
                    "default size", "settings": {"device": kind}, "fits": [],
                    "command": "localvideo generate \"...\" --height 320 --width 512 "
                               "--model ltx-video   # smaller sizes need less memory"}
        # Prefer what runs without offloading (offload trades minutes for memory), then the
        # registry's own order, which lists the fast small models first.
        best = sorted(fits, key=lambda f: f["offload"] not in (None, "none"))[0]
        return {"suited": True, "reason": f"{where}: {len(fits)} preset(s) fit",
                "settings": {"model": best["model"], "height": best["height"],
                             "width": best["width"], "frames": best["frames"],
                             "offload": best["offload"], "device": kind},
                "fits": fits,
                "command": f"localvideo generate \"...\" --model {best['model']}"}
    # No usable GPU: a hosted provider runs the model instead (the prompt, and an image if
    # given, go to it — generate shows what and asks first). Veo's model name is from
    # Google's Vertex AI model list; the other providers' names depend on the account.
    return {"suited": False,
            "reason": "no usable GPU: open video models need one (CPU runs take hours); a "
                      "hosted provider runs them instead (replicate, fal, veo, runway)",
            "settings": {"backend": "veo", "model": HOSTED_MODEL,
                         "alternatives": [
                             "localvideo generate \"...\" --backend replicate --model OWNER/NAME",
                             "localvideo generate \"...\" --backend fal --model fal-ai/ENDPOINT",
                             "localvideo generate \"...\" --backend runway --model gen4.5",
                             "localvideo generate \"...\" --backend comfyui --comfy-url "
                             "http://GPU-HOST:8188   # a GPU machine of yours"]},
            "fits": [],
            "command": f"localvideo keys set veo && localvideo generate \"...\" --backend veo "
                       f"--model {HOSTED_MODEL}"}


def run_checks(settings: Settings, *, plan: PlanFn | None = None,
               models: ModelsFn | None = None) -> dict[str, Any]:
    start = time.perf_counter()
    display = check_display(settings)
    prompt = bool((display.data or {}).get("prompt"))
    checks = {
        "display": display,
        "capture": Check("capture", True, "not tried: the xdg-desktop-portal would show its "
                         "screen-picker dialog; `localvideo record` asks once")
        if display.ok and prompt else check_capture(settings) if display.ok else
        Check("capture", False, "skipped: no display", display.fix),
        "encoders": check_encoders(settings),
        "tesseract": check_tesseract(settings.analyze.ocr_engine),
        "gpu": check_gpu(),
        "disk": check_disk(settings.data_dir, settings.record.min_free_bytes),
        "privacy": check_privacy(settings.data_dir),
    }
    if not shutil.which("ffmpeg"):
        # Not required (PyAV carries FFmpeg); ffprobe is handy to inspect chunks by hand.
        checks["ffmpeg"] = Check("ffmpeg", True, "ffmpeg CLI not installed (optional)",
                                 install_command("ffmpeg"))
    else:
        checks["ffmpeg"] = Check("ffmpeg", True, f"ffmpeg CLI at {shutil.which('ffmpeg')}")
    install = list(dict.fromkeys(c.fix for c in checks.values() if not c.ok and c.fix))
    return {
        "platform": {"system": platform.system(), "release": platform.release(),
                     "machine": platform.machine(), "python": sys.version.split()[0]},
        "checks": [asdict(c) for c in checks.values()],
        "jobs": {"observe": _observe_verdict(checks, settings),
                 "synthesize": _synth_verdict(checks, plan, models)},
        "install": install,
        "seconds": round(time.perf_counter() - start, 2),
    }
