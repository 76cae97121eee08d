"""Notifications to a Slack channel through an incoming webhook (slack_sdk).

The webhook URL is the credential: no message of this channel shows more of it than
`https://hooks.slack.com/…` (nurture.channels.redact). The text is escaped as Slack's message
formatting asks (`&`, `<`, `>` as entities), so lead data cannot mention `<!channel>`.
"""

import logging
import re
from http.client import InvalidURL

from slack_sdk.errors import SlackRequestError
from slack_sdk.webhook import WebhookClient

from nurture.channels.config import NotificationsConfig
from nurture.channels.protocol import OutgoingMessage, PermanentFailure, SendResult
from nurture.channels.redact import malformed, redact, shown, transport_failure, url_secrets
from nurture.channels.webhook import http_failure

# slack_sdk logs every failure with its exception (the URL in it) before raising it: this one's
# failures are told, redacted, by the exceptions this channel raises instead.
_SDK_LOG = logging.getLogger("nurture.channels.slack.sdk")
_SDK_LOG.setLevel(logging.CRITICAL)
_SDK_LOG.propagate = False
# A link the template writes (<https://…|label>) stays a link; nothing else Slack parses between
# < and > (<!channel>, <@U…>, <#C…>) survives.
_LINK = re.compile(r"<(?:https?://|mailto:)[^\s<>|]+(?:\|[^<>]*)?>")
_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def escaped(text: str) -> str:
    """Text as Slack shows it literally: &, < and > as entities, links kept working."""
    parts, start = [], 0
    for link in _LINK.finditer(text):
        parts += [text[start : link.start()].translate(_ENTITIES), link.group()]
        start = link.end()
    return "".join([*parts, text[start:].translate(_ENTITIES)])


class SlackChannel:
    def __init__(self, config: NotificationsConfig) -> None:
        self.url = config.slack_webhook_url.get_secret_value() if config.slack_webhook_url else ""
        self.mention = config.slack_mention
        self.secrets = url_secrets(self.url)
        # No SDK retries: a retried POST may post twice; the engine retries with backoff.
        # The timeout as given (urllib takes a float): int() made 0.5 s a non-blocking 0.
        self.client = WebhookClient(
            self.url,
            timeout=config.timeout,  # type: ignore[arg-type]  # slack_sdk says int; urllib's float
            logger=_SDK_LOG,
            retry_handlers=[],
        )

    def send(self, message: OutgoingMessage) -> SendResult:
        body = escaped(message.body)
        text = f"*{escaped(message.subject)}*\n{body}" if message.subject else body
        if message.link:
            text += f"\n<{message.link}|Open the lead>"
        self._post(f"{self.mention} {text}" if message.urgent else text)  # the mention is ours
        return SendResult(f"slack-{message.key}")

    def check(self) -> str:
        """An empty post: Slack refuses it (`no_text`) without posting when the webhook is live."""
        try:
            self._post("")
        except PermanentFailure as failure:
            if "no_text" not in str(failure):  # no_service, invalid_token, a malformed URL...
                raise
        return f"the incoming webhook {shown(self.url)} is live"

    def _post(self, text: str) -> None:
        try:
            response = self.client.send(text=text)
        except SlackRequestError:  # "Invalid URL detected": not http(s)
            raise malformed("Slack", self.url) from None
        except (OSError, ValueError, InvalidURL) as error:
            raise transport_failure("Slack", error, self.url) from None
        if response.status_code != 200:
            retry_after = response.headers.get("Retry-After") or response.headers.get("retry-after")
            body = redact(response.body or "", self.secrets)
            raise http_failure("Slack", response.status_code, body, retry_after)
