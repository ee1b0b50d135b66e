"""The one error type users see: a message that names the file, column or option at fault."""


class CasebookError(Exception):
    """Bad input or configuration. The CLI prints the message without a traceback, exits 2."""
