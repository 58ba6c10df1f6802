"""The control channel: length-prefixed JSON over any pair of byte ends (pipes like a child's stdin/stdout, or a
socket). Fast tier: no processes."""

from __future__ import annotations

import json
import os
import socket
import struct
import threading

import pytest

from ipclab import control


@pytest.fixture
def pair():
    a, b = control.pipe_pair()
    yield a, b
    a.close()
    b.close()


def test_messages_cross_pipes_in_order(pair) -> None:
    a, b = pair
    a.send({"type": "CONFIG", "size": 64})
    a.send({"type": "START"})
    assert b.recv(timeout=1) == {"type": "CONFIG", "size": 64}
    assert b.recv(timeout=1) == {"type": "START"}
    b.send({"type": "READY"})
    assert a.recv(timeout=1) == {"type": "READY"}


def test_a_message_larger_than_a_pipe_buffer_arrives_whole(pair) -> None:
    """A RESULT of megabytes: write_all must loop over short writes while the reader drains."""
    a, b = pair
    big = {"type": "RESULT", "raw": "x" * (3 << 20)}
    writer = threading.Thread(target=a.send, args=(big,))
    writer.start()
    try:
        assert b.recv(timeout=10) == big
    finally:
        writer.join()


def test_split_delivery_waits_for_the_whole_message() -> None:
    r, w = os.pipe()
    try:
        reader = control.Reader(r)
        data = control.encode({"type": "READY", "n": 1})
        for i, byte in enumerate(data):
            os.write(w, bytes([byte]))
            reader.feed()
            message = reader.pop()
            assert (message is None) == (i < len(data) - 1)
        assert message == {"type": "READY", "n": 1}
    finally:
        os.close(r)
        os.close(w)


def test_eof_is_control_closed(pair) -> None:
    a, b = pair
    a.close()
    with pytest.raises(control.ControlClosed):
        b.recv(timeout=1)
    assert b.reader.closed


def test_no_message_in_time_is_a_timeout(pair) -> None:
    _, b = pair
    with pytest.raises(TimeoutError):
        b.recv(timeout=0.01)


def _fed(raw: bytes) -> control.Reader:
    r, w = os.pipe()
    os.write(w, raw)
    os.close(w)
    reader = control.Reader(r)
    reader.feed()
    os.close(r)
    return reader


def test_an_oversized_length_is_refused_before_reading_it() -> None:
    reader = _fed(struct.pack("!I", control.MAX_MESSAGE + 1))
    with pytest.raises(ValueError, match="exceeds"):
        reader.pop()


@pytest.mark.parametrize("body", [b"[1, 2]", b'{"no_type": 1}', b"\xff\xfe not json"])
def test_malformed_messages_are_value_errors(body: bytes) -> None:
    reader = _fed(struct.pack("!I", len(body)) + body)
    with pytest.raises(ValueError, match="malformed"):
        reader.pop()


def test_nan_is_never_sent() -> None:
    with pytest.raises(ValueError):
        control.encode({"type": "RESULT", "x": float("nan")})


def test_the_same_channel_works_over_a_socket() -> None:
    s1, s2 = socket.socketpair()
    a, b = control.ControlChannel(s1, s1), control.ControlChannel(s2, s2)
    try:
        a.send({"type": "EXIT"})
        assert b.recv(timeout=1) == {"type": "EXIT"}
        assert a.fileno() == s1.fileno()
    finally:
        a.close()
        b.close()
    assert s1.fileno() == -1 and s2.fileno() == -1


def test_encoding_is_compact_json_with_a_length_prefix() -> None:
    data = control.encode({"type": "START"})
    (length,) = struct.unpack_from("!I", data)
    assert length == len(data) - 4 and json.loads(data[4:]) == {"type": "START"}
