"""Deliveries of notification events to rules: one row per (event, rule), claimed with
``FOR UPDATE SKIP LOCKED`` so two hosts never send the same notification at once."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection


def ensure_delivery(conn: Connection[Any], *, event_id: str, rule_id: UUID,
                    project_id: UUID | None, task_id: UUID | None, event: str,
                    channel: str) -> None:
    conn.execute(
        "INSERT INTO notification_deliveries (event_id, rule_id, project_id, task_id, event,"
        " channel) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (event_id, rule_id, project_id, task_id, event, channel))


def claim_delivery(conn: Connection[Any], event_id: str,
                   rule_id: UUID) -> dict[str, Any] | None:
    """The delivery row, locked; None while another attempt holds it."""
    return conn.execute(
        "SELECT * FROM notification_deliveries WHERE event_id = %s AND rule_id = %s"
        " FOR UPDATE SKIP LOCKED", (event_id, rule_id)).fetchone()


def mark_delivered(conn: Connection[Any], delivery_id: UUID) -> None:
    conn.execute("UPDATE notification_deliveries SET status = 'delivered',"
                 " attempts = attempts + 1, last_error = NULL, delivered_at = now(),"
                 " updated_at = now() WHERE id = %s", (delivery_id,))


def mark_attempt_failed(conn: Connection[Any], delivery_id: UUID, *, attempts: int,
                        error: str, final: bool) -> None:
    conn.execute("UPDATE notification_deliveries SET status = %s, attempts = %s,"
                 " last_error = %s, updated_at = now() WHERE id = %s",
                 ("failed" if final else "pending", attempts, error, delivery_id))


def deliveries_of_task(conn: Connection[Any], task_id: UUID) -> list[dict[str, Any]]:
    """A task's deliveries with their rule's name, oldest first."""
    return conn.execute(
        "SELECT d.*, r.name AS rule_name FROM notification_deliveries d"
        " JOIN notification_rules r ON r.id = d.rule_id WHERE d.task_id = %s"
        " ORDER BY d.created_at, r.name", (task_id,)).fetchall()
