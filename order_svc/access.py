"""Who may do what with orders, by the caller's identity (ordersync.serving.auth: a valid token's
subject and role). Plain functions; the servicer turns a Denied into PERMISSION_DENIED.

- A user acts as the token's subject: places and lists only their own orders, reads only their
  own. An empty user_id in CreateOrder or ListOrders is the subject's (a client with a token need
  not repeat who it is; the order id is derived from the same user_id either way).
- An operator reads any user's orders (GetOrder, ListOrders naming the user) and places none.
- A service token (another ordersync service) has nothing to do here: services call the Catalog.

GetOrder of another user's order answers NOT_FOUND, word for word as for an order that does not
exist (may_read says no; the servicer answers as for no row): PERMISSION_DENIED would tell whoever
holds any token that the order id exists, and order ids are derived from a user id and a request
id, which a caller may guess.
"""

from ordersync.serving.auth import OPERATOR, SERVICE, USER, Identity


class Denied(Exception):
    """The caller may not do this; the message says who cannot do what."""


def _not_for_services(caller: Identity) -> None:
    if caller.role == SERVICE:
        raise Denied(f"a service token ({caller.subject}) cannot call the Order API: "
                     "it is for users and operators")


def _as_user(caller: Identity, user_id: str) -> str:
    """The user a user's token acts for: its subject, named or implied."""
    if user_id and user_id != caller.subject:
        raise Denied(f"a token of {caller.subject} cannot act for {user_id}: a user's token acts only for its subject")
    return caller.subject


def placing_for(caller: Identity, user_id: str) -> str:
    """The user_id a CreateOrder of `caller` places its order for (`user_id` as requested), or Denied."""
    _not_for_services(caller)
    if caller.role == OPERATOR:
        raise Denied(f"an operator token ({caller.subject}) cannot place orders: operators read them; "
                     "a user places their own with their own token")
    return _as_user(caller, user_id)


def listing_for(caller: Identity, user_id: str) -> str:
    """The user_id whose orders a ListOrders of `caller` lists (`user_id` as requested), or Denied.
    For an operator it is the one named, checked as any user_id is (empty: none named)."""
    _not_for_services(caller)
    if caller.role == OPERATOR:
        return user_id
    return _as_user(caller, user_id)


def reader(caller: Identity) -> Identity:
    """The caller of a GetOrder, or Denied (a service's token) before anything is read."""
    _not_for_services(caller)
    return caller


def may_read(caller: Identity, owner: str) -> bool:
    """Whether `caller` may read an order of `owner` (GetOrder)."""
    return caller.role == OPERATOR or (caller.role == USER and caller.subject == owner)
