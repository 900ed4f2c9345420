"""Small layers, each modelled on a kind of real layer that example inference used to skip."""
import torch
import torch.nn.functional as F
from torch import nn


class StemBlock(nn.Module):
    """A size under another name (timm's `in_chs`)."""

    def __init__(self, in_chs, out_chs=None):
        super().__init__()
        self.proj = nn.Linear(in_chs, out_chs or in_chs)

    def forward(self, x):
        return torch.tanh(self.proj(x))


class DividingHeads(nn.Module):
    """A head count with a default that must divide the width (8 divides 16)."""

    def __init__(self, dim, num_heads=8):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).unbind(2)
        weights = torch.softmax(torch.einsum("bthd,bshd->bhts", q, k), dim=-1)
        return torch.einsum("bhts,bshd->bthd", weights, v).reshape(b, t, c)


class OddHeads(DividingHeads):
    """A default head count (3) that divides neither 16 nor 32: only two heads work."""

    def __init__(self, dim, num_heads=3):
        super().__init__(dim, num_heads)


class SquaredReLU(nn.Module):
    """A parameter-free activation."""

    def forward(self, x):
        return F.relu(x) ** 2


class BoxFilter(nn.Module):
    """A parameter-free image filter: a fixed 3x3 mean per channel."""

    def forward(self, image):
        channels = image.shape[1]
        kernel = torch.full((channels, 1, 3, 3), 1 / 9, dtype=image.dtype)
        return F.conv2d(image, kernel, padding=1, groups=channels)


class RgbToGray(nn.Module):
    """A colour conversion: exactly three channels in, values in [0, 1]."""

    def forward(self, image):
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W), got {tuple(image.shape)}")
        if image.min() < 0 or image.max() > 1:
            raise ValueError("expected pixel values in [0, 1]")
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype).view(1, 3, 1, 1)
        return (image * weights).sum(1, keepdim=True)


