"""Errors the library raises on bad input. The CLI and the app show their message as one line.

Every message says what went wrong and, where it can, what to do next.
"""

from __future__ import annotations


class Gan3dError(Exception):
    """Base of every error gan_core raises on purpose (never a bug)."""


class BadFileError(Gan3dError):
    """A file is missing, unreadable, of an unknown format, or holds data of the wrong shape or type."""


class BadCheckpointError(Gan3dError):
    """A checkpoint or feature bank is corrupt, truncated, foreign, or of an unknown format version."""


class ProfileMismatchError(Gan3dError):
    """Two things that must share a model profile (checkpoint, bank, resume run) do not."""


class BadInputError(Gan3dError):
    """An argument has a bad value: a z vector with NaN, an unknown class name, an empty selection."""


class TrainingDivergedError(Gan3dError):
    """Training cannot go on: the loss or the weights became NaN or Inf. The last checkpoint is kept."""
