"""Synthesis: text/image → video with open models through diffusers, or a ComfyUI server.

presets (and family detection) → planner (memory plan) → one file per family (ltx, wan,
hunyuan, cogvideox) → engine (denoise, save latents, decode) → video (H.264 MP4).
torch and diffusers are imported lazily (torchdeps), so listing models and planning work
without the synth extra.
"""
