"""Encoder options and formats as FFmpeg itself defines them (issue 9, items 3 and 4).

PyAV hands an options dict to ``avcodec_open2`` and keeps quiet about keys no AVOption
matches, so a wrong name (``q:v`` is an ffmpeg *command-line* shorthand, not an AVOption)
leaves the quality uncontrolled without a word. These tests hold every key we pass against
the option tables of the real FFmpeg program here (``ffmpeg -h full`` for the options every
encoder has, ``ffmpeg -h encoder=NAME`` for an encoder's own); VideoToolbox is not in a
Linux build, so its table is copied from FFmpeg's libavcodec/videotoolboxenc.c
(COMMON_OPTIONS + hevc_options) — the one fake here.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import av
import numpy as np
import pytest

from localvideo import media
from localvideo.record import encoder as enc
from localvideo.record.encoder import HW_HEVC, encoder_options, plan_encoders

# libavcodec/videotoolboxenc.c: COMMON_OPTIONS and hevc_options (FFmpeg 7).
VIDEOTOOLBOX_HEVC_OPTIONS = {
    "allow_sw", "require_sw", "realtime", "frames_before", "frames_after", "prio_speed",
    "power_efficient", "spatial_aq", "max_ref_frames", "profile", "alpha_quality",
    "constant_bit_rate",
}


@cache
def _ffmpeg_help(*args: str) -> str:
    return subprocess.run(["ffmpeg", "-hide_banner", *args], capture_output=True, text=True,
                          timeout=30).stdout


def _option_names(text: str) -> set[str]:
    return set(re.findall(r"^  -([A-Za-z0-9_-]+)\s", text, re.M))


@cache
def generic_options() -> set[str]:
    """The AVOptions of every AVCodecContext (b, flags, global_quality, threads, ...)."""
    text = _ffmpeg_help("-h", "full")
    start = text.index("AVCodecContext AVOptions:")
    end = text.find("\n\n", start)
    return _option_names(text[start:end])


def private_options(name: str) -> set[str]:
    if name == "hevc_videotoolbox":
        return VIDEOTOOLBOX_HEVC_OPTIONS
    text = _ffmpeg_help("-h", f"encoder={name}")
    assert f"Encoder {name} " in text, f"the ffmpeg program here lacks {name}: cannot check"
    return _option_names(text)


@pytest.mark.parametrize("machine", ["arm64", "x86_64"])
@pytest.mark.parametrize("name", ["libx264", "libx265", *HW_HEVC])
def test_every_option_is_an_avoption_ffmpeg_knows(name: str, machine: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    known = generic_options() | private_options(name)
    assert {"b", "flags", "global_quality", "threads"} <= generic_options()
    monkeypatch.setattr("platform.machine", lambda: machine)
    opts = encoder_options(name, 32)
    unknown = sorted(k for k in opts if k not in known)
    assert not unknown, f"{name} on {machine}: FFmpeg has no option {unknown}"


def test_videotoolbox_quality_per_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    # Apple Silicon: constant quality — the qscale flag with global_quality on the lambda
    # scale, which is what `-q:v 60` means on the command line (60 × FF_QP2LAMBDA).
    monkeypatch.setattr("platform.machine", lambda: "arm64")
    arm = encoder_options("hevc_videotoolbox", 32)
    assert arm["flags"] == "+qscale" and int(arm["global_quality"]) == 60 * 118
    assert "b" not in arm
    # Intel: FFmpeg refuses qscale there ("qscale not available for encoder. Use -b:v
    # bitrate instead"), so a bitrate, falling as the CRF-style number rises.
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    intel = encoder_options("hevc_videotoolbox", 32)
    assert "flags" not in intel and "global_quality" not in intel and "q:v" not in intel
    assert int(intel["b"]) == 400_000
    assert int(encoder_options("hevc_videotoolbox", 26)["b"]) == 800_000


def test_cli_arguments_carry_no_q_v(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The cli: path turns the same dict into arguments: on an Intel Mac `-q:v` made ffmpeg
    # exit at once. Capture the command line it would run.
    from localvideo.record import ffmpeg_cli

    seen: list[list[str]] = []

    class Stop(Exception):
        pass

    def popen(cmd: list[str], **kw: object) -> None:
        seen.append(cmd)
        raise Stop

    monkeypatch.setattr(ffmpeg_cli.subprocess, "Popen", popen)
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    with pytest.raises(Stop):
        enc.open_writer(tmp_path / "c.mp4", 64, 64, "cli:hevc_videotoolbox", 32)
    (cmd,) = seen
    assert "-q:v" not in cmd and "-b" in cmd and cmd[cmd.index("-b") + 1] == "400000"


def test_options_reach_the_encoder_in_process(tmp_path: Path) -> None:
    # What PyAV does with the generic options, on a real encoder: flags and global_quality
    # are consumed (none left over), while `q:v` would be left unused, silently.
    out = media.VideoOutput(tmp_path / "o.mp4", "mp4")
    out.add_stream("libx264", 64, 64, time_base=enc.TIME_BASE,
                   options={"flags": "+qscale", "global_quality": "7080", "q:v": "60"})
    out.encode(media.frame_from_ndarray(np.zeros((64, 64, 3), np.uint8)))
    cc = out._stream.codec_context
    assert cc.qscale and dict(cc.options) == {"q:v": "60"}
    out.flush()
    out.close()


@pytest.mark.parametrize("name", [n for n in HW_HEVC if media.has_encoder(n) is None])
def test_each_encoder_opens_with_a_pixel_format_it_takes(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Quick Sync takes nv12 and never yuv420p: opened as yuv420p it failed on every machine.
    # The formats are PyAV's own table for the encoder; the one the chunk writer asks for
    # is read where it hands it over (the hardware itself is not here to open).
    formats = [f.name for f in av.codec.Codec(name, "w").video_formats or []]
    asked: list[str] = []

    def add_stream(self: object, codec: str, w: int, h: int, **kw: object) -> None:
        asked.append(str(kw.get("pix_fmt", "yuv420p")))
        raise ValueError("stop here")

    monkeypatch.setattr(media.VideoOutput, "add_stream", add_stream)
    with pytest.raises(enc.EncoderError):
        enc.ChunkWriter(tmp_path / "c.mp4", 64, 64, name, 28)
    assert asked and asked[0] in formats, (name, asked, formats)


def test_a_hardware_encoder_failing_in_process_is_tried_through_the_cli(
        tmp_path: Path) -> None:
    # hevc_qsv is in PyAV's build but cannot open here (no Intel GPU): the old plan stopped
    # there; the CLI path is now probed too, for real, and its own reason is kept.
    assert media.has_encoder("hevc_qsv") is None, "PyAV's build here lacks hevc_qsv"
    plan = plan_encoders(tmp_path, "hevc")
    assert plan.tried["hevc_qsv"] and not plan.tried["hevc_qsv"].startswith("not in PyAV")
    assert "cli:hevc_qsv" in plan.tried and plan.tried["cli:hevc_qsv"]
    assert plan.chain[-1] == "libx265"


def test_cli_is_used_when_in_process_fails_and_the_cli_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine this is meant for (a GPU the system ffmpeg drives, PyAV's cannot): the
    # in-process encode fails, the CLI one works. Modelled with libx265 standing in for the
    # CLI's encoder: the CLI probe below is a real ffmpeg process encoding a frame.
    real = enc.test_encode

    def probe_one(name: str) -> str | None:
        if name == "hevc_nvenc":
            return "hevc_nvenc failed on frame 0 of probe.mp4: [Errno 22] Invalid argument"
        if name == "cli:hevc_nvenc":
            return real("cli:libx265")
        return real(name) if name in ("libx265",) else "not here"

    monkeypatch.setattr(enc, "test_encode", probe_one)
    monkeypatch.setattr(enc, "HW_HEVC", ("hevc_nvenc",))
    monkeypatch.setattr(media, "has_encoder", lambda n: None)
    import localvideo.record.ffmpeg_cli as cli
    monkeypatch.setattr(cli, "cli_has_encoder", lambda n: True)
    plan = plan_encoders(tmp_path, "hevc")
    assert plan.chain == ["cli:hevc_nvenc", "libx265"]
