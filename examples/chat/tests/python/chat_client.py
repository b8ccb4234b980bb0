"""A chat client in Python, using only PyPI's stock `protobuf` package.

It speaks protowright's TCP protocol from the schemas alone: each frame is a
varint length then a `protowright.v1.Envelope`. Calls are REQUEST envelopes
(kind 1) answered by RESPONSE envelopes (kind 2) with the same call id; a
call's method id is 32-bit FNV-1a of `/package.Service/Method`. What the
server pushes arrives as MESSAGE envelopes (kind 8) whose body is the
encoding of the chat's protocol root, `chat.v1.Event`. The schemas come from
the descriptor set protowright-build compiled from the .proto files (no
protoc on this machine).

Usage: chat_client.py PORT DESCRIPTOR_SET
Joins `lobby` as `py`, says a line, waits for `ada` to answer, leaves.
Prints one line per step; exits non-zero on the first surprise.
"""

import socket
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

REQUEST, RESPONSE, PING, PONG, MESSAGE = 1, 2, 5, 6, 8


def fnv1a32(text):
    value = 0x811C9DC5
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class Connection:
    def __init__(self, port, classes):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        self.classes = classes
        self.next_id = 1
        self.events = []  # pushed events that arrived while waiting for a response

    def write(self, envelope):
        body = envelope.SerializeToString()
        self.sock.sendall(varint(len(body)) + body)

    def read_frame(self):
        while True:
            length, shift, pos = 0, 0, 0
            while pos < len(self.buf):
                byte = self.buf[pos]
                length |= (byte & 0x7F) << shift
                shift += 7
                pos += 1
                if byte < 0x80:
                    if len(self.buf) - pos >= length:
                        frame = self.buf[pos : pos + length]
                        self.buf = self.buf[pos + length :]
                        envelope = self.classes["protowright.v1.Envelope"]()
                        envelope.ParseFromString(frame)
                        return envelope
                    break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection")
            self.buf += chunk

    def read(self):
        """Reads one envelope: answers a PING, keeps a MESSAGE's event for
        `next_event`; returns any other envelope, or None."""
        envelope = self.read_frame()
        if envelope.kind == PING:
            self.write(self.classes["protowright.v1.Envelope"](kind=PONG, call_id=envelope.call_id))
            return None
        if envelope.kind == MESSAGE:
            event = self.classes["chat.v1.Event"]()
            event.ParseFromString(envelope.body)
            self.events.append(event)
            return None
        return envelope

    def call(self, method, request, response_type):
        Envelope = self.classes["protowright.v1.Envelope"]
        call_id = self.next_id
        self.next_id += 1
        self.write(Envelope(kind=REQUEST, call_id=call_id, method=fnv1a32("/chat.v1.Chat/" + method),
                            body=request.SerializeToString(), timeout_micros=10_000_000))
        while True:
            reply = self.read()
            if reply is None or reply.kind == PONG:  # an event, or an earlier ping's answer
                continue
            assert reply.kind == RESPONSE and reply.call_id == call_id, reply
            if reply.HasField("status") and reply.status.code != 0:
                return None, reply.status
            response = self.classes[response_type]()
            response.ParseFromString(reply.body)
            return response, None

    def next_event(self):
        while not self.events:
            envelope = self.read()
            assert envelope is None or envelope.kind == PONG, envelope
        return self.events.pop(0)

    def ping(self, nonce):
        self.write(self.classes["protowright.v1.Envelope"](kind=PING, call_id=nonce))
        while True:
            reply = self.read()
            if reply is not None and reply.kind == PONG and reply.call_id == nonce:
                return


def load_classes(path):
    files = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as handle:
        files.ParseFromString(handle.read())
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:
        pool.Add(proto)
    names = ["protowright.v1.Envelope", "chat.v1.Event", "chat.v1.JoinRequest", "chat.v1.JoinReply",
             "chat.v1.SayRequest", "chat.v1.SayReply", "chat.v1.LeaveRequest", "chat.v1.LeaveReply"]
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name)) for name in names}


def main():
    port, descriptors = int(sys.argv[1]), sys.argv[2]
    classes = load_classes(descriptors)
    conn = Connection(port, classes)
    Join = classes["chat.v1.JoinRequest"]
    Say = classes["chat.v1.SayRequest"]

    _, status = conn.call("Join", Join(nick="ada", room="lobby"), "chat.v1.JoinReply")
    print("join as ada:", status.code, status.message)

    _, status = conn.call("NoSuchMethod", Join(), "chat.v1.JoinReply")
    print("unknown method:", status.code)

    reply, status = conn.call("Join", Join(nick="py", room="lobby", resume=7), "chat.v1.JoinReply")
    assert status is None, status
    print("joined", reply.room, "with", ", ".join(reply.members))
    for line in reply.history:
        print("history:", line.nick + ":", line.text)

    reply, status = conn.call("Say", Say(text="hello from python"), "chat.v1.SayReply")
    assert status is None, status
    print("said line", reply.seq)

    # Wait for Ada's answer, pushed by the server as a MESSAGE envelope.
    for _ in range(100):
        event = conn.next_event()
        if event.WhichOneof("event") == "said" and event.said.nick == "ada":
            print("ada said:", event.said.text, "(line", str(event.said.seq) + ")")
            break
    else:
        raise AssertionError("ada never answered")

    conn.ping(77)
    print("ping: pong")

    reply, status = conn.call("Leave", classes["chat.v1.LeaveRequest"](), "chat.v1.LeaveReply")
    assert status is None, status
    print("left", reply.room)


if __name__ == "__main__":
    main()
