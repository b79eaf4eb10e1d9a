"""The planner's parameter counts are the true ones: every real-size configuration is built
on PyTorch's meta device (shapes only, no memory) and counted."""

from __future__ import annotations

import pytest
from realsize import REAL, build_components, count_params

from localvideo.synth.presets import PRESETS

pytestmark = pytest.mark.synth
pytest.importorskip("diffusers", reason="the synth extra is not installed")


@pytest.mark.parametrize("name", sorted(REAL))
def test_registry_counts_match_the_real_configs(name: str) -> None:
    profile = PRESETS[name].profile
    comps = build_components(name, "meta")
    assert set(comps) == set(profile.components), name
    for comp, module in comps.items():
        real = count_params(module)
        assert real == pytest.approx(profile.components[comp], rel=0.03), (name, comp, real)
    # The planner's transformer width and depth are the config's too.
    t = comps["transformer"].config
    # Kandinsky 5 gives its width as model_dim and its depth as num_visual_blocks.
    width = t.get("model_dim") or t.num_attention_heads * t.attention_head_dim
    assert width == profile.hidden
    depth = (t.get("num_layers") or t.get("num_visual_blocks")) + t.get("num_single_layers", 0)
    assert depth == profile.blocks["transformer"]


def test_build_real_makes_a_loadable_pipeline(monkeypatch: pytest.MonkeyPatch, data_dir,  # type: ignore[no-untyped-def]
                                              tmp_path) -> None:
    """The benchmark's builder (meta → empty → random fill → save) on a small config of the
    same shape as the real ones, then a real generation from the saved folder."""
    import av
    import plain
    from realsize import RealSpec, build_real

    from localvideo.service import Service

    spec = RealSpec(
        "WanPipeline",
        ("WanTransformer3DModel", {"patch_size": (1, 2, 2), "num_attention_heads": 2,
                                   "attention_head_dim": 12, "in_channels": 16,
                                   "out_channels": 16, "text_dim": 32, "freq_dim": 256,
                                   "ffn_dim": 32, "num_layers": 2, "cross_attn_norm": True,
                                   "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 32}),
        ("AutoencoderKLWan", {"base_dim": 3, "z_dim": 16, "dim_mult": [1, 1, 1, 1],
                              "num_res_blocks": 1, "temperal_downsample": [False, True, True]}),
        {"text_encoder": ("UMT5EncoderModel", "UMT5Config",
                          {"vocab_size": 64, "d_model": 32, "d_kv": 8, "d_ff": 37,
                           "num_layers": 2, "num_heads": 4})})
    monkeypatch.setitem(REAL, "small-wan", spec)
    folder = build_real("small-wan", tmp_path / "small-wan")
    r = plain.generate(Service.open(data_dir), "a fox", model_path=folder, frames=9,
                       height=16, width=16, steps=2, seed=0, out=tmp_path / "s.mp4")
    assert r["pipeline"] == "WanPipeline" and r["family"] == "wan"
    with av.open(r["abs_path"]) as c:
        assert sum(1 for _ in c.decode(video=0)) == 9
