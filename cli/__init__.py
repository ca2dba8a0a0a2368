"""The ``kluis`` command line: a thin typer shell that parses input, calls the core and
renders the result in Dutch or English.

May import ``vault``, ``verifiers`` and ``wallet``; never ``server``.
"""
