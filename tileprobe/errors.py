"""The one base class for errors a user can fix.

Workflow scripts print these as a plain message (no traceback) because the message already names the file, row
or key and says the fix; anything else is a bug and keeps its traceback.
"""


class TileprobeError(Exception):
    """An error in the user's input or environment, with a message that says how to fix it."""
