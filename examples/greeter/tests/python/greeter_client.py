"""A greeter client in Python, using only PyPI's stock `protobuf` package.

It speaks protowright's TCP protocol from the schemas alone: each frame is a
varint length then a `protowright.v1.Envelope`; a call's method id is 32-bit
FNV-1a of `/package.Service/Method`. The schemas come from the descriptor set
protowright-build compiled from the .proto files (no protoc on this machine).

Usage: greeter_client.py PORT DESCRIPTOR_SET
Prints one line per check; exits non-zero on the first surprise.
"""

import socket
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


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
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.classes = classes
        self.next_id = 1

    def write(self, envelope):
        body = envelope.SerializeToString()
        self.sock.sendall(varint(len(body)) + body)

    def read(self):
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

    def call(self, path, request, response_type):
        Envelope = self.classes["protowright.v1.Envelope"]
        call_id = self.next_id
        self.next_id += 1
        self.write(Envelope(kind=1, call_id=call_id, method=fnv1a32(path),
                            body=request.SerializeToString(), timeout_micros=5_000_000))
        while True:
            reply = self.read()
            if reply.kind == 6:  # a PONG to an earlier ping: skip
                continue
            assert reply.kind == 2 and reply.call_id == call_id, reply
            if reply.HasField("status") and reply.status.code != 0:
                return None, reply.status
            response = self.classes[response_type]()
            response.ParseFromString(reply.body)
            return response, None

    def send_one_way(self, path, request):
        Envelope = self.classes["protowright.v1.Envelope"]
        self.write(Envelope(kind=3, method=fnv1a32(path), body=request.SerializeToString()))

    def ping(self, nonce):
        Envelope = self.classes["protowright.v1.Envelope"]
        self.write(Envelope(kind=5, call_id=nonce))
        reply = self.read()
        assert reply.kind == 6 and reply.call_id == nonce, reply


def load_classes(path):
    files = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as handle:
        files.ParseFromString(handle.read())
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:
        pool.Add(proto)
    names = ["protowright.v1.Envelope", "greeter.v1.HelloRequest", "greeter.v1.HelloReply",
             "greeter.v1.VisitRequest", "greeter.v1.VisitReply"]
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name)) for name in names}


def main():
    port, descriptors = int(sys.argv[1]), sys.argv[2]
    classes = load_classes(descriptors)
    conn = Connection(port, classes)
    Hello = classes["greeter.v1.HelloRequest"]
    Visit = classes["greeter.v1.VisitRequest"]

    reply, status = conn.call("/greeter.v1.Greeter/SayHello", Hello(name="Python"), "greeter.v1.HelloReply")
    assert status is None, status
    print("say_hello:", reply.message)

    reply, status = conn.call("/greeter.v1.Greeter/SayHello", Hello(name=""), "greeter.v1.HelloReply")
    print("say_hello empty:", status.code, status.message)

    reply, status = conn.call("/greeter.v1.Greeter/NoSuchMethod", Hello(name="x"), "greeter.v1.HelloReply")
    print("unknown method:", status.code)

    # A one-way message, then calls until its effect is visible: the server
    # counts it as a visit, so some call sees one more visit than calls made.
    conn.send_one_way("/greeter.v1.Greeter/Visit", Visit(name="passer-by"))
    counted = 0
    for calls in range(1, 50):
        reply, status = conn.call("/greeter.v1.Greeter/Visit", Visit(name="py"), "greeter.v1.VisitReply")
        assert status is None, status
        counted = reply.visits
        if counted == calls + 1:
            break
    print("one-way visit counted:", counted == calls + 1)

    conn.ping(77)
    print("ping: pong")


if __name__ == "__main__":
    main()
