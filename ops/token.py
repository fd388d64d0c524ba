"""Issue a token for local use: print a bearer token for a user (or an operator, or a service),
signed with the stack's private key (AUTH_PRIVATE_KEY, under STACK_DIR: `make stack-up` makes it).

    ordersync-token --user alice [--role user|operator|service] [--ttl SECONDS]
    make token USER=alice [ROLE=operator] [TTL=600]
    grpcurl -H "authorization: Bearer $(.venv/bin/ordersync-token --user alice)" ...

Exit codes: 0 the token on stdout, 2 usage or a bad setting (the key missing, say).
"""

import argparse
import sys

from ordersync.config import Settings, exits_on_bad_setting, private_key
from ordersync.contract.ids import InvalidInput, check_id
from ordersync.serving import auth

DEFAULT_TTL_S = 3600
MAX_TTL_S = 30 * 24 * 3600


def _ttl(text: str) -> int:
    seconds = int(text)
    if not 1 <= seconds <= MAX_TTL_S:
        raise argparse.ArgumentTypeError(f"{text}: a number of seconds from 1 to {MAX_TTL_S} (30 days)")
    return seconds


@exits_on_bad_setting
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ordersync-token", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--user", required=True, help="the token's subject: a user id (or an operator's, a service's name)")
    parser.add_argument("--role", choices=auth.ROLES, default=auth.USER, help="user (default), operator or service")
    parser.add_argument("--ttl", type=_ttl, default=DEFAULT_TTL_S, help=f"seconds it is valid ({DEFAULT_TTL_S})")
    args = parser.parse_args(argv)
    try:
        subject = check_id("--user", args.user)
    except InvalidInput as e:
        parser.error(str(e))
    key = private_key(Settings.from_env().auth_private_key)
    print(auth.mint(key, subject, args.role, args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
