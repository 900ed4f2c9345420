"""The one exception type for bad input: a one-line message that names the problem and the fix."""


class NNCheckError(ValueError):
    """Raised when a check cannot run on what it was given; the message says how to fix the call."""
