"""The one exception type for bad input: a one-line message that names the problem and the fix."""


class NNCheckError(ValueError):
    """Raised when a check cannot run on what it was given; the message says how to fix the call."""


def first_line(error: BaseException) -> str:
    """``Type: first line of the message``, to quote an exception from the caller's code."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
