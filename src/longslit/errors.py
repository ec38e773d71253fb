"""One hierarchy of errors, each carrying what the user must read.

Every error a user can cause derives from :class:`LongslitError`. Its ``exit_code`` is what the CLI returns:
2 for bad input (a file, a recipe, a parameter), 1 for a failure while running a step.
"""

from __future__ import annotations


class LongslitError(Exception):
    """Base of every error longslit raises on purpose.

    Parameters
    ----------
    message : str
        One sentence: what is wrong and what to do about it.
    path : str, optional
        The file the error is about, printed before the message by the CLI.
    """

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        # A path may hold any character (a newline, an undecodable byte): escape what would break the
        # one-line message.
        return f"{printable(self.path)}: {self.message}" if self.path else self.message


class LongslitWarning(UserWarning):
    """Something was assumed about the input; the reduction goes on."""


class FrameError(LongslitError):
    """An input file cannot be read as a long-slit frame."""


class RecipeError(LongslitError):
    """A recipe or parameter override is invalid (unknown key or method, value out of range)."""


class IncompleteError(RecipeError):
    """A method was chosen without a parameter it needs and has no default for (the files it works
    on: a standard star, arc frames): the recipe is not wrong, it waits for that value."""


class PluginError(LongslitError):
    """A plugin cannot be used (duplicate method name, bad hook result)."""


class InputError(LongslitError):
    """Parameters are valid on their own but do not fit this frame (e.g. an aperture outside it)."""


class MemoryBudgetError(InputError):
    """Reducing the frame would need more memory than the budget allows (``longslit.limits``)."""


class OutputError(LongslitError):
    """An output cannot be written (exists already, folder missing, disk full)."""


def printable(text: object) -> str:
    """``text`` with control characters and undecodable bytes escaped (``\\n``, ``\\udcff``), for one-line
    messages; printable non-ASCII characters (``ü``) stay as they are."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class StepError(LongslitError):
    """A method raised an unexpected exception while running a step."""

    exit_code = 1

    def __init__(self, step: str, method: str, package: str, reason: str, *, path=None) -> None:
        self.step, self.method, self.package, self.reason = step, method, package, reason
        super().__init__(f"step {step}, method {method!r} from {package} failed: {reason}", path=path)
