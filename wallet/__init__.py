"""The citizen's side: the consent engine, requests and decisions, the consent log, grants,
holder keys and the protocol clients.

Imports only from ``vault`` and ``verifiers``; never from ``cli`` or ``server``. It never
prints and never reads the environment for behaviour; HTTP reaches it through injected
clients.
"""
