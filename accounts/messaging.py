"""Pluggable delivery of patient messages. The SMS gateway is the one true outside boundary."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

from accounts.models import OutboundMessage

logger = logging.getLogger("eyebridge.messages")


class MessageBackend:
    def deliver(self, *, to: str, body: str) -> None:
        raise NotImplementedError


class ConsoleBackend(MessageBackend):
    """Writes messages to the log: the default, for demos and development."""

    def deliver(self, *, to: str, body: str) -> None:
        logger.info("message to %s: %s", to, body)


class SmsGatewayBackend(MessageBackend):
    """Sends through an HTTP SMS gateway (configure SMS_GATEWAY_URL and SMS_GATEWAY_TOKEN)."""

    def deliver(self, *, to: str, body: str) -> None:
        import json
        import urllib.request

        url = settings.SMS_GATEWAY_URL
        if not url:
            raise RuntimeError("SMS_GATEWAY_URL is not configured")
        request = urllib.request.Request(  # noqa: S310 - the gateway URL is operator-configured
            url,
            data=json.dumps({"to": to, "text": body}).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {settings.SMS_GATEWAY_TOKEN}",
            },
        )
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310


def message_send(
    *, to: str, body: str, topic: str = "", dedupe_key: str | None = None
) -> OutboundMessage | None:
    """Record and deliver one message. With a dedupe_key, a second call for the same event sends
    nothing and returns None (tasks that send messages may be redelivered)."""
    if not to:
        return None
    backend_path = settings.MESSAGE_BACKEND
    try:
        with transaction.atomic():
            message = OutboundMessage.objects.create(
                to=to,
                body=body,
                backend=backend_path,
                status=OutboundMessage.Status.SENT,
                topic=topic,
                dedupe_key=dedupe_key,
            )
    except IntegrityError:
        return None
    try:
        import_string(backend_path)().deliver(to=to, body=body)
    except Exception:  # the gateway is outside our control; record, don't crash the caller
        logger.exception("message delivery failed")
        OutboundMessage.objects.filter(pk=message.pk).update(status=OutboundMessage.Status.FAILED)
        message.status = OutboundMessage.Status.FAILED
    return message
