"""#19 attack test: "send a test" is a request the server makes on a project admin's say,
so it is the same server-side request forgery boundary as a notification (#18): a
webhook URL that points inside is refused at delivery, nothing connects, and the answer
names neither the URL nor anything an inside service would have said."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import RunningHost
from tests.security.conftest import own_project


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """An inside service: a loopback port that records whether anybody connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    yield server
    server.close()


def _connected(server: socket.socket) -> bool:
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def test_send_a_test_to_an_inside_address_is_refused_and_nothing_connects(
        running_host: RunningHost, mallory: Any, listener: socket.socket) -> None:
    host = running_host
    project = own_project(host, mallory)  # mallory administers what she creates
    inside = f"https://127.0.0.1:{listener.getsockname()[1]}/metadata?token=s3cr3t"
    created = mallory.post(host.url(f"/api/projects/{project}/notification-rules"), json={
        "name": "probe", "channel": "teams", "events": ["task.failed"], "webhookUrl": inside})
    assert created.status_code == 201, created.text
    rule = created.json()
    assert "s3cr3t" not in created.text

    sent = mallory.post(host.url(f"/api/projects/{project}/notification-rules/"
                                 f"{rule['id']}/test"))

    assert sent.status_code == 200, sent.text
    answer = sent.json()
    assert answer["delivered"] is False
    assert "public" in answer["error"] or "internal" in answer["error"], answer
    assert "s3cr3t" not in sent.text and "127.0.0.1" not in sent.text
    assert not _connected(listener)
    activity = mallory.get(host.url(f"/api/activity?project={project}")).text
    assert "s3cr3t" not in activity


def test_a_reader_cannot_send_a_test_and_nothing_is_sent(
        running_host: RunningHost, mallory: Any, listener: socket.socket) -> None:
    host = running_host
    project = own_project(host, mallory)
    created = mallory.post(host.url(f"/api/projects/{project}/notification-rules"), json={
        "name": "probe", "channel": "teams", "events": ["task.failed"],
        "webhookUrl": f"https://127.0.0.1:{listener.getsockname()[1]}/hook"})
    assert created.status_code == 201, created.text
    reader = host.session("rita-reader", ("reader",))

    sent = reader.post(host.url(f"/api/projects/{project}/notification-rules/"
                                f"{created.json()['id']}/test"))

    assert sent.status_code in (403, 404), sent.text
    assert sent.headers["Content-Type"].startswith("application/problem+json")
    assert not _connected(listener)
