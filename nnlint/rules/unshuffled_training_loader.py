"""NN401 unshuffled-training-loader: a training DataLoader that serves the data in file order."""
from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from ..expressions import argument, keyword, positional, text
from .base import Rule

_LOADERS = {"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"}
_TRAINING = re.compile(r"(^|[^a-z])(train|training|trn)([^a-z]|$)", re.IGNORECASE)
# An IterableDataset (a stream, a datapipe) cannot be shuffled by the DataLoader.
_STREAM = re.compile(r"(iter|stream|pipe)", re.IGNORECASE)
_HELD_OUT = re.compile(r"(val|valid|validation|test|eval|dev|holdout)", re.IGNORECASE)


class UnshuffledTrainingLoader(Rule):
    code = "NN401"
    name = "unshuffled-training-loader"
    message = ("training DataLoader `{name}` does not shuffle: every epoch sees the batches in "
               "the same order (often sorted by class); pass shuffle=True or a sampler")
    what = ("Flags a `DataLoader` over training data (the loader or the dataset is named train) "
            "with no `shuffle` argument and no `sampler` / `batch_sampler` (nor `**kwargs` that "
            "may hold them). An explicit "
            "`shuffle=False` is taken as deliberate (time series), and a loader whose batch is "
            "the whole dataset does not need shuffling.")
    why = ("shuffle defaults to False. Many datasets are stored grouped by class or source, so "
           "an unshuffled loader feeds whole batches of one class: the gradient swings from "
           "class to class, batch norm statistics are skewed, and the model forgets what it saw "
           "at the start of the epoch. Even for well-mixed files, the same batch order every "
           "epoch correlates the updates; SGD's convergence arguments assume random sampling.")
    bad = (
        "from torch.utils.data import DataLoader\n\n"
        "train_loader = DataLoader(train_set, batch_size=64, num_workers=4)\n",
        "import torch\n\nloader = torch.utils.data.DataLoader(\n"
        "    datasets.MNIST('data', train=True, download=True, transform=tf), batch_size=128)\n",
        "from torch.utils.data import DataLoader\n\ndef make_loaders(train_ds, val_ds):\n"
        "    return (DataLoader(train_ds, batch_size=32),\n"
        "            DataLoader(val_ds, batch_size=32))\n",
    )
    good = (
        "from torch.utils.data import DataLoader\n\n"
        "train_loader = DataLoader(train_set, batch_size=64, shuffle=True, num_workers=4)\n"
        "val_loader = DataLoader(val_set, batch_size=256)\n",
        "from torch.utils.data import DataLoader\nfrom torch.utils.data.distributed import "
        "DistributedSampler\n\ntrain_loader = DataLoader(train_set, batch_size=64, "
        "sampler=DistributedSampler(train_set))\n",
        "from torch.utils.data import DataLoader\n\n"
        "train_loader = DataLoader(windows_train, batch_size=64, shuffle=False)  # keep time order\n",
        "from torch.utils.data import DataLoader\n\n"
        "train_loader = DataLoader(train_set, batch_size=len(train_set))  # one full batch\n",
        "from torch.utils.data import DataLoader\n\nkwargs = {'batch_size': 64, 'shuffle': True}\n"
        "train_loader = DataLoader(train_set, **kwargs)\n"
        "stream_loader = DataLoader(train_iterator, batch_size=64)  # an IterableDataset\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._seen = set()  # loaders already judged with the name they are assigned to

    def visit_Assign(self, node: cst.Assign) -> None:
        if isinstance(node.value, cst.Call):
            for target in node.targets:
                self._check(node.value, text(target.target))

    def visit_Call(self, node: cst.Call) -> None:
        self._check(node, None)

    def _check(self, call: cst.Call, name: Optional[str]) -> None:
        if self.context.call_name(call) not in _LOADERS or id(call) in self._seen:
            return
        self._seen.add(id(call))
        if any(keyword(call, k) is not None for k in ("shuffle", "sampler", "batch_sampler")):
            return
        if positional(call, 2) is not None or positional(call, 3) is not None \
                or any(arg.star for arg in call.args):
            return  # shuffle or sampler given positionally or through **kwargs
        dataset = argument(call, 0, "dataset")
        described = " ".join(filter(None, [name, _describe(dataset)]))
        if not _TRAINING.search(described) or _HELD_OUT.search(described) \
                or _STREAM.search(described):
            return
        size = argument(call, 1, "batch_size")
        if isinstance(size, cst.Call) and text(size.func) == "len":
            return
        self.report(call, self.message.format(name=name or text(dataset) or "DataLoader"))


def _describe(dataset: Optional[cst.BaseExpression]) -> str:
    """The dataset's name, or for a call like MNIST(..., train=True) the word train."""
    if dataset is None:
        return ""
    if isinstance(dataset, cst.Call):
        flag = keyword(dataset, "train")
        split = keyword(dataset, "split")
        if flag is not None and text(flag) == "True":
            return "train"
        if isinstance(split, cst.SimpleString):
            return str(split.evaluated_value)
        return text(dataset.func) or ""
    return text(dataset) or ""
