"""The table of candidate examples tried for a layer nobody registered one for.

Like OpInfo's sample inputs, the candidates are data: constructions (widths, head counts, forms
of hyperparameters), constructor arguments by name, input layouts, hints that order the layouts
(from the class name, the first submodule, ``spatial_dims``) and the roles of forward arguments
(graph edges, loss targets). Candidates are generated lazily, in order, so that trying stops at
the first one that runs. The sizes avoid degenerate examples: no width of 1 (a LayerNorm over
one feature outputs exactly 0, on the next ReLU's kink), random values (never all equal), widths
that every common head count divides.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from .examples import describe_inputs

BATCH = 2
SEQUENCE = 6
LENGTH = 8
SIDE = 8
LARGE_SIDE = 16
GRAPH_NODES = 6
GRAPH_CHORDS = 4  # random edges added to the ring, so that node degrees differ
RELATIONS = 2  # edge types of a relational graph convolution; matches `num_relations` below
# Pixel intensities for parameter-free image layers: inside (0, 1), away from where colour
# conversions clamp or switch formula.
IMAGE_VALUES = (0.05, 0.95)
# Channel counts for layers whose width nothing tells: RGB first (colour conversions), then
# grayscale, RGBA, then a feature width.
UNKNOWN_CHANNELS = (3, 1, 4, 16)
UNKNOWN_FEATURES = (16,)


@dataclass(frozen=True)
class Construction:
    """One way to fill a constructor: the width, and which defaults are overridden."""

    width: int
    two_heads: bool = False  # head counts set to 2 even where they have a default
    alternative: bool = False  # the second form of hyperparameters that have one (pairs, tensors)


# 16 is divided by every common head count (1, 2, 4, 8, 16); 32 serves layers that halve twice.
CONSTRUCTIONS = (Construction(16), Construction(32), Construction(16, two_heads=True),
                 Construction(16, alternative=True))


@dataclass(frozen=True)
class ArgumentRule:
    """Constructor arguments filled by name: ``value(width)``, ``alternative(width)`` in the
    alternative construction, whether the two-heads construction overrides a default, and
    whether a default of None is filled."""

    names: Tuple[str, ...]
    value: Callable[[int], Any]
    alternative: Optional[Callable[[int], Any]] = None
    overrides_default: bool = False
    fills_none: bool = False  # a default of None means "not given": filled too


SIZE_ARGUMENTS = (
    "in_features", "out_features", "hidden_features", "num_features", "features",
    "in_channels", "out_channels", "hidden_channels", "num_channels", "channels", "in_chs",
    "out_chs", "in_chans", "out_chans", "in_channel", "out_channel", "conv_out_channels",
    "inplanes", "planes", "dim", "dim_in", "dim_out", "dim_hidden", "dim_model", "dim_latent",
    "in_dim", "out_dim", "hidden_dim", "input_dim", "output_dim", "inner_dim", "embed_dim",
    "embedding_dim", "emb_dim", "model_dim", "d_model", "d_hidden", "n_embd", "hidden_size",
    "input_size", "input_features", "state_size", "mlp_dim", "normalized_shape", "width",
    "c_dim", "norm_nc",
)
HEAD_ARGUMENTS = ("heads", "num_heads", "n_heads", "n_head", "nhead", "num_attention_heads")

ARGUMENTS = (
    ArgumentRule(SIZE_ARGUMENTS, lambda width: width, fills_none=True),
    ArgumentRule(HEAD_ARGUMENTS, lambda width: 2, overrides_default=True),
    ArgumentRule(("spatial_dims",), lambda width: 2),
    ArgumentRule(("kernel_size", "window_size", "filter_size", "window_length", "size"),
                 lambda width: 3, alternative=lambda width: (3, 3)),
    ArgumentRule(("upsample_kernel_size", "patch_size"), lambda width: 2),
    ArgumentRule(("stride", "dilation", "padding", "order", "radius"), lambda width: 1),
    ArgumentRule(("groups",), lambda width: 1, alternative=lambda width: width),  # or depthwise
    ArgumentRule(("depth", "num_layers", "n_layers", "num_layer", "enc_depth", "dec_depth"),
                 lambda width: 1),
    ArgumentRule(("reduction",), lambda width: 4),
    ArgumentRule(("expansion", "expansion_ratio", "ffn_expansion_factor", "mult", "ff_mult",
                  "mlp_ratio", "K", "k"), lambda width: 2),
    ArgumentRule(("dim_head",), lambda width: 8),
    ArgumentRule(("num_tokens", "num_embeddings", "vocab_size", "num_classes", "n_classes"),
                 lambda width: 10),
    ArgumentRule(("num_relations", "num_edge_types", "num_node_types"), lambda width: RELATIONS),
    ArgumentRule(("max_seq_len", "seq_len", "max_len", "max_pos", "max_position_embeddings"),
                 lambda width: 4 * SEQUENCE),
    ArgumentRule(("image_size", "img_size", "height"), lambda width: SIDE),
    ArgumentRule(("sigma", "sigma_color", "sigma_space", "spatial_sigma", "color_sigma"),
                 lambda width: 1.0, alternative=lambda width: (1.0, 1.0)),
    ArgumentRule(("alpha", "beta", "factor", "scale", "scale_factor", "saturation_factor",
                  "contrast_factor", "brightness_factor", "hue_factor", "thresh", "threshold",
                  "direction", "mean"), lambda width: 0.5,
                 alternative=lambda width: torch.tensor([0.5])),
    ArgumentRule(("std",), lambda width: 0.25),
    ArgumentRule(("gamma",), lambda width: 2.0),
    ArgumentRule(("max_val", "alpha_val"), lambda width: 1.0),
    ArgumentRule(("angle",), lambda width: 10.0, alternative=lambda width: torch.tensor([10.0])),
    ArgumentRule(("eps",), lambda width: 1e-2),
    ArgumentRule(("dropout", "p", "drop_prob", "drop_rate"), lambda width: 0.0),
    ArgumentRule(("bias",), lambda width: True),
    ArgumentRule(("norm", "norm_name"), lambda width: "batch"),
)
_RULES: Dict[str, ArgumentRule] = {name: rule for rule in ARGUMENTS for name in rule.names}


def fillable(name: str) -> bool:
    return name in _RULES


def constructor_arguments(parameters: Sequence[inspect.Parameter],
                          construction: Construction) -> Dict[str, Any]:
    """Values for the required arguments (defaults are honoured) under one construction."""
    arguments: Dict[str, Any] = {}
    for parameter in parameters:
        rule = _RULES.get(parameter.name)
        if rule is None:
            continue
        required = parameter.default is parameter.empty or (
            rule.fills_none and parameter.default is None)
        if required or (construction.two_heads and rule.overrides_default):
            form = rule.alternative if construction.alternative and rule.alternative else rule.value
            arguments[parameter.name] = form(construction.width)
    return arguments


@dataclass(frozen=True)
class Layout:
    """An input shape from a channel width: ``(B, C)``, ``(B, T, C)``, ``(B, C, H, W)``, ..."""

    name: str
    shape: Callable[[int], Tuple[int, ...]]
    channels_first: bool = False
    tokens: bool = False  # integer ids below the width
    graph: bool = False  # node features; the forward also takes an edge_index


LAYOUTS = {layout.name: layout for layout in (
    Layout("vector", lambda c: (BATCH, c)),
    Layout("sequence", lambda c: (BATCH, SEQUENCE, c)),
    Layout("channels1d", lambda c: (BATCH, c, LENGTH), channels_first=True),
    Layout("image", lambda c: (BATCH, c, SIDE, SIDE), channels_first=True),
    Layout("volume", lambda c: (BATCH, c, SIDE, SIDE, SIDE), channels_first=True),
    Layout("large image", lambda c: (BATCH, c, LARGE_SIDE, LARGE_SIDE), channels_first=True),
    Layout("large volume", lambda c: (BATCH, c, LARGE_SIDE, LARGE_SIDE, LARGE_SIDE),
           channels_first=True),
    Layout("tokens", lambda c: (BATCH, SEQUENCE), tokens=True),
    Layout("nodes", lambda c: (GRAPH_NODES, c), graph=True),
)}

# Tried last, in this order, after the hinted layouts.
LAYOUT_ORDER = ("vector", "sequence", "channels1d", "image", "volume", "large image",
                "large volume")
# Parameter-free layers (activations, filters, colour conversions) are mostly image operations.
PARAMETER_FREE_LAYOUT_ORDER = ("image", "vector", "sequence", "channels1d", "volume",
                               "large image", "large volume")

NAME_HINTS = tuple((re.compile(pattern, re.IGNORECASE), layouts) for pattern, layouts in (
    (r"3d", ("volume", "large volume")),
    (r"2d", ("image", "large image")),
    (r"1d", ("channels1d",)),
    (r"attention|attend|attn|transformer|former|rotary|positional|token|seq|rnn|lstm|gru|"
     r"recurrent",
     ("sequence",)),
    (r"conv|pool|blur|filter|sobel|laplac|gauss|median|canny|rgb|bgr|hsv|hls|luv|yuv|xyz|ycbcr|"
     r"gray|grey|colou?r|sepia|image|img|pyr|warp|flip|crop|resize|ssim|psnr", ("image",)),
    (r"relu|gelu|silu|swish|mish|sigmoid|tanh|softplus|elu|glu|activation|softmax|linear|mlp|"
     r"norm|feedforward", ("vector", "sequence")),
))


def _normalized_width(module: nn.Module) -> Optional[int]:
    shape = module.normalized_shape
    return shape[-1] if len(shape) == 1 else None


# The first submodule that tells the input: its type, the input width it expects, the layouts.
SUBMODULE_HINTS: Tuple[Tuple[tuple, Callable[[Any], Optional[int]], Tuple[str, ...]], ...] = (
    ((nn.Embedding,), lambda m: m.num_embeddings, ("tokens",)),
    ((nn.Linear,), lambda m: m.in_features, ("vector", "sequence")),
    ((nn.Conv1d, nn.ConvTranspose1d), lambda m: m.in_channels, ("channels1d",)),
    ((nn.Conv2d, nn.ConvTranspose2d), lambda m: m.in_channels, ("image", "large image")),
    ((nn.Conv3d, nn.ConvTranspose3d), lambda m: m.in_channels, ("volume", "large volume")),
    ((nn.BatchNorm1d, nn.InstanceNorm1d), lambda m: m.num_features, ("vector", "channels1d")),
    ((nn.BatchNorm2d, nn.InstanceNorm2d), lambda m: m.num_features, ("image",)),
    ((nn.BatchNorm3d, nn.InstanceNorm3d), lambda m: m.num_features, ("volume",)),
    ((nn.GroupNorm,), lambda m: m.num_channels, ("image", "channels1d", "volume")),
    ((nn.LayerNorm,), _normalized_width, ("sequence", "vector")),
    ((nn.RNNBase,), lambda m: m.input_size, ("sequence",)),
    ((nn.MultiheadAttention,), lambda m: m.embed_dim, ("sequence",)),
)

SPATIAL_DIMS_LAYOUTS = {1: ("channels1d",), 2: ("image", "large image"),
                        3: ("volume", "large volume")}

# Forward arguments after the first, by name; any other gets a tensor shaped like the first.
FORWARD_ROLES = tuple((re.compile(pattern), role) for pattern, role in (
    (r"edge_index$", "edges"),
    (r"^edge_types?$", "relations"),
    (r"^pos$", "positions"),
    (r"^(target|targets|label|labels|y_true|gt|ground_truth)$", "target"),
))
# Roles passed even when the argument has a default: without them the layer cannot run
# (a relational graph convolution's edge_type=None).
ROLES_NEEDED_DESPITE_DEFAULT = ("relations",)
POSITION_DIMS = 3  # point coordinates of point-cloud convolutions
# Loss targets: values in (0, 1) shaped like the input, then class indices for dim 1 (without it,
# then with it kept as size 1: (B, H, W), (B, 1, H, W)).
TARGET_FORMS = ("probabilities", "classes", "class map")


def role_of(name: str) -> str:
    return next((role for pattern, role in FORWARD_ROLES if pattern.search(name)), "like input")


def _first_submodule_hint(module: nn.Module) -> Tuple[Optional[int], Tuple[str, ...]]:
    """The input width and layouts the first submodule expects (a width of 1 is not taken: it
    is a scalar side input such as a time, and a degenerate example)."""
    for sub in module.modules():
        for types, width, layouts in SUBMODULE_HINTS:
            if isinstance(sub, types):
                expected = width(sub)
                return (expected if expected is not None and expected > 1 else None), layouts
        if sub is not module and next(sub.parameters(recurse=False), None) is not None:
            break  # the first layer with parameters tells nothing known
    return None, ()


def _size_argument(bound: Mapping[str, Any]) -> Optional[int]:
    return next((value for name, value in bound.items()
                 if name in SIZE_ARGUMENTS and isinstance(value, int) and value > 1), None)


@dataclass(frozen=True)
class InputPlan:
    """The layouts to try, in order, and the channel width when something tells it."""

    layouts: Tuple[str, ...]
    width: Optional[int]
    image_values: bool
    dtype: torch.dtype = torch.float64


def plan_inputs(class_name: str, fn: Any, bound: Mapping[str, Any], roles: Sequence[str],
                parameter_free: bool, dtype: torch.dtype = torch.float64) -> InputPlan:
    """Order the layouts: graph edges force node features; else ``spatial_dims``, the class name,
    the first submodule, then every layout in turn."""
    if "edges" in roles:
        return InputPlan(("nodes",), _size_argument(bound), False, dtype)
    width, submodule_layouts = (_first_submodule_hint(fn) if isinstance(fn, nn.Module)
                                else (None, ()))
    hinted: List[str] = list(SPATIAL_DIMS_LAYOUTS.get(bound.get("spatial_dims"), ()))
    for pattern, layouts in NAME_HINTS:
        if pattern.search(class_name):
            hinted += layouts
    hinted += submodule_layouts
    hinted += PARAMETER_FREE_LAYOUT_ORDER if parameter_free else LAYOUT_ORDER
    layouts = tuple(dict.fromkeys(hinted))
    if "tokens" not in submodule_layouts:
        layouts = tuple(name for name in layouts if name != "tokens")
    return InputPlan(layouts, width or _size_argument(bound), parameter_free, dtype)


def _floating(shape: Tuple[int, ...], image_values: bool, dtype: torch.dtype) -> torch.Tensor:
    if image_values:
        values = torch.empty(shape, dtype=dtype).uniform_(*IMAGE_VALUES)
    else:
        values = torch.randn(shape, dtype=dtype)
    return values.requires_grad_()


def random_graph(nodes: int) -> torch.Tensor:
    """``edge_index`` of a ring in both directions plus a few random chords (no self loops)."""
    ring = torch.arange(nodes)
    sources = torch.randint(0, nodes, (GRAPH_CHORDS,))
    targets = (sources + torch.randint(1, nodes, (GRAPH_CHORDS,))) % nodes
    return torch.stack([torch.cat([ring, (ring + 1) % nodes, sources]),
                        torch.cat([(ring + 1) % nodes, ring, targets])])


def _target(first: torch.Tensor, form: str) -> torch.Tensor:
    if form == "probabilities":
        return torch.empty_like(first.detach()).uniform_(*IMAGE_VALUES)
    classes = first.shape[1] if first.dim() > 1 else first.shape[0]
    kept = (1,) if form == "class map" else ()
    shape = first.shape[:1] + kept + first.shape[2:] if first.dim() > 1 else ()
    return torch.randint(0, classes, shape)


def _primary(layout: Layout, width: int, plan: InputPlan) -> torch.Tensor:
    shape = layout.shape(width)
    if layout.tokens:
        return torch.randint(0, width, shape)
    return _floating(shape, plan.image_values and layout.channels_first, plan.dtype)


def _inputs(layout: Layout, width: int, roles: Sequence[str], form: Optional[str],
            plan: InputPlan) -> Tuple[Any, ...]:
    first = _primary(layout, width, plan)
    values: List[Any] = [first]
    edges = random_graph(first.shape[0]) if "edges" in roles else None
    for role in roles[1:]:
        if role == "edges":
            values.append(edges)
        elif role == "relations":
            count = edges.shape[1] if edges is not None else first.shape[0]
            values.append(torch.randint(0, RELATIONS, (count,)))
        elif role == "target":
            values.append(_target(first, form))
        elif role == "positions":
            values.append(_floating((first.shape[0], POSITION_DIMS), False, plan.dtype))
        else:
            values.append(_primary(layout, width, plan))
    return tuple(values)


def input_candidates(plan: InputPlan,
                     names: Sequence[str]) -> Iterator[Tuple[Tuple[Any, ...], str]]:
    """``(inputs, description)`` for each layout, width and target form, in order."""
    if not names:
        yield (), "no inputs"
        return
    roles = [role_of(name) for name in names]
    forms: Sequence[Optional[str]] = TARGET_FORMS if "target" in roles else (None,)
    for layout_name in plan.layouts:
        layout = LAYOUTS[layout_name]
        if plan.width is not None:
            widths: Sequence[int] = (plan.width,)
        else:
            widths = UNKNOWN_CHANNELS if layout.channels_first else UNKNOWN_FEATURES
        for width in widths:
            for form in forms:
                inputs = _inputs(layout, width, roles, form, plan)
                yield inputs, describe_inputs(inputs, names)
