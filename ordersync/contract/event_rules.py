"""What a valid OrderPlaced event is: the rules every reader of the `orders` topic applies.

The Order service checks requests with the same limits before it publishes, the
Catalog checks each event before it touches stock, and the orders table carries
the same limits as CHECK constraints (stack.schema), so a record that one side
refuses the other refuses too.
"""

from datetime import datetime, timezone

from ordersync.contract.ids import ID_PATTERN, MAX_ID_LENGTH, InvalidInput, check_id

__all__ = ["ID_PATTERN", "MAX_ID_LENGTH", "InvalidInput", "MAX_QTY", "MAX_INT32", "MIN_UNIT_PRICE",
           "EARLIEST_CREATED_AT", "LATEST_CREATED_AT", "check_order_placed"]

MAX_QTY = 10_000
MAX_INT32 = 2**31 - 1
MIN_UNIT_PRICE = 1
# A static window, because a database CHECK constraint cannot call NOW().
EARLIEST_CREATED_AT = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST_CREATED_AT = datetime(2100, 1, 1, tzinfo=timezone.utc)  # exclusive


def check_order_placed(event) -> None:
    """Raise InvalidInput naming the first rule that an OrderPlaced event breaks."""
    for name in ("order_id", "user_id", "product_id"):
        check_id(name, getattr(event, name))
    if not 1 <= event.qty <= MAX_QTY:
        raise InvalidInput(f"qty must be 1 to {MAX_QTY}, got {event.qty}")
    if not MIN_UNIT_PRICE <= event.unit_price <= MAX_INT32:
        raise InvalidInput(f"unit_price must be {MIN_UNIT_PRICE} to {MAX_INT32}, got {event.unit_price}")
    if event.total_price != event.qty * event.unit_price:
        raise InvalidInput(f"total_price {event.total_price} is not qty {event.qty} x unit_price "
                           f"{event.unit_price}")
    if not event.HasField("created_at"):
        raise InvalidInput("created_at is required")
    # From the raw fields: ToMilliseconds() raises on a Timestamp outside years 1 to 9999.
    millis = event.created_at.seconds * 1000 + event.created_at.nanos // 1_000_000
    if not _millis(EARLIEST_CREATED_AT) <= millis < _millis(LATEST_CREATED_AT):
        raise InvalidInput(f"created_at {millis} ms is outside {EARLIEST_CREATED_AT:%Y-%m-%d} to "
                           f"{LATEST_CREATED_AT:%Y-%m-%d}")


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
