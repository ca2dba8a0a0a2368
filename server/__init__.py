"""The HTTP shell: FastAPI apps for the relay and the agency services, each built by a
factory and thin over the core.

May import ``vault``, ``verifiers`` and ``wallet``; never ``cli``.
"""

from server.authenticator import NONCE_SCHEMA, Authenticator
from server.problem import PROBLEM_JSON, install_problem_handlers, problem_response, status_of
from server.rate_limit import RateLimiter, RateRule
from server.relay import RELAY_SCHEMA, Envelope, Relay, RelayPolicy
from server.relay_app import create_relay_app
from server.service import attach_store, create_service_app, http_request_of
from server.settings import Settings
from server.store import Backend, Schema, Store, Transaction, open_store

__all__ = [
    # shared by every service
    "Settings",
    "create_service_app",
    "attach_store",
    "http_request_of",
    "PROBLEM_JSON",
    "install_problem_handlers",
    "problem_response",
    "status_of",
    "RateLimiter",
    "RateRule",
    "Authenticator",
    "NONCE_SCHEMA",
    # store
    "Backend",
    "Schema",
    "Store",
    "Transaction",
    "open_store",
    # relay (specs/relay.md)
    "RELAY_SCHEMA",
    "Envelope",
    "Relay",
    "RelayPolicy",
    "create_relay_app",
]
