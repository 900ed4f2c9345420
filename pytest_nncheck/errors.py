"""The exception types: bad input (one line naming the problem and the fix), and nncheck's own bugs."""


class NNCheckError(ValueError):
    """Raised when a check cannot run on what it was given; the message says how to fix the call."""


class NNCheckInternalError(RuntimeError):
    """A failure inside nncheck itself, reported as ours so it is never blamed on the user's code."""

    def __init__(self, what: str, error: BaseException) -> None:
        super().__init__(f"internal error in nncheck while {what} ({type(error).__name__}: "
                         f"{error}); this is nncheck's bug, not your code's: please report it")


def first_line(error: BaseException) -> str:
    """``Type: first line of the message``, to quote an exception from the caller's code."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
