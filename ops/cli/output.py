"""What `ordersync` prints: a reply as one JSON document (--json), or as text for a person."""

import json

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message


def as_json(reply: Message) -> str:
    """`reply` as protobuf's JSON mapping with the proto's field names; zeros and empty fields
    printed too (a stock of 0 is an answer, not a missing field)."""
    return json.dumps(MessageToDict(reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True),
                      indent=2)


def order(o) -> str:
    """One order, a field a line."""
    fields = [("order_id", o.order_id), ("user_id", o.user_id), ("product_id", o.product_id), ("qty", o.qty),
              ("unit_price", o.unit_price), ("total_price", o.total_price), ("created_at", o.created_at.ToJsonString())]
    return "\n".join(f"{name:<12} {value}" for name, value in fields)


def orders(reply) -> str:
    """A page of orders, a line each; the token of the next page last, when there is one."""
    rows = [(o.order_id, o.product_id, o.qty, o.unit_price, o.total_price, o.created_at.ToJsonString()) for o in reply.orders]
    text = table(("ORDER_ID", "PRODUCT_ID", "QTY", "UNIT_PRICE", "TOTAL_PRICE", "CREATED_AT"), rows)
    return f"{text}\nnext_page_token: {reply.next_page_token}" if reply.next_page_token else text


def products(reply) -> str:
    rows = [(p.product_id, p.product_name, p.stock, p.unit_price) for p in reply.products]
    return table(("PRODUCT_ID", "PRODUCT_NAME", "STOCK", "UNIT_PRICE"), rows)


def table(header: tuple[str, ...], rows: list[tuple]) -> str:
    """Columns as wide as their widest cell, numbers to the right."""
    cells = [[str(value) for value in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    right = [bool(rows) and isinstance(rows[0][i], int) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(row, widths, right)).rstrip()
                     for row in cells)
