"""The one user-facing error type and the exit codes every command maps to."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1  # a plan check or an apply step failed
EXIT_USAGE = 2  # bad input: configuration, lock, command line
EXIT_INTERNAL = 3  # a bug in obsplan; the traceback is saved to a file
EXIT_INTERRUPTED = 130


@dataclass
class ObsplanError(Exception):
    """A problem the user can fix: names the file, the key and the fix."""

    message: str
    file: str | None = None
    key: str | None = None
    hint: str | None = None
    exit_code: int = EXIT_USAGE

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.key:
                where += f": {self.key}"
            where += ": "
        elif self.key:
            where = f"{self.key}: "
        text = f"{where}{self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        # one line, whatever the input held: line breaks become spaces, other control characters are escaped
        text = text.replace("\n", " ")
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
