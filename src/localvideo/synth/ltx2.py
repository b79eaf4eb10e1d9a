"""LTX-2 (Lightricks): video and its sound track generated together, text or image to video.

One 19B transformer denoises video latents and audio latents side by side (each attends to
the other). The video VAE compresses 32× in space and 8× in time (patch 1), so sizes are
multiples of 32 and frame counts 8k+1; the frame rate is an input (``frame_rate``, from
--fps), and the sound lasts as long as the frames do. Prompts go through Gemma 3 12B, whose
hidden states "connectors" turn into the video and audio conditions.

The sound is kept: its latents are saved with the video latents (in ``meta``), decoded by the
audio VAE into a mel spectrogram, turned into a waveform by the vocoder (24 kHz stereo for
LTX-2.0) and muxed into the MP4 as AAC. ``localvideo decode`` does the same from the file.

With ``output_type="latent"`` the pipeline returns the video latents already unpacked and
denormalised, and the audio latents unpacked and denormalised: the decode below is the
pipeline's own from there. Its decode noise defaults to none (``decode_timestep`` 0), which
is what is used here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .family import Family, Request, model_index, read_config
from .presets import ResolvedModel

# The pipeline's own defaults for the decode (no noise added before the VAE decode).
DECODE_TIMESTEP = 0.0


class LTX2(Family):
    name = "ltx2"
    t2v_pipeline = "LTX2Pipeline"
    i2v_pipeline = "LTX2ImageToVideoPipeline"
    defaults = {"height": 512, "width": 768, "frames": 121, "fps": 24, "steps": 30,
                "guidance": 3.0}

    def vae_factors(self, vae_cfg: dict[str, Any]) -> tuple[int, int]:
        # As AutoencoderKLLTX2Video computes them: the config's ratios, else patch × 2^scalings.
        if not vae_cfg:
            return 32, 8
        scale = 2 ** sum(bool(s) for s in vae_cfg.get("spatio_temporal_scaling", ()))
        spatial = vae_cfg.get("spatial_compression_ratio") or vae_cfg.get("patch_size", 1) * scale
        temporal = (vae_cfg.get("temporal_compression_ratio")
                    or vae_cfg.get("patch_size_t", 1) * scale)
        return int(spatial), int(temporal)

    def multiples(self, model_dir: Path | None) -> tuple[int, int]:
        _, temporal = self.vae_factors(read_config(model_dir, "vae") if model_dir else {})
        # The pipelines check height/width % 32 whatever the VAE.
        return 32, temporal

    def pipeline_class(self, model: ResolvedModel, *, with_image: bool) -> str:
        # The text and image pipelines take the same components: one folder serves both.
        if with_image:
            return self.i2v_pipeline
        return super().pipeline_class(model, with_image=False)

    def needs_image(self, model: ResolvedModel) -> bool:
        return model.pipeline == self.i2v_pipeline

    def extra_kwargs(self, pipe: Any, req: Request) -> dict[str, Any]:
        return {"frame_rate": float(req.fps), "decode_timestep": DECODE_TIMESTEP}

    def denoise(self, pipe: Any, req: Request, *, generator: Any,
                on_step: Callable[[int, int], None] | None = None) -> Any:
        # The pipeline returns (video latents, audio latents): the shared steps keep the
        # video, and the audio is kept on the pipeline for latent_meta, which the engine
        # calls next with the same pipeline.
        def keep_audio(**kwargs: Any) -> Any:
            out = pipe(**kwargs)
            pipe._localvideo_audio_latents = out.audio
            return out

        return super().denoise(_Calling(pipe, keep_audio), req, generator=generator,
                               on_step=on_step)

    def latent_meta(self, pipe: Any, req: Request) -> dict[str, Any]:
        audio = getattr(pipe, "_localvideo_audio_latents", None)
        meta: dict[str, Any] = {"decode_timestep": DECODE_TIMESTEP,
                                "timestep_conditioning": bool(pipe.vae.config.timestep_conditioning)}
        if audio is not None:
            meta["audio_latents"] = audio.detach().to("cpu")
            meta["audio_rate"] = int(pipe.vocoder.config.output_sampling_rate)
        return meta

    def decode(self, vae: Any, latents: Any, meta: dict[str, Any], *, generator: Any,
               device: str) -> Any:
        import torch

        latents = latents.to(device=device, dtype=vae.dtype)
        timestep = None
        if meta.get("timestep_conditioning"):
            # decode_noise_scale defaults to decode_timestep (0): the noise blend is a no-op.
            timestep = torch.tensor([meta["decode_timestep"]] * latents.shape[0],
                                    device=latents.device, dtype=latents.dtype)
        return vae.decode(latents, timestep, return_dict=False)[0]

    # -- sound ---------------------------------------------------------------------------
    def load_audio(self, model_dir: Path, dtype: Any) -> Any:
        import diffusers
        import diffusers.pipelines.ltx2 as ltx2_pipelines

        from .torchdeps import dtype_kwargs

        index = model_index(model_dir)
        vae_cls = getattr(diffusers, str(index.get("audio_vae", [None, "AutoencoderKLLTX2Audio"])[1]))
        voc_name = str(index.get("vocoder", [None, "LTX2Vocoder"])[1])
        voc_cls = getattr(ltx2_pipelines, voc_name, None) or getattr(diffusers, voc_name)
        kw = dtype_kwargs(dtype)
        return _Audio(vae_cls.from_pretrained(str(model_dir), subfolder="audio_vae", **kw),
                      voc_cls.from_pretrained(str(model_dir), subfolder="vocoder", **kw))

    def decode_audio(self, source: Any, meta: dict[str, Any], *,
                     device: str) -> tuple[Any, int] | None:
        audio = meta.get("audio_latents")
        if audio is None or source is None:
            return None
        audio_vae, vocoder = source.audio_vae, source.vocoder
        audio_vae.to(device)
        vocoder.to(device)
        mel = audio_vae.decode(audio.to(device=device, dtype=audio_vae.dtype),
                               return_dict=False)[0]
        wave = vocoder(mel.to(vocoder.dtype))
        samples = wave[0].float().clamp(-1, 1).cpu().numpy()     # (channels, n)
        return samples, int(meta.get("audio_rate") or vocoder.config.output_sampling_rate)


class _Audio:
    """The two audio components, shaped like the pipeline for decode_audio."""

    def __init__(self, audio_vae: Any, vocoder: Any) -> None:
        self.audio_vae, self.vocoder = audio_vae.eval(), vocoder.eval()


class _Calling:
    """The pipeline, called through ``fn``: attributes are the pipeline's own."""

    def __init__(self, pipe: Any, fn: Callable[..., Any]) -> None:
        self._pipe, self._fn = pipe, fn

    def __call__(self, **kwargs: Any) -> Any:
        return self._fn(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)
