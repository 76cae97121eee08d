"""Notifications to a Slack channel through an incoming webhook (slack_sdk)."""

from slack_sdk.webhook import WebhookClient

from nurture.channels import OutgoingMessage, PermanentFailure, SendResult, TemporaryFailure
from nurture.channels.config import NotificationsConfig
from nurture.channels.webhook import http_failure

_BROKEN = ("no_service", "no_team", "invalid_token", "channel_not_found", "channel_is_archived")


class SlackChannel:
    def __init__(self, config: NotificationsConfig) -> None:
        url = config.slack_webhook_url.get_secret_value() if config.slack_webhook_url else ""
        # No SDK retries: a retried POST may post twice; the engine retries with backoff.
        self.client = WebhookClient(url, timeout=int(config.timeout), retry_handlers=[])

    def send(self, message: OutgoingMessage) -> SendResult:
        text = f"*{message.subject}*\n{message.body}" if message.subject else message.body
        self._post(text)
        return SendResult(f"slack-{message.key}")

    def check(self) -> str:
        """An empty post: Slack refuses it (`no_text`) without posting when the webhook is live."""
        try:
            self._post("")
        except PermanentFailure as failure:
            if any(word in str(failure) for word in _BROKEN):
                raise
            return "the incoming webhook is live"
        return "the incoming webhook is live"

    def _post(self, text: str) -> None:
        try:
            response = self.client.send(text=text)
        except OSError as error:
            raise TemporaryFailure(f"Slack: {type(error).__name__}: {error}") from None
        if response.status_code != 200:
            retry_after = response.headers.get("Retry-After") or response.headers.get("retry-after")
            raise http_failure("Slack", response.status_code, response.body or "", retry_after)
