"""The citizen's side: the consent engine, requests and decisions, the consent log, grants,
holder keys and the protocol clients.

Imports only from ``vault`` and ``verifiers``; never from ``cli`` or ``server``. It never
prints and never reads the environment for behaviour; HTTP reaches it through injected
clients.
"""

from wallet.consent import Consent, State, StoredRequest
from wallet.consent_log import ConsentLog, NoSuchEntry, VaultLogStore
from wallet.credential import (
    ClaimView,
    PinnedIssuerKey,
    StoredCredential,
    claim_label,
    find_credential,
    held_credentials,
    list_credentials,
    receive_credential,
)
from wallet.credential_offer import (
    CredentialOffer,
    OfferReference,
    TxCodeSpec,
    check_tx_code,
    parse_credential_offer,
)
from wallet.evaluation import (
    Block,
    Caution,
    ClaimLine,
    CredentialLine,
    Evaluation,
    Status,
    evaluate,
)
from wallet.grant import GRANTS_SCHEMA, Grant, GrantItemState, GrantKeys, Grants
from wallet.grant import Status as GrantStatus
from wallet.grant_item import ItemSpec
from wallet.grant_item import Source as ItemSource
from wallet.grant_relay import GrantClient, RelayFetch
from wallet.grant_request import GrantElement, format_grant_element, grant_element, is_grant_request
from wallet.grant_sync import SyncReport, sync_grants
from wallet.holder_key import HolderKey, find_holder_key, holder_key, holder_keys, signing_key
from wallet.inbox import URI_LIST, Collected, InboxItem, arrived_by_network, collect
from wallet.mailbox import Inbox, InboxMessage, MailboxClient, RelayAddress
from wallet.openid4vci import IssuerEndpoints, fetch_credential_offer, redeem_offer
from wallet.openid4vp import (
    Delivery,
    RequestReference,
    X509HashKeys,
    approve_and_send,
    fetch_request,
    parse_request_uri,
    refuse_and_send,
    response_body,
    send_refusal,
    send_release,
)
from wallet.proof import make_proof_jwt
from wallet.purpose import Purpose, RequestRetention, format_purpose, parse_purpose
from wallet.relay_account import (
    AgencyAddress,
    RelayAccount,
    address_agency,
    agency_address,
    agency_addresses,
    mailbox_client,
    register_relay,
    relay_account,
)
from wallet.release import Presentation, Refusal, Release
from wallet.request import (
    ClientIdPrefix,
    Request,
    ResponseMode,
    parse_request,
    request_id,
    restore_request,
)
from wallet.request_object import TrustListVerifierKeys, VerifierKeys, open_request_object
from wallet.trail import Sentence, TrailFilter, tell
from wallet.transport import HttpxTransport, Response, Transport
from wallet.trust import StoredTrustList, set_trust_list, stored_trust_list, trust_list
from wallet.wallet import SCHEMAS, Wallet, create_wallet, open_wallet
from wallet.wording import Text, format_date, join_labels, type_name

__all__ = [
    # wallet (the vault with every component installed)
    "SCHEMAS",
    "Wallet",
    "create_wallet",
    "open_wallet",
    # consent_log (specs/consent-log.md)
    "ConsentLog",
    "NoSuchEntry",
    "VaultLogStore",
    # trail (the log in plain language)
    "Sentence",
    "TrailFilter",
    "tell",
    # holder_key (the keys credentials are bound to)
    "HolderKey",
    "find_holder_key",
    "holder_key",
    "holder_keys",
    "signing_key",
    # credential (credentials held)
    "ClaimView",
    "PinnedIssuerKey",
    "StoredCredential",
    "claim_label",
    "find_credential",
    "held_credentials",
    "list_credentials",
    "receive_credential",
    # trust (the wallet's trust list)
    "StoredTrustList",
    "set_trust_list",
    "stored_trust_list",
    "trust_list",
    # request, purpose, request_object (specs/request.md)
    "ClientIdPrefix",
    "Purpose",
    "Request",
    "RequestRetention",
    "ResponseMode",
    "TrustListVerifierKeys",
    "VerifierKeys",
    "format_purpose",
    "open_request_object",
    "parse_purpose",
    "parse_request",
    "request_id",
    "restore_request",
    # evaluation, consent, release (the consent engine)
    "Block",
    "ClaimLine",
    "Consent",
    "CredentialLine",
    "Evaluation",
    "Presentation",
    "Refusal",
    "Release",
    "State",
    "Status",
    "StoredRequest",
    "Caution",
    "evaluate",
    # wording (plain language in both languages)
    "Text",
    "format_date",
    "join_labels",
    "type_name",
    # credential_offer, openid4vci, proof (OpenID4VCI 1.0, specs/openid4vci.md)
    "CredentialOffer",
    "IssuerEndpoints",
    "OfferReference",
    "TxCodeSpec",
    "check_tx_code",
    "fetch_credential_offer",
    "make_proof_jwt",
    "parse_credential_offer",
    "redeem_offer",
    # mailbox (the relay, specs/relay.md)
    "Inbox",
    "InboxMessage",
    "MailboxClient",
    "RelayAddress",
    # openid4vp (OpenID4VP 1.0 over the network, specs/openid4vp.md)
    "Delivery",
    "RequestReference",
    "X509HashKeys",
    "approve_and_send",
    "fetch_request",
    "parse_request_uri",
    "refuse_and_send",
    "response_body",
    "send_refusal",
    "send_release",
    # relay_account, inbox (the citizen's relay mailbox and the requests it brings)
    "AgencyAddress",
    "RelayAccount",
    "address_agency",
    "agency_address",
    "agency_addresses",
    "mailbox_client",
    "register_relay",
    "relay_account",
    "URI_LIST",
    "Collected",
    "InboxItem",
    "arrived_by_network",
    "collect",
    # grant, grant_request, grant_item, grant_relay, grant_sync (access grants, specs/grant.md)
    "GRANTS_SCHEMA",
    "Grant",
    "GrantItemState",
    "GrantKeys",
    "Grants",
    "GrantStatus",
    "ItemSpec",
    "ItemSource",
    "GrantElement",
    "format_grant_element",
    "grant_element",
    "is_grant_request",
    "GrantClient",
    "RelayFetch",
    "SyncReport",
    "sync_grants",
    # transport (HTTP for every protocol client)
    "HttpxTransport",
    "Response",
    "Transport",
]
