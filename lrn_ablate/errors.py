"""The one exception type that reaches the user as a single sentence instead of a traceback."""


class UserError(Exception):
    """A mistake in the user's input (a setting, a path, a file), stated in one sentence."""
