"""The outbox channel: keep every message in the store's outbox table instead of sending it.

The row is returned with the result and written by the completion, in the same transaction as
the execution it belongs to: no extra transaction per message.
"""

import os

from nurture.channels.protocol import OutgoingMessage, SendResult, shown_text


class OutboxChannel:
    transactional = True  # the row is the send: it exists only once the completion commits

    def send(self, message: OutgoingMessage) -> SendResult:
        row = {
            "execution_id": message.execution_id,
            "channel": message.channel,
            "recipient": message.recipient,
            "subject": message.subject,
            "body": shown_text(message),  # a template's content SID and variables, else the body
        }
        # 48 random bits, as the first 12 hex digits of a uuid4 were, at a fifth of its cost
        return SendResult(f"outbox-{os.urandom(6).hex()}", outbox=row)
