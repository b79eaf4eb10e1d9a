"""The memory planner's decisions, as a pure function of VRAM, model and video size."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from localvideo.cli import app
from localvideo.synth.planner import GB, estimate, make_plan
from localvideo.synth.presets import PRESETS

SIZES_GB = (8, 12, 16, 24, 80)


def plan_for(name: str, vram_gb: float, **size: int):  # type: ignore[no-untyped-def]
    p = PRESETS[name]
    args = {"height": p.height, "width": p.width, "frames": p.frames, **size}
    return make_plan(p.profile, device="cuda", vram_bytes=int(vram_gb * GB),
                     guidance=p.guidance, **args)


def test_wan_1_3b_480p_fits_in_8gb_with_offload() -> None:
    plan = plan_for("wan2.1-t2v-1.3b", 8)
    assert plan.fits and plan.offload in ("group", "sequential")
    assert plan.estimate["peak"] <= 8 * GB * 0.9
    assert plan.dtype == "bfloat16"
    # Its UMT5-XXL text encoder alone (11.4 GB in bf16) rules out model offload at 8 GB.
    assert any("offload=model" in r and "does not fit" in r for r in plan.reasons)


def test_wan_1_3b_decisions_across_sizes() -> None:
    offloads = {gb: plan_for("wan2.1-t2v-1.3b", gb).offload for gb in SIZES_GB}
    assert offloads == {8: "group", 12: "group", 16: "model", 24: "none", 80: "none"}
    # More memory never buys a slower strategy.
    order = ["none", "model", "group", "sequential"]
    ranks = [order.index(offloads[gb]) for gb in SIZES_GB]
    assert ranks == sorted(ranks, reverse=True)


def test_hunyuan_720p_fits_24gb_with_fp8_or_group_offload_and_tiling() -> None:
    plan = plan_for("hunyuanvideo", 24)
    assert plan.fits
    assert plan.fp8 or plan.offload == "group"
    assert plan.vae_tiling, "the untiled 720p×129 decode alone is far beyond 24 GB"
    assert plan.estimate["peak"] <= 24 * GB * 0.9
    assert plan.fp8_components == (["transformer"] if plan.fp8 else [])


def test_hunyuan_720p_at_80gb_needs_no_offload_but_tiles_the_decode() -> None:
    plan = plan_for("hunyuanvideo", 80)
    assert plan.fits and plan.offload == "none" and not plan.fp8
    assert plan.vae_tiling


def test_hunyuan_720p_does_not_fit_8gb_and_says_what_to_lower() -> None:
    plan = plan_for("hunyuanvideo", 8)
    assert not plan.fits
    assert any("lower --height/--width/--frames" in r for r in plan.reasons)
    # A smaller clip does fit the same card.
    small = plan_for("hunyuanvideo", 8, height=320, width=512, frames=33)
    assert small.fits


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_has_a_plan_at_every_size(name: str) -> None:
    for gb in SIZES_GB:
        plan = plan_for(name, gb)
        if plan.fits:
            assert plan.estimate["peak"] <= plan.budget_bytes
        assert plan.reasons
    assert plan_for(name, 80).fits, f"{name} should fit an 80 GB card"


def test_tiling_switches_on_exactly_when_the_untiled_decode_does_not_fit() -> None:
    p = PRESETS["cogvideox-5b"]
    kw = {"height": p.height, "width": p.width, "frames": p.frames, "guidance": p.guidance,
          "dtype": "bfloat16"}
    for gb in SIZES_GB:
        plan = plan_for("cogvideox-5b", gb)
        if not plan.fits:
            continue
        untiled = estimate(p.profile, offload=plan.offload, fp8=plan.fp8, tiled=False, **kw)
        assert plan.vae_tiling == (untiled["peak"] > plan.budget_bytes)


def test_cfg_doubles_activations_only_where_it_is_batched() -> None:
    common = {"offload": "none", "fp8": False, "tiled": False, "dtype": "bfloat16",
              "height": 480, "width": 832, "frames": 81}
    cog = PRESETS["cogvideox-2b"].profile      # cond + uncond in one batch
    with_cfg = estimate(cog, guidance=6.0, **common)
    without = estimate(cog, guidance=1.0, **common)
    assert with_cfg["activations"] == 2 * without["activations"]
    wan = PRESETS["wan2.1-t2v-1.3b"].profile   # two passes, one after the other
    assert estimate(wan, guidance=5.0, **common)["batch"] == 1
    hy = PRESETS["hunyuanvideo"].profile       # guidance is distilled into HunyuanVideo
    assert estimate(hy, guidance=6.0, **common)["batch"] == 1


def test_cpu_and_mps_dtypes() -> None:
    prof = PRESETS["ltx-video"].profile
    cpu = make_plan(prof, device="cpu", vram_bytes=None, height=480, width=704, frames=161,
                    guidance=3.0)
    assert (cpu.dtype, cpu.offload, cpu.fits) == ("float32", "none", True)
    mps = make_plan(prof, device="mps", vram_bytes=None, height=480, width=704, frames=161,
                    guidance=3.0)
    assert mps.dtype == "float16"


@pytest.mark.parametrize("gb", SIZES_GB)
def test_plan_flag_explains_itself(gb: int, data_dir) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    res = runner.invoke(app, ["generate", "a fox", "--model", "wan2.1-t2v-1.3b",
                              "--max-vram", f"{gb}GB", "--plan", "--json",
                              "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert plan["model"] == "wan2.1-t2v-1.3b" and plan["vram_bytes"] == gb * GB
    assert plan["fits"] and any(r.startswith("chosen:") for r in plan["reasons"])
    assert plan["params"] == {"frames": 81, "height": 480, "width": 832, "fps": 16.0,
                              "steps": 50, "guidance": 5.0}
    # Planning needs no weights: nothing was downloaded or created under models/.
    assert not (data_dir / "models").exists()
    text = runner.invoke(app, ["generate", "a fox", "--model", "hunyuanvideo", "--max-vram",
                               f"{gb}GB", "--plan", "--data-dir", str(data_dir)])
    assert text.exit_code == 0
    assert "estimated peak" in text.output and "offload" in text.output


# -- against figures the planner did not produce ---------------------------------------------

@pytest.mark.parametrize("name,frames,height,width,tokens", [
    # Wan 2.1's own generate.py: seq_len 32760 for 81 frames at 480×832 (4× time, 8× space
    # VAE, 2×2 patches: 21 × 30 × 52).
    ("wan2.1-t2v-1.3b", 81, 480, 832, 32760),
    # HunyuanVideo paper: 129 frames at 720×1280 → 33 × 90 × 160 latents, 2×2 patches.
    ("hunyuanvideo", 129, 720, 1280, 33 * 45 * 80),
    # CogVideoX: 49 frames at 480×720 → 13 latent frames of 60 × 90, 2×2 patches: 17550.
    ("cogvideox-5b", 49, 480, 720, 17550),
    # LTX-Video: 32× space, 8× time, no patching: 121 frames at 512×768 → 16 × 16 × 24.
    ("ltx-video", 121, 512, 768, 6144),
])
def test_latent_tokens_are_the_published_sequence_lengths(name: str, frames: int, height: int,
                                                          width: int, tokens: int) -> None:
    plan = plan_for(name, 80, frames=frames, height=height, width=width)
    assert plan.latent["tokens"] == tokens


@pytest.mark.synth
@pytest.mark.parametrize("name", ["wan2.1-t2v-1.3b", "hunyuanvideo", "ltx-video",
                                  "cogvideox-5b"])
def test_weight_bytes_are_the_parameters_counted_in_the_real_configs(name: str) -> None:
    """Weights per strategy against parameters counted module by module in the published
    configurations (built on PyTorch's meta device: shapes only), not the registry's table."""
    try:
        from realsize import build_components, count_params
    except ImportError as exc:
        pytest.fail(f"the synth extra is needed to count real parameters: {exc} "
                    "(pip install -e '.[synth]')")
    counted = {c: count_params(m) for c, m in build_components(name, "meta").items()}
    p = PRESETS[name]
    common = {"height": p.height, "width": p.width, "frames": p.frames,
              "guidance": p.guidance, "tiled": True, "dtype": "bfloat16"}
    resident = estimate(p.profile, offload="none", fp8=False, **common)["weights"]
    assert resident == pytest.approx(2 * sum(counted.values()), rel=0.03)
    one_at_a_time = estimate(p.profile, offload="model", fp8=False, **common)["weights"]
    assert one_at_a_time == pytest.approx(2 * max(counted.values()), rel=0.03)
    # fp8 stores the transformer in one byte per parameter; the others stay bf16.
    fp8 = estimate(p.profile, offload="model", fp8=True, **common)["weights"]
    others = [n for c, n in counted.items() if c != "transformer"]
    assert fp8 == pytest.approx(max(counted["transformer"], 2 * max(others)), rel=0.03)
