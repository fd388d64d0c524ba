"""The command line of `ordersync`: its options and commands, and the checks of obvious input
(argparse errors: exit code 2). What only the services know (a product, the stock, the ids' form)
they check themselves."""

import argparse
import math
import re

from ordersync.serving import auth

DEFAULT_DEADLINE_S = 10.0
# The form the Order service takes (order_svc/rules.py): 8-4-4-4-12 hex digits, nothing around them.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number, at least 1")
    return number


def seconds(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not 0 < number < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of seconds greater than 0")
    return number


def target(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: host:port, the port 1-65535")
    return text


def request_id(text: str) -> str:
    if not _UUID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r}: a UUID, xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
    return text


def parser(doc: str) -> argparse.ArgumentParser:
    """The parser of `ordersync`, its help the module docstring `doc` (the exit codes)."""
    top = argparse.ArgumentParser(prog="ordersync", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--target", type=target, metavar="HOST:PORT",
                     help="the server to call (default: the settings' Order instances, or the Catalog)")
    top.add_argument("--deadline", type=seconds, default=DEFAULT_DEADLINE_S, metavar="SECONDS",
                     help=f"seconds for the whole command, retries included ({DEFAULT_DEADLINE_S:g})")
    top.add_argument("--json", action="store_true", help="print the reply as one JSON document (proto field names)")
    top.add_argument("--token", metavar="TOKEN", help="the bearer token of every call (default: $ORDERSYNC_TOKEN)")
    top.add_argument("--user", dest="as_user", metavar="USER", help="without a token: mint one for USER")
    top.add_argument("--role", choices=auth.ROLES, default=auth.USER, help="the minted token's role (user)")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    order = commands.add_parser("order", help="place and read orders: create, get, list")
    orders = order.add_subparsers(dest="order_command", required=True, metavar="ORDER_COMMAND")
    create = orders.add_parser("create", help="place an order and print it")
    create.add_argument("--product", required=True, dest="product_id", metavar="P", help="the product id, e.g. CATALOG-001")
    create.add_argument("--qty", required=True, type=positive_int, metavar="N", help="units to order")
    create.add_argument("--user", dest="user_id", default="", metavar="U", help="whose order (default: the token's user)")
    create.add_argument("--request-id", type=request_id, metavar="R",
                        help="the UUID that makes the order's retries safe (default: a new one); the same one "
                             "again answers the same order")
    get = orders.add_parser("get", help="print one order")
    get.add_argument("order_id")
    listing = orders.add_parser("list", help="print a user's orders, newest first")
    listing.add_argument("--user", dest="user_id", default="", metavar="U", help="whose orders (default: the token's user)")
    listing.add_argument("--page-size", type=positive_int, metavar="N", help="orders per page (the service's default: 20)")
    pages = listing.add_mutually_exclusive_group()
    pages.add_argument("--page-token", default="", metavar="T", help="the next_page_token of the page before")
    pages.add_argument("--all", action="store_true", help="every page")

    commands.add_parser("products", help="print the Catalog's products")
    # Everything after `trace` is ops.journey's, its options and --help too: no prefix this parser knows.
    trace = commands.add_parser("trace", help="an order's way through the system (ops.journey; trace --help)",
                                prefix_chars="+", add_help=False)
    trace.add_argument("rest", nargs=argparse.REMAINDER)
    return top
