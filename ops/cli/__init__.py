"""ordersync: the command-line client of the Order and Catalog services.

    ordersync [--target HOST:PORT] [--deadline SECONDS] [--json] [--token TOKEN | --user U [--role R]] COMMAND
    ordersync order create --product P --qty N [--user U] [--request-id R]
    ordersync order get ORDER_ID
    ordersync order list [--user U] [--page-size N] [--page-token T | --all]
    ordersync products
    ordersync trace ORDER_ID ...          (ops.journey: an order's way through the system)

Every call carries a token: --token, else $ORDERSYNC_TOKEN, else one minted for --user (before the
command, or the command's own --user) in --role with the stack's signing key (AUTH_PRIVATE_KEY), as
ordersync-token does. `order create/list --user U` names whose order (default: the token's user).
It calls --target, else the settings' Order instances (ORDER_PORTS) or Catalog (CATALOG_PORT).

A call that fails with UNAVAILABLE or DEADLINE_EXCEEDED is tried again (4 attempts, short pauses,
all within --deadline), on the next Order instance after UNAVAILABLE. `order create` sends one
request_id (a new UUID unless --request-id) with every attempt: a retry is the same order, never a
second one.

With TRACING on (the default) the command is the root of its trace: a span "ordersync <command>"
with a child per attempt, sent to Zipkin (ZIPKIN_HOST/_PORT) as the service ordersync-cli; the
services' spans join it.

Exit codes:
  0  done
  1  refused by the service: INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION,
     ALREADY_EXISTS, UNAUTHENTICATED (any status but those of 3); stderr: "ordersync: CODE: details"
  2  usage, or a bad setting (the signing key unreadable, say)
  3  UNAVAILABLE or DEADLINE_EXCEEDED after the retries: try again later (an order not acknowledged
     may still arrive: retry with the --request-id the message names)
"""

import logging
import os
import socket
import sys
from collections.abc import Mapping

from opentelemetry import trace

from ops.cli import args as cli_args
from ops.cli import commands, output
from ops.cli.calls import Caller, CallFailed, exit_code
from ordersync.config import TEXT, Settings, exits_on_bad_setting, private_key, setting
from ordersync.contract.ids import InvalidInput, check_id
from ordersync.serving import auth, tracing

TRACE_FLUSH_S = 2  # what the last step may wait for Zipkin: a command never hangs on its spans

# A minted token lives only as long as the command; a few minutes cover any --deadline.
TOKEN_TTL_S = 300


@exits_on_bad_setting
def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = cli_args.parser(__doc__ or "")
    args = parser.parse_args(argv)
    if args.command == "trace":
        import ops.journey  # only here: the operators' tool, and its imports, for this command alone
        return ops.journey.main(args.rest)
    settings = Settings.from_env(env)
    name = args.command if args.command != "order" else f"order {args.order_command}"
    command = commands.COMMANDS[name]
    addresses = [args.target] if args.target else command.addresses(settings)
    token = _token(parser, args, env, settings)
    # A Zipkin that is not there costs this command its spans, never a line on stderr.
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
    traces = tracing.start("ordersync-cli", socket.gethostname(), settings.trace_export)
    caller = Caller(command.stub, addresses, token, settings.grpc_tls, args.deadline,
                    traced=tracing.traced_channel(traces))
    try:
        with trace.get_tracer("ops.cli").start_as_current_span(f"ordersync {name}") as span:
            try:
                reply = command.run(caller, args)
            except CallFailed as failed:
                span.set_attribute("rpc.grpc.status_code", failed.code.name)
                print(f"ordersync: {failed}", file=sys.stderr)
                return exit_code(failed.code)
            except KeyboardInterrupt:
                return 130
    finally:
        caller.close()
        tracing.stop(traces, TRACE_FLUSH_S)
    print(output.as_json(reply) if args.json else command.text(reply))
    return 0


def _token(parser, args, env: Mapping[str, str], settings: Settings) -> str:
    """--token, $ORDERSYNC_TOKEN, or one minted for --user with the stack's signing key."""
    token = args.token or setting(env, "ORDERSYNC_TOKEN", TEXT, "")
    if token:
        return token
    subject = args.as_user or getattr(args, "user_id", "")
    if not subject:
        parser.error("no token: give --token TOKEN (or ORDERSYNC_TOKEN), or --user USER to mint one "
                     "with the stack's signing key")
    try:
        check_id("--user", subject)
    except InvalidInput as e:
        parser.error(str(e))
    return auth.mint(private_key(settings.auth_private_key), subject, args.role, TOKEN_TTL_S)
