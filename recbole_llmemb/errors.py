"""The one error type everything below the pipeline may raise for a user's mistake."""


class UserError(Exception):
    """A mistake in the user's input: printed as one message, never as a traceback."""
