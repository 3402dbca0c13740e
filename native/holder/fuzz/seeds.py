#!/usr/bin/env python3
"""Writes the seed inputs of the holder's frame fuzzer (corpus/frame_fuzzer/seed-*): a split byte,
then daemon -> holder streams, well-formed and not, so a short run starts from the protocol's shapes
(docs/holder.md, "Protocol"). Run it after changing the format."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ACK, STDOUT, STDERR, ERROR, EXIT = 2, 5, 6, 9, 10


def frame(t, payload=b''):
    return struct.pack('>BI', t, len(payload)) + payload


def write(name, split, stream):
    d = os.path.join(HERE, 'corpus', 'frame_fuzzer')
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'seed-' + name), 'wb') as f:
        f.write(bytes([split]) + stream)


write('session', 7, frame(ACK) + frame(STDOUT, b'hello\n') + frame(STDERR, b'oops\n') + frame(EXIT, b'\x00\x07'))
write('signalled', 0, frame(ACK) + frame(EXIT, b'\x01\x09'))
write('error', 3, frame(ERROR, b'no such container'))
write('huge-length', 1, bytes([STDOUT]) + b'\xff\xff\xff\xff')
write('unknown-type', 2, frame(ACK) + frame(77, b'x'))
write('bad-exit', 5, frame(ACK) + frame(EXIT, b'\x00'))
write('partial', 11, frame(ACK) + frame(STDOUT, b'a' * 300)[:100])
