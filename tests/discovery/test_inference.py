"""The table of candidate examples, on small layers modelled on the failure classes of real ones."""
import pytest
import torch

from pytest_nncheck import check_gradients
from pytest_nncheck.discovery import CannotBuild, Layer, build_example
from pytest_nncheck.discovery import inference
from tests.discovery import zoo
from tests.state import assert_unchanged, snapshot


def layer(cls):
    return Layer("tests.discovery.zoo", cls.__name__, cls)


def shapes(example):
    return [tuple(value.shape) for value in example.inputs]


@pytest.mark.parametrize("cls, description, input_shapes", [
    (zoo.StemBlock, "StemBlock(in_chs=16, out_chs=16) on (2, 16)", [(2, 16)]),
    (zoo.DividingHeads, "DividingHeads(dim=16) on (2, 6, 16)", [(2, 6, 16)]),
    (zoo.OddHeads, "OddHeads(dim=16, num_heads=2) on (2, 6, 16)", [(2, 6, 16)]),
    (zoo.SquaredReLU, "SquaredReLU() on (2, 16)", [(2, 16)]),
    (zoo.BoxFilter, "BoxFilter() on (2, 3, 8, 8)", [(2, 3, 8, 8)]),
    (zoo.RgbToGray, "RgbToGray() on (2, 3, 8, 8)", [(2, 3, 8, 8)]),
    (zoo.FocalLoss, "FocalLoss() on input (2, 3, 8, 8), target (2, 8, 8) int64",
     [(2, 3, 8, 8), (2, 8, 8)]),
    (zoo.CharbonnierLoss, "CharbonnierLoss() on input (2, 3, 8, 8), target (2, 3, 8, 8)",
     [(2, 3, 8, 8), (2, 3, 8, 8)]),
    (zoo.SelfAttention, "SelfAttention(embed_dim=16) on (2, 6, 16)", [(2, 6, 16)]),
    (zoo.ConvBlock, "ConvBlock(in_channels=16, out_channels=16) on (2, 16, 8, 8)", [(2, 16, 8, 8)]),
    (zoo.MeanGraphConv, "MeanGraphConv(in_channels=16, out_channels=16) on x (6, 16), "
                        "edge_index (2, 16) int64", [(6, 16), (2, 16)]),
    (zoo.ScaledSwish, "ScaledSwish on (2, 16)", [(2, 16)]),
    (zoo.Multiply, "Multiply on a (2, 16), b (2, 16)", [(2, 16), (2, 16)]),
    (zoo.NormThenReLU, "NormThenReLU(features=16) on (2, 16)", [(2, 16)]),
    (zoo.TokenEmbedding, "TokenEmbedding(dim=16, num_tokens=10) on (2, 6) int64", [(2, 6)]),
    (zoo.PairSigmaBlur, "PairSigmaBlur(kernel_size=(3, 3), sigma=(1.0, 1.0)) on (2, 3, 8, 8)",
     [(2, 3, 8, 8)]),
    (zoo.RgbaToRgb, "RgbaToRgb() on (2, 4, 8, 8)", [(2, 4, 8, 8)]),
    (zoo.BoundaryLoss, "BoundaryLoss() on pred (2, 3, 8, 8), target (2, 1, 8, 8) int64",
     [(2, 3, 8, 8), (2, 1, 8, 8)]),
    (zoo.RelationalGraphConv, "RelationalGraphConv(in_channels=16, out_channels=16, "
                              "num_relations=2) on x (6, 16), edge_index (2, 16) int64, edge_type "
                              "(16,) int64", [(6, 16), (2, 16), (16,)]),
    (zoo.PointConv, "PointConv(in_channels=16, out_channels=16) on x (6, 16), pos (6, 3), "
                    "edge_index (2, 16) int64", [(6, 16), (6, 3), (2, 16)]),
    (zoo.ChannelsDefaultNone, "ChannelsDefaultNone(spatial_dims=2, in_channels=16, "
                              "out_channels=16) on (2, 16, 8, 8)", [(2, 16, 8, 8)]),
    (zoo.DepthwiseConv, "DepthwiseConv(in_channels=16, kernel_size=(3, 3), groups=16) on "
                        "(2, 16, 8, 8)", [(2, 16, 8, 8)]),
    (zoo.TimeConditioned, "TimeConditioned(dim=16) on (2, 16)", [(2, 16)]),
])
def test_the_first_candidate_that_runs_is_built_and_checks(cls, description, input_shapes):
    example = build_example(layer(cls), {}, seed=0)
    assert example.description == description
    assert shapes(example) == input_shapes
    assert not example.explicit and example.options == {}
    report = check_gradients(example.fn, *example.inputs, seed=0)
    assert report.passed, report.render()


