"""The errors a dataset conversion raises: a wrong raw layout, an unusable result, one unusable pair."""


class RawLayoutError(FileNotFoundError):
    """The raw folder does not have the layout the converter expects."""


class ConversionError(RuntimeError):
    """The conversion cannot produce a usable dataset (e.g. no valid pair at all); a user error for the command
    lines (``apis.cli_errors.USER_ERRORS``)."""


class PairError(ValueError):
    """One (image, mask) pair cannot be normalised safely; it is skipped and reported, counted under ``reason``."""

    def __init__(self, message: str, reason: str = ''):
        super().__init__(message)
        self.reason = reason or message
