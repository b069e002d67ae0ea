"""The project's error base: every error raised on purpose derives from `QAError`, so an edge (CLI, HTTP) can
show `str(err)` to a user and treat anything else as a bug."""


class QAError(Exception):
    """Base of every error this project raises on purpose: callers may show `str(err)` to a user."""


class ModelLoadError(QAError):
    """A model path or id could not be loaded."""
