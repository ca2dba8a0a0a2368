"""The HTTP shell: FastAPI apps for the relay and the agency services, each built by a
factory and thin over the core.

May import ``vault``, ``verifiers`` and ``wallet``; never ``cli``.
"""

from server.authenticator import NONCE_SCHEMA, Authenticator
from server.demo_world import APPS, AppSpec, DemoWorld, build_app, load_world
from server.grant import GRANT_SCHEMA, GrantPolicy, GrantRelay
from server.launcher import Listener, WorkerPlan, bind, bind_all
from server.launcher import serve as serve_apps
from server.problem import (
    PROBLEM_JSON,
    install_problem_handlers,
    problem_response,
    problem_responses,
    status_of,
)
from server.rate_limit import LocalRateLimiter, RateLimiter, RateRule
from server.receipt_log import RECEIPT_LOG_SCHEMA, ReceiptLog, StoreLogStore
from server.relay import RELAY_SCHEMA, Envelope, Relay, RelayPolicy
from server.relay_app import create_relay_app
from server.service import attach_store, create_service_app, http_request_of
from server.settings import Settings
from server.store import Backend, Schema, Store, Transaction, open_store
from server.verifier import ReceivedCredential, ResponseOutcome, Verifier
from server.verifier_agency import (
    VerifierAgency,
    VerifierPurpose,
    make_verifier_agency,
    parse_verifier_purpose,
)
from server.verifier_app import create_verifier_admin_app, create_verifier_app
from server.verifier_request import CreatedRequest, RequestStatus, VerifierPolicy

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
    "LocalRateLimiter",
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
    # verifier (OpenID4VP 1.0, specs/openid4vp.md)
    "CreatedRequest",
    "ReceivedCredential",
    "RequestStatus",
    "ResponseOutcome",
    "Verifier",
    "VerifierAgency",
    "VerifierPolicy",
    "VerifierPurpose",
    "create_verifier_admin_app",
    "create_verifier_app",
    "make_verifier_agency",
    "parse_verifier_purpose",
    # the agency's receipt log (verifiers.tlog over the store)
    "RECEIPT_LOG_SCHEMA",
    "ReceiptLog",
    "StoreLogStore",
    # grants at the relay (specs/grant.md)
    "GRANT_SCHEMA",
    "GrantPolicy",
    "GrantRelay",
    # the demo world and serving it (python -m server, kluis serve / demo)
    "APPS",
    "AppSpec",
    "DemoWorld",
    "build_app",
    "load_world",
    "Listener",
    "WorkerPlan",
    "bind",
    "bind_all",
    "serve_apps",
    "problem_responses",
]
