import math

import pytest
import torch

from jepa.models.rope import Rope3D, apply_rope, grid_positions, rope_axis_dim, sincos_table_3d


def _rotate(x, pos, layout, head_dim):
    rope = Rope3D(head_dim, layout=layout)
    return apply_rope(x.view(1, 1, 1, head_dim), rope.angles(torch.tensor([[pos]], dtype=torch.float32)))


def test_axis_dim_matches_the_released_split():
    assert [rope_axis_dim(h) for h in (64, 80, 32, 88)] == [20, 26, 10, 28]


def test_tiled_layout_matches_a_hand_computed_example():
    # head_dim 12 -> 4 dims per axis, frequencies w = [1, 10000^(-1/2)] = [1, 0.01].
    # Tiled: element j uses w[j % 2] -> [1, .01, 1, .01]; pairs (0,1), (2,3) rotate with partner (-x1, x0).
    x = torch.zeros(12)
    x[:4] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    out = _rotate(x, (1.0, 0.0, 0.0), "tiled", 12).flatten()
    c1, s1, c2, s2 = math.cos(1), math.sin(1), math.cos(0.01), math.sin(0.01)
    expected = [1 * c1 - 2 * s1, 2 * c2 + 1 * s2, 3 * c1 - 4 * s1, 4 * c2 + 3 * s2]
    assert out[:4].tolist() == pytest.approx(expected, abs=1e-6)
    assert out[4:].abs().max() == 0  # height/width chunks and tail untouched (zero input)


def test_standard_layout_matches_a_hand_computed_example():
    x = torch.zeros(12)
    x[4:8] = torch.tensor([1.0, 2.0, 3.0, 4.0])  # the height chunk
    out = _rotate(x, (0.0, 2.0, 0.0), "standard", 12).flatten()
    c1, s1, c2, s2 = math.cos(2), math.sin(2), math.cos(0.02), math.sin(0.02)
    expected = [1 * c1 - 2 * s1, 2 * c1 + 1 * s1, 3 * c2 - 4 * s2, 4 * c2 + 3 * s2]
    assert out[4:8].tolist() == pytest.approx(expected, abs=1e-6)


def test_standard_layout_depends_only_on_position_differences():
    torch.manual_seed(0)
    head_dim = 32
    rope = Rope3D(head_dim, layout="standard")
    q, k = torch.randn(1, 1, 1, head_dim), torch.randn(1, 1, 1, head_dim)

    def dot(pq, pk):
        a = apply_rope(q, rope.angles(torch.tensor([pq], dtype=torch.float32)))
        b = apply_rope(k, rope.angles(torch.tensor([pk], dtype=torch.float32)))
        return (a * b).sum().item()

    base = dot((1, 2, 3), (4, 0, 5))
    shift = (3.0, -2.0, 7.0)
    shifted = dot(tuple(p + s for p, s in zip((1, 2, 3), shift)), tuple(p + s for p, s in zip((4, 0, 5), shift)))
    assert shifted == pytest.approx(base, rel=1e-5, abs=1e-5)
    # and it does depend on the difference
    assert dot((1, 2, 3), (5, 0, 5)) != pytest.approx(base, rel=1e-3)


def test_tiled_layout_is_not_relative_and_not_norm_preserving():
    torch.manual_seed(0)
    rope = Rope3D(64, layout="tiled")
    x = torch.randn(1, 1, 1, 64)
    y = apply_rope(x, rope.angles(torch.tensor([[3.0, 1.0, 2.0]])))
    assert abs(y.norm().item() / x.norm().item() - 1) > 1e-4


def test_unrotated_tail_and_zero_position_identity():
    rope = Rope3D(8, layout="tiled")  # 2 dims per axis -> 6 rotated, 2 left alone
    x = torch.randn(2, 3, 5, 8)
    y = apply_rope(x, rope.angles(torch.rand(5, 3) * 10))
    assert torch.equal(y[..., 6:], x[..., 6:])
    assert torch.allclose(apply_rope(x, rope.angles(torch.zeros(5, 3))), x)


def test_grid_positions_are_time_major_raster():
    pos = grid_positions(torch.tensor([0, 1, 3, 5, 6, 11]), (2, 2, 3))
    assert pos.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 2], [1, 0, 0], [1, 1, 2]]


def test_sincos_table_values():
    table = sincos_table_3d(8, (2, 2, 2))  # time 4 dims, height 2, width 2
    assert table.shape == (8, 8)
    row = table[7]  # t=1, h=1, w=1
    expected = [math.sin(1), math.sin(0.01), math.cos(1), math.cos(0.01), math.sin(1), math.cos(1),
                math.sin(1), math.cos(1)]
    assert row.tolist() == pytest.approx(expected, abs=1e-6)
    assert table[0].tolist() == pytest.approx([0, 0, 1, 1, 0, 1, 0, 1])


def test_unknown_layout_rejected():
    with pytest.raises(ValueError, match="unknown RoPE layout"):
        Rope3D(64, layout="interleaved")
