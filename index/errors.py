"""Errors of corpora and indexes, with enough context for a user to act on them."""

from common.errors import QAError


class CorpusError(QAError):
    """A corpus file or record cannot be used; the message names the file and the line or record."""


class IndexNotFoundError(QAError):
    """No index where one was expected."""


class IndexCorruptError(QAError):
    """An index file is missing, truncated or altered; the message names the file."""


class IndexMismatchError(QAError):
    """The index was built with other settings than the ones configured now."""
