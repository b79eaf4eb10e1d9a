"""Chunk writer through the ffmpeg CLI, for an encoder PyAV's own FFmpeg build lacks.

PyAV in-process is the default path (no second process, no pipe copies). Some systems have
an ``ffmpeg`` binary with an encoder the PyAV wheel was built without (a distribution
ffmpeg with VAAPI or NVENC, Homebrew's with VideoToolbox); the encoder chain can use it as
``cli:<encoder>``.

Frames go to ffmpeg as raw yuv420p inside NUT over stdin, so every frame keeps its own
millisecond timestamp (variable frame rate survives the pipe, which bare ``-f rawvideo`` at a
fixed ``-r`` would not). ffmpeg's stderr is read by a thread into the recorder log — never
sent to /dev/null.
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import threading
from pathlib import Path
from typing import IO

from .. import media
from ..errors import DependencyError, EncoderError
from ..supervise import stop_processes
from .encoder import TIME_BASE, ChunkFile

log = logging.getLogger("localvideo.record")

# The NUT header already describes the stream: start encoding at once instead of buffering
# ~5 MB to probe it (that held small frames back for seconds). ``-fflags nobuffer`` was
# tried too and broke the timestamps.
PROBE = ["-probesize", "32", "-analyzeduration", "0"]


def ffmpeg_path() -> str:
    path = shutil.which("ffmpeg")
    if not path:
        raise DependencyError("the ffmpeg program is not installed",
                              "install it (sudo apt-get install ffmpeg / brew install ffmpeg)")
    return path


@functools.cache
def _cli_encoders(ffmpeg: str) -> frozenset[str]:
    """The encoder names the ffmpeg program at ``ffmpeg`` lists (asked once per process: the
    probe asks about every hardware encoder that failed in process)."""
    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True,
                             text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(line.split()[1] for line in out.splitlines() if len(line.split()) > 1)


def cli_has_encoder(name: str) -> bool:
    try:
        return name in _cli_encoders(ffmpeg_path())
    except DependencyError:
        return False


class CliChunkWriter(ChunkFile):
    """Same interface as encoder.ChunkWriter, with the encoding done by an ffmpeg process."""

    def __init__(self, path: Path, width: int, height: int, encoder: str, codec: str,
                 options: dict[str, str], movflags: str) -> None:
        super().__init__(path, width, height, f"cli:{encoder}", codec)
        path.parent.mkdir(parents=True, exist_ok=True)
        args: list[str] = []
        for key, value in options.items():
            args += [f"-{key}", value]
        if codec == "hevc":
            args += ["-tag:v", "hvc1"]
        if encoder.endswith("_vaapi"):
            # VAAPI encodes from GPU surfaces: upload the frames first (unverified here: no
            # VAAPI device on the build machine, so the probe rejects it).
            args += ["-vaapi_device", "/dev/dri/renderD128", "-vf", "format=nv12,hwupload"]
        cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "warning",
               *PROBE,
               "-f", "nut", "-i", "pipe:0",
               "-c:v", encoder, *args, "-g", "1000000000", "-bf", "0",
               "-fps_mode", "passthrough", "-enc_time_base", "1:1000",
               "-movflags", movflags, "-flush_packets", "1", "-video_track_timescale", "1000",
               "-f", "mp4", "-y", str(path)]
        try:
            # Unbuffered stdin: each muxed packet reaches ffmpeg at once (flush_packets).
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, bufsize=0)
        except OSError as exc:
            raise EncoderError(f"cannot start ffmpeg for {encoder}: {exc}") from exc
        assert self._proc.stdin is not None and self._proc.stderr is not None
        self._errors: list[str] = []
        self._reader = threading.Thread(target=self._drain, args=(self._proc.stderr,),
                                        daemon=True)
        self._reader.start()
        try:
            self._nut = media.VideoOutput(self._proc.stdin, "nut", {"flush_packets": "1"})
            self._nut.add_stream("rawvideo", width, height, time_base=TIME_BASE, rate=1000)
        except (media.FFmpegError, ValueError) as exc:
            self._kill()
            raise EncoderError(f"cannot feed ffmpeg for {encoder}: {exc}") from exc

    def _drain(self, pipe: IO[bytes]) -> None:
        for raw in pipe:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._errors.append(line)
                del self._errors[:-20]
                log.warning("ffmpeg %s: %s", self.encoder, line)

    def write(self, frame: media.VideoFrame, pts_ms: int) -> None:
        pts_ms = self._stamp(frame, pts_ms)
        if self._proc.poll() is not None:
            self._reader.join(timeout=2)  # its last words may still be in the pipe
            raise EncoderError(f"{self.encoder} exited ({self._proc.returncode}) on frame "
                               f"{self.frames} of {self.path.name}: "
                               f"{'; '.join(self._errors[-3:]) or 'no message'}")
        self._encode(self._nut, frame)
        self._written(pts_ms)

    def _failure(self, exc: Exception) -> str:
        # What ffmpeg itself said is usually the real reason. A broken pipe means it is exiting:
        # give it a moment to say why and the reader thread to collect it.
        try:
            self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        else:
            self._reader.join(timeout=2)
        return f"{super()._failure(exc)}; {'; '.join(self._errors[-3:]) or 'ffmpeg said nothing'}"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._nut.flush()
            self._nut.close()
        except (media.FFmpegError, OSError, ValueError) as exc:
            log.error("closing the pipe to %s failed: %s", self.encoder, exc)
        try:
            if self._proc.stdin:
                self._proc.stdin.close()
        except OSError:
            pass
        # Its stdin is closed: that is the request to finish the file; killed if it hangs.
        stop_processes([self._proc], sig=None, timeout=30, group=False)
        rc = self._proc.returncode
        self._reader.join(timeout=5)
        if rc != 0:
            log.error("%s exited with %s for %s", self.encoder, rc, self.path)

    def _kill(self) -> None:
        self._closed = True
        self._proc.kill()
        self._proc.wait()
