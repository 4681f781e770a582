"""Errors of the acopf package.

acopf is a client of graphver and keeps its own errors: a case file that cannot be read or
describes an invalid network raises ``CaseError``.
"""


class CaseError(ValueError):
    """A case file is malformed or describes an invalid network.

    The message names the file, the line where one applies, and the component
    ("bus 7", "branch 3 (1-4)", "gen 2").
    """
