"""The one base class of bad-data errors.

Data preparation catches :class:`DataError` (and OSError from reading files) per file and reports
the file as skipped with the message; any other exception is a bug and stops the run.
"""


class DataError(ValueError):
    """Bad input data (media, transcript, landmarks, alignment, tables); the message names the
    file or the utterance and, where there is one, the fix."""
