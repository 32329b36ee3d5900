"""Error types shared by every layer.

Each error carries a message that is already fit to show an operator: one sentence saying
what went wrong, with which input, and what to do. The CLI prints `str(error)`; the TUI
shows it on the job or in a toast. Nothing here ever holds a secret in its message.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base class: an error whose message is meant for the operator."""


class ConfigError(MediaError):
    """The settings are unusable (bad URL, missing key, unreadable config file). Exit code 2."""


class UsageError(MediaError):
    """The command line asked for something that cannot be done. Exit code 2."""


class TransferError(MediaError):
    """A storage or catalogue operation failed.

    `transient` says whether trying again can help (network trouble, 5xx, 420/429, a locked
    database); only transient errors are retried by the upload queue.
    """

    def __init__(self, message: str, *, transient: bool = False, status: int | None = None):
        super().__init__(message)
        self.transient = transient
        self.status = status


class TransientError(TransferError):
    """A failure worth retrying with backoff."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message, transient=True, status=status)


class PermanentError(TransferError):
    """A failure that will fail again the same way (bad request, auth, not media)."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message, transient=False, status=status)


class NameTaken(PermanentError):
    """Storage already holds other bytes under the public id an upload asked for.

    The upload queue answers it by moving the job to the name's content-hash variant.
    """
