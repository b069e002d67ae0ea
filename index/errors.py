"""Errors that carry enough context for a user to act on them."""


class QAError(Exception):
    """Base of every error this project raises on purpose: callers may show `str(err)` to a user."""


class CorpusError(QAError):
    """A corpus file or record cannot be used; the message names the file and the line or record."""


class IndexNotFoundError(QAError):
    """No index where one was expected."""


class IndexCorruptError(QAError):
    """An index file is missing, truncated or altered; the message names the file."""


class IndexMismatchError(QAError):
    """The index was built with other settings than the ones configured now."""


class ModelLoadError(QAError):
    """A model path or id could not be loaded."""
