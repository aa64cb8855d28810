"""Errors of review decisions, in their own module so validators and services share them."""


class DecisionRefused(Exception):
    """The decision is not possible as asked: the generation's state, or the request's
    content (its reason, its form key). The message says what to do instead."""
