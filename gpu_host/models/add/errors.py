"""The one error `add` raises for a file it cannot serve."""


class AddError(Exception):
    """The file cannot be served as asked; the message says why (shown as it is, no traceback)."""
