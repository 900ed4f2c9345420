"""Finding positions agree with LibCST's PositionProvider on every node of real files."""
from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from nnlint.positions import node_starts
from nnlint.rules import ALL_RULES

NNLINT = Path(__file__).resolve().parents[2] / "nnlint"

LAYOUTS = [
    "@decorator(1)\n@other\nclass A(B):\n    '''doc'''\n\n    # comment\n    def f(self, x):\n"
    "        if x:\n            return (x +\n                    1)\n        else:\n"
    "            pass\n",
    "x = 1; y = 2\r\nfor i in range(3):\r\n    x += i  # c\r\nwhile False: pass\r\n",
    "try:\n\tpass\nexcept (A, B) as e:\n\traise\nfinally:\n\tz = [a for a in b if a]\n",
    "async def g():\n    async with a as b, c:\n        await d(*w, **{'k': v})\n",
    "\n\n# header\nimport os\nlambda: (yield)\nf'{x!r:>{w}}'\n",
]


def _sources():
    for rule in ALL_RULES:
        yield from rule.bad
        yield from rule.good
    yield from LAYOUTS
    for name in ("engine.py", "config.py", "rules/scheduler_misuse.py"):
        yield (NNLINT / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("source", list(_sources()))
def test_every_node_starts_where_position_provider_says(source):
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    expected = {id(node): (r.start.line, r.start.column)
                for node, r in wrapper.resolve(PositionProvider).items()}
    nodes = []

    class Collect(cst.CSTVisitor):
        def on_visit(self, node):
            nodes.append(node)
            return True

    module.visit(Collect())
    wanted = {id(n): expected[id(n)] for n in nodes}
    assert node_starts(module, nodes) == wanted
    assert node_starts(module, nodes, source) == wanted
    for node in nodes[::max(1, len(nodes) // 12)]:  # one at a time: placed by its own statement
        assert node_starts(module, [node], source) == {id(node): expected[id(node)]}


@pytest.mark.parametrize("source, line", [
    ("x = f(1)\ny = 2\nx = f(1)\n", 3),  # the statement's text is found twice
    ("x = 1\r\n\r\ny = g(2)", 3),  # no final newline: its text is not found
    ('s = """\nx = f(1)\n"""\nx = f(1)\n', 4),  # the text also sits inside a string
])
def test_statements_whose_text_is_ambiguous_are_placed_by_the_whole_module(source, line):
    module = cst.parse_module(source)
    call = module.body[-1].body[0].value
    assert node_starts(module, [call], source) == {id(call): (line, 4)}


class _Unprintable(cst.Pass):
    def _codegen_impl(self, state, *args, **kwargs):
        raise AssertionError("code generated past the last node asked for")


def test_generation_stops_after_the_last_node_asked_for():
    module = cst.parse_module("a = 1\nb = 2\nc = 3\n")
    tail = module.body[2].with_changes(body=[_Unprintable()])
    module = module.with_changes(body=[*module.body[:2], tail])
    value = module.body[1].body[0].value
    assert node_starts(module, [value]) == {id(value): (2, 4)}
    assert node_starts(module, []) == {}
