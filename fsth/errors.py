"""Errors a user can act on.

Every problem caused by the user's input (a missing file, a photo without a face, a corrupt video, a
checkpoint of the wrong kind) is raised as an :class:`FsthError` with a one-line message that names the
thing and the problem. The CLI prints that line on stderr and exits non-zero, without a traceback.
Anything else escaping a command is a bug in fsth and keeps its traceback.
"""


class FsthError(Exception):
    """A problem with the user's input or environment, described in one line."""

    exit_code = 1


class InputError(FsthError):
    """A file that is missing, unreadable, or not what the command needs."""


class NoFaceError(InputError):
    """An image or video in which no face was found."""


class CheckpointError(FsthError):
    """A checkpoint that is missing, corrupt, of the wrong kind/version, or does not match its config."""


class MissingWeightsError(FsthError):
    """Pretrained weights (landmark network, VGG, Inception ...) that are not on disk and cannot be fetched."""


class ConfigError(FsthError):
    """A model or training configuration that is invalid (unknown preset, missing or unknown field ...)."""
