"""The one exception type for bad user input (exit code 2 at the CLI)."""

from __future__ import annotations


class InputError(Exception):
    """Bad input: names the file, the dotted field path, the bad value and what is allowed."""

    def __init__(self, file: str | None, path: str, message: str):
        self.file = file or "<input>"
        self.path = path or "<top>"
        self.message = message
        super().__init__(f"{self.file}: {self.path}: {message}")
