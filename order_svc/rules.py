"""The order rules as plain functions: input checks, order ids, totals, page tokens."""

import base64
import json
import re
import uuid
from datetime import datetime

from ordersync.contract.event_rules import MAX_INT32, MAX_QTY, MIN_UNIT_PRICE
from ordersync.contract.ids import InvalidInput, check_id  # noqa: F401 (re-exported: part of the rules)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Our tokens are about 150 characters; anything much longer is not one of ours.
MAX_PAGE_TOKEN_LENGTH = 256

# Only the hyphenated 8-4-4-4-12 form: uuid.UUID would also take "{...}", "urn:uuid:..." and
# bare hex, and one request must have one spelling for the request_id to make retries safe.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)

# Fixed namespace: the same (user_id, request_id) gives the same order id on every instance.
_ORDER_NAMESPACE = uuid.UUID("6f1c3f4e-2a8b-4d59-9a53-0f0e7d1b2c44")


class NotEnoughStock(Exception):
    """The product has fewer units left than ordered."""


class NotOrderable(Exception):
    """The catalog's data for the product would give an event that readers refuse."""


def check_qty(qty: int) -> int:
    if qty <= 0:
        raise InvalidInput(f"qty must be at least 1, got {qty}")
    if qty > MAX_QTY:
        raise InvalidInput(f"qty must be at most {MAX_QTY}, got {qty}")
    return qty


def check_request_id(value: str) -> str:
    """request_id must be a UUID; it is returned in canonical lower-case form."""
    if not value:
        raise InvalidInput("request_id is required: a client-chosen UUID that makes retries safe")
    if not _UUID.fullmatch(value):
        raise InvalidInput(f"request_id {value[:80]!r} is not a UUID in the form "
                           "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (8-4-4-4-12 hex digits)")
    return value.lower()


def order_id_for(user_id: str, request_id: str) -> str:
    """Deterministic, so a retry reaching any instance maps to the same order."""
    return str(uuid.uuid5(_ORDER_NAMESPACE, f"{user_id}\n{request_id}"))


def check_unit_price(product_id: str, unit_price: int) -> int:
    # The Catalog and the orders table refuse such an event (ordersync.contract.event_rules).
    if unit_price < MIN_UNIT_PRICE:
        raise NotOrderable(f"product {product_id} has unit price {unit_price} in the catalog, below the "
                           f"minimum {MIN_UNIT_PRICE}; it cannot be ordered until its price is fixed")
    return unit_price


def total_price(qty: int, unit_price: int) -> int:
    total = qty * unit_price
    if total > MAX_INT32:
        raise InvalidInput(f"qty {qty} at unit price {unit_price} exceeds the largest order total {MAX_INT32}")
    return total


def check_stock(product_id: str, qty: int, stock: int) -> None:
    if qty > stock:
        raise NotEnoughStock(f"product {product_id} has {stock} units left, {qty} were ordered")


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidInput(f"page_size must not be negative, got {requested}")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_page_token(created_at: datetime, order_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), order_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str) -> tuple[datetime, str]:
    """The position after which the next page starts (keyset pagination)."""
    malformed = InvalidInput("page_token is malformed: pass the next_page_token of the previous page")
    if len(token) > MAX_PAGE_TOKEN_LENGTH:
        raise malformed
    try:
        # RecursionError: deeply nested JSON such as "[[[[...".
        position = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, RecursionError):
        raise malformed from None
    if not (isinstance(position, list) and len(position) == 2 and all(isinstance(p, str) for p in position)):
        raise malformed
    try:
        return datetime.fromisoformat(position[0]), position[1]
    except ValueError:
        raise malformed from None
