"""Signed orders over MQTT: households publish on ``gridledger/orders/<participant>``.

An order authenticates itself (its participant's EIP-712 signature), so it needs no sign-in:
the node's bridge hands each batch of messages to :meth:`LiveMarket.submit_orders` (one store read,
one pass under the book lock, one commit) and publishes, after the commit, the ack
``{"participant", "nonce", "interval_start_s", "status", "code", "reason", "order_id"}`` on
``gridledger/order-acks/<participant>``. The broker carries the connections of thousands of
households; the node sees one subscription.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import paho.mqtt.client as mqtt

from gridledger.errors import GridledgerError, OrderRejected, ValidationError
from gridledger.market import SignedOrder, signed_order_from_json
from gridledger.node.market import LiveMarket, OrderReceipt

log = logging.getLogger(__name__)

ORDERS_TOPIC = "gridledger/orders/"
ORDER_ACKS_TOPIC = "gridledger/order-acks/"


class OrderHandler:
    """Signed orders (``gridledger/orders/<participant>``) to the live market, for an
    :class:`~gridledger.metering.mqtt.MqttBatchBridge`; each acked after its commit."""

    topic_prefix = ORDERS_TOPIC
    batch_size = 250  # small: a batch holds the book lock, and readings wait for its end

    def __init__(self, market: LiveMarket) -> None:
        self.market = market

    def handle(self, messages: list[mqtt.MQTTMessage]) -> list[tuple[str, dict[str, Any]]]:
        parsed: list[SignedOrder] = []
        acks: list[tuple[str, dict[str, Any]]] = []
        for message in messages:
            participant = message.topic.removeprefix(ORDERS_TOPIC)
            try:
                signed = signed_order_from_json(json.loads(message.payload))
            except (ValueError, ValidationError) as exc:
                log.warning("order rejected: code=malformed topic=%s %s", message.topic, exc)
                acks.append(_ack(participant, None, "rejected", "malformed", str(exc)))
                continue
            if signed.order.participant != participant:
                reason = f"participant: the order is for {signed.order.participant}"
                acks.append(_ack(participant, signed, "rejected", "wrong_topic", reason))
                continue
            parsed.append(signed)
        outcomes = self.market.submit_orders(parsed)
        acks += [_order_ack(s, o) for s, o in zip(parsed, outcomes, strict=True)]
        return acks


def _order_ack(
    signed: SignedOrder, outcome: OrderReceipt | GridledgerError
) -> tuple[str, dict[str, Any]]:
    participant = signed.order.participant
    if isinstance(outcome, OrderReceipt):
        status = "duplicate" if outcome.duplicate else "accepted"
        return _ack(participant, signed, status, None, "", outcome.row.id)
    code = outcome.code if isinstance(outcome, OrderRejected) else type(outcome).__name__
    return _ack(participant, signed, "rejected", code, str(outcome))


def _ack(
    participant: str,
    signed: SignedOrder | None,
    status: str,
    code: str | None,
    reason: str,
    order_id: int | None = None,
) -> tuple[str, dict[str, Any]]:
    order = signed.order if signed is not None else None
    return ORDER_ACKS_TOPIC + participant, {
        "participant": participant,
        "nonce": order.nonce if order is not None else None,
        "interval_start_s": order.interval_start_s if order is not None else None,
        "status": status,
        "code": code,
        "reason": reason,
        "order_id": order_id,
    }
