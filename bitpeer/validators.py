"""
attrs validators shared by the frozen options classes of every layer
(PeerOptions, CrawlOptions, ...): their messages are the ones an option
error shows, so they name the field and the value.
"""


def positive(instance, attribute, value):
    """An attrs validator: the value must be more than 0."""
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")