def test_no_degenerate_width_puts_a_norm_on_the_next_relus_kink():
    example = build_example(layer(zoo.NormThenReLU), {}, seed=0)
    report = check_gradients(example.fn, *example.inputs, seed=0)
    assert example.inputs[0].shape[-1] > 1
    assert report.kinks_crossed == 0 and report.passed


def test_colour_and_filter_inputs_are_pixel_intensities_and_activations_get_signed_values():
    image = build_example(layer(zoo.RgbToGray), {}, seed=0).inputs[0]
    assert 0 < image.min() and image.max() < 1
    vector = build_example(layer(zoo.SquaredReLU), {}, seed=0).inputs[0]
    assert vector.min() < 0 < vector.max()


def test_graph_has_no_self_loops_and_every_node_receives_an_edge():
    x, edge_index = build_example(layer(zoo.MeanGraphConv), {}, seed=0).inputs
    assert edge_index.dtype == torch.int64
    assert (edge_index[0] != edge_index[1]).all()
    assert set(edge_index[1].tolist()) == set(range(x.shape[0]))
    assert edge_index.max() < x.shape[0]


def test_loss_targets_do_not_require_grad():
    _, target = build_example(layer(zoo.CharbonnierLoss), {}, seed=0).inputs
    assert not target.requires_grad


@pytest.fixture
def runs(monkeypatch):
    """The descriptions of the candidates whose forward inference runs, in order."""
    described = []
    original = inference.forward_problem
    monkeypatch.setattr(inference, "forward_problem",
                        lambda example: described.append(example.description) or original(example))
    return described


def test_search_is_lazy_and_stops_at_the_first_candidate_that_runs(runs):
    build_example(layer(zoo.SelfAttention), {}, seed=0)
    assert runs == ["SelfAttention(embed_dim=16) on (2, 6, 16)"]
    runs.clear()
    build_example(layer(zoo.OddHeads), {}, seed=0)
    # Two constructors raised before any forward ran; the first submodule (Linear) put (B, C)
    # before (B, T, C).
    assert runs == ["OddHeads(dim=16, num_heads=2) on (2, 16)",
                    "OddHeads(dim=16, num_heads=2) on (2, 6, 16)"]


def test_every_construction_gets_its_share_of_candidates(runs):
    build_example(layer(zoo.PairSigmaBlur), {}, seed=0)
    first = [run for run in runs if "sigma=1.0" in run]
    assert len(first) == inference.MAX_CANDIDATES // 2  # two distinct constructions
    assert runs[len(first):] == ["PairSigmaBlur(kernel_size=(3, 3), sigma=(1.0, 1.0)) on "
                                 "(2, 3, 8, 8)"]


def test_no_candidate_runs_lists_what_was_tried_and_the_last_error():
    with pytest.raises(CannotBuild) as raised:
        build_example(layer(zoo.AlwaysRaises), {}, seed=0)
    error = raised.value
    assert 1 < len(error.tried) <= inference.MAX_CANDIDATES
    assert error.tried[0] == "AlwaysRaises(dim=16) on (2, 16)"
    assert error.last_error.startswith("RuntimeError: unsupported input of shape")
    message = str(error)
    assert message.startswith("cannot infer an example for tests.discovery.zoo.AlwaysRaises: "
                              f"no candidate ran (tried {len(error.tried)}: AlwaysRaises(dim=16) "
                              "on (2, 16); AlwaysRaises(dim=16) on (2, 6, 16);")
    assert "last error: RuntimeError: unsupported input of shape" in message
    assert "; forward(x); register one: @pytest_nncheck.example(lambda: (AlwaysRaises(...), " \
           "torch.randn(..., dtype=torch.float64, requires_grad=True)))" in message


def test_a_candidate_with_a_nonfinite_output_is_passed_over():
    class LogLayer(torch.nn.Module):
        def forward(self, x):
            return torch.log(x)

    example = build_example(Layer("here", "LogLayer", LogLayer), {}, seed=0)
    assert example.description == "LogLayer() on (2, 3, 8, 8)"  # positive pixel values


def test_build_leaves_every_random_state_and_global_setting_as_it_was():
    before = snapshot([])
    build_example(layer(zoo.Dropout), {}, seed=3)
    build_example(layer(zoo.ConvBlock), {})
    assert_unchanged(before, snapshot([]))


def test_the_same_seed_builds_the_same_example():
    first = build_example(layer(zoo.ConvBlock), {}, seed=5)
    second = build_example(layer(zoo.ConvBlock), {}, seed=5)
    assert torch.equal(first.inputs[0], second.inputs[0])
    assert torch.equal(first.fn.conv.weight, second.fn.conv.weight)
    other = build_example(layer(zoo.ConvBlock), {}, seed=6)
    assert not torch.equal(first.inputs[0], other.inputs[0])
