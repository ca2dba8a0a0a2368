"""The HTTP shell: FastAPI apps for the relay and the agency services, each built by a
factory and thin over the core.

May import ``vault``, ``verifiers`` and ``wallet``; never ``cli``.
"""
