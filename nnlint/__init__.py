"""nnlint: a static linter for the classic training pitfalls. Never imports torch, never runs code."""

__version__ = "0.1.0"