class FocalLoss(nn.Module):
    """A loss whose target holds class indices: forward(input, target)."""

    def __init__(self, gamma=2.0):
        super().__init__()
        self.gamma = gamma

    def forward(self, input, target):
        log_p = F.log_softmax(input, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
        return (-(1 - log_p.exp()) ** self.gamma * log_p).mean()


class CharbonnierLoss(nn.Module):
    """A loss whose target is shaped like the input."""

    def forward(self, input, target):
        return torch.sqrt((input - target) ** 2 + 1e-3).mean()


class SelfAttention(nn.Module):
    """Attention that wants (B, T, C): a (B, C) input raises."""

    def __init__(self, embed_dim):
        super().__init__()
        self.attention = nn.MultiheadAttention(embed_dim, num_heads=2, batch_first=True)

    def forward(self, x):
        if x.dim() != 3:
            raise ValueError(f"expected (batch, time, channels), got {x.dim()} dimensions")
        return self.attention(x, x, x, need_weights=False)[0]


class ConvBlock(nn.Module):
    """A conv2d block that wants (B, C, H, W)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return torch.tanh(self.norm(self.conv(x)))


class MeanGraphConv(nn.Module):
    """A graph convolution: node features and an edge_index."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.neighbours = nn.Linear(in_channels, out_channels)
        self.root = nn.Linear(in_channels, out_channels)

    def forward(self, x, edge_index, edge_weight=None):
        source, target = edge_index
        summed = torch.zeros_like(x).index_add_(0, target, x[source])
        degree = torch.zeros(x.shape[0], dtype=x.dtype).index_add_(
            0, target, torch.ones(target.shape[0], dtype=x.dtype)).clamp(min=1)
        return self.neighbours(summed / degree.unsqueeze(1)) + self.root(x)


class ScaledSwish(torch.autograd.Function):
    """A Function with a defaulted extra argument."""

    @staticmethod
    def forward(ctx, x, beta=1.5):
        ctx.save_for_backward(x)
        ctx.beta = beta
        return x * torch.sigmoid(beta * x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(ctx.beta * x)
        return grad * (s + ctx.beta * x * s * (1 - s)), None


class Multiply(torch.autograd.Function):
    """A Function with two tensor arguments of the same shape."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad * b, grad * a


class NormThenReLU(nn.Module):
    """LayerNorm then ReLU: over a width of 1 the norm outputs exactly 0, the ReLU's kink."""

    def __init__(self, features):
        super().__init__()
        self.norm = nn.LayerNorm(features)

    def forward(self, x):
        return F.relu(self.norm(x))


class TokenEmbedding(nn.Module):
    """Token ids in: the first submodule is an embedding."""

    def __init__(self, dim, num_tokens):
        super().__init__()
        self.embedding = nn.Embedding(num_tokens, dim)

    def forward(self, tokens):
        return self.embedding(tokens)


class NeedsVocabulary(nn.Module):
    """Constructor arguments nothing can fill."""

    def __init__(self, vocabulary_file, tokenizer, dim=8):
        super().__init__()
        self.files = (vocabulary_file, tokenizer)

    def forward(self, x, mask=None):
        return x


class NeedsCondition(nn.Module):
    """A forward with a required keyword-only argument."""

    def __init__(self, dim):
        super().__init__()
        self.scale = nn.Linear(dim, dim)

    def forward(self, x, *, condition):
        return x * self.scale(condition)


class AlwaysRaises(nn.Module):
    """A forward that fails on every input."""

    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        raise RuntimeError(f"unsupported input of shape {tuple(x.shape)}")


class RaisingFunction(torch.autograd.Function):
    """A Function whose forward fails on every input."""

    @staticmethod
    def forward(ctx, x, y):
        raise RuntimeError("no")

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Dropout(nn.Module):
    """A layer that draws from torch's global generator in its forward."""

    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return F.dropout(self.linear(x), 0.5, training=True)


class PairSigmaBlur(nn.Module):
    """Builds with a float sigma but runs only with a (sigma_y, sigma_x) pair."""

    def __init__(self, kernel_size, sigma):
        super().__init__()
        self.kernel_size, self.sigma = kernel_size, sigma

    def forward(self, image):
        if not isinstance(self.sigma, tuple):
            raise TypeError(f"sigma must be a pair, got {type(self.sigma).__name__}")
        return image * torch.exp(-torch.tensor(self.sigma[0], dtype=image.dtype))


class RgbaToRgb(nn.Module):
    """A colour conversion that wants four channels."""

    def forward(self, image):
        if image.dim() != 4 or image.shape[1] != 4:
            raise ValueError(f"expected (B, 4, H, W), got {tuple(image.shape)}")
        return image[:, :3] * image[:, 3:]


class BoundaryLoss(nn.Module):
    """A segmentation loss whose target keeps a channel dimension of 1: (B, 1, H, W)."""

    def forward(self, pred, target):
        if target.shape != (pred.shape[0], 1, *pred.shape[2:]):
            raise ValueError(f"target must be (B, 1, H, W), got {tuple(target.shape)}")
        return (F.softmax(pred, dim=1).gather(1, target) - 1).pow(2).mean()


class RelationalGraphConv(nn.Module):
    """A relational graph convolution: edge_type has a default of None but is needed."""

    def __init__(self, in_channels, out_channels, num_relations):
        super().__init__()
        self.relations = nn.Parameter(torch.randn(num_relations, in_channels, out_channels) / 4)

    def forward(self, x, edge_index, edge_type=None):
        if edge_type is None:
            raise ValueError("edge_type is required")
        source, target = edge_index
        messages = torch.einsum("ec,eco->eo", x[source], self.relations[edge_type])
        nodes = torch.zeros(x.shape[0], messages.shape[1], dtype=x.dtype)
        return nodes.index_add(0, target, messages)


class PointConv(nn.Module):
    """A point-cloud convolution: node features, 3-d positions and edges."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.features = nn.Linear(in_channels, out_channels)
        self.offsets = nn.Linear(3, out_channels)

    def forward(self, x, pos, edge_index):
        source, target = edge_index
        messages = self.features(x[source]) * torch.tanh(self.offsets(pos[source] - pos[target]))
        nodes = torch.zeros(x.shape[0], messages.shape[1], dtype=x.dtype)
        return nodes.index_add(0, target, messages)


class ChannelsDefaultNone(nn.Module):
    """Sizes with a default of None that must be given (MONAI's UpSample in 'deconv' mode)."""

    def __init__(self, spatial_dims, in_channels=None, out_channels=None):
        super().__init__()
        if in_channels is None:
            raise ValueError("in_channels needs to be specified in this mode")
        conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[spatial_dims - 1]
        self.conv = conv(in_channels, out_channels or in_channels, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


class DepthwiseConv(nn.Module):
    """Only depthwise: groups must equal the channel count."""

    def __init__(self, in_channels, kernel_size, groups):
        super().__init__()
        if groups != in_channels:
            raise ValueError("only depthwise convolutions (groups == in_channels)")
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size, padding=1, groups=groups)

    def forward(self, x):
        return self.conv(x)


class TimeConditioned(nn.Module):
    """The first submodule embeds a scalar (Linear(1, dim)); the input is (B, dim)."""

    def __init__(self, dim):
        super().__init__()
        self.time = nn.Linear(1, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        return self.proj(x) + self.time(torch.ones(x.shape[0], 1, dtype=x.dtype))


class GraphNeedsEdgeAttributes(nn.Module):
    """Edge attributes (edge_attr) that nothing infers, next to edges and edge types."""

    def __init__(self, channels):
        super().__init__()
        self.linear = nn.Linear(channels, channels)

    def forward(self, x, edge_index, edge_type, edge_attr):
        if edge_attr.shape[0] != edge_index.shape[1]:
            raise ValueError("edge_attr needs one row per edge")
        return self.linear(x) * edge_attr.sum()
