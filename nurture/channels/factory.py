"""The channels a run sends through, by name: console, outbox, memory or live."""

from typing import TYPE_CHECKING

from nurture.channels.protocol import KINDS, Channel
from nurture.errors import ConfigError

if TYPE_CHECKING:
    from nurture.channels.config import Providers
    from nurture.store.db import Store


def channels_for(
    name: str, store: "Store | None" = None, providers: "Providers | None" = None
) -> dict[str, Channel]:
    """Every kind of message through the channel called `name` (console, outbox, memory, live).

    `live` sends through the providers configured in `providers` (settings.providers), and
    `providers.rate_limits` spaces the sends of every channel: through `store` when given, so
    every daemon on it shares the rate (nurture.channels.ratelimit). The outbox needs no store
    of its own (the completion writes its rows).
    """
    from nurture.channels import console, live, memory, outbox, ratelimit

    makers = {"console": console.ConsoleChannel, "outbox": outbox.OutboxChannel}
    if name == "live":
        if providers is None:
            raise ConfigError("the live channel needs the project's settings")
        channels = live.build(providers)
    elif name == "memory":
        channels = dict.fromkeys(KINDS, memory.MemoryChannel())
    elif name in makers:
        channels = dict.fromkeys(KINDS, makers[name]())
    else:
        raise ConfigError(f"unknown channel {name!r}: use one of console, outbox, live, memory")
    return ratelimit.limited(channels, providers.rates if providers else {}, store)
