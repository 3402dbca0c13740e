#!/usr/bin/env python3
"""Writes the seed inputs of the VMM fuzzers (native/vmm/fuzz/corpus/<fuzzer>/seed-*): a few
well-formed and malformed examples of what each fuzzer parses, so a short run starts from inputs
that reach deep into the code instead of rediscovering the formats. Run it after changing an input
format; libFuzzer adds what it finds on top of these in build/fuzz/."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(fuzzer, name, data):
    d = os.path.join(HERE, 'corpus', fuzzer)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'seed-' + name), 'wb') as f:
        f.write(data)


# --- virtqueue_fuzzer: [log2 size][features][mem size le16] + memory image ---------------------
AVAIL, DESC = 0, 0x240
NEXT, WRITE, INDIRECT = 1, 2, 4


def vq(log2size, features, descs, heads, extra=None, mem=0xffff):
    size = 1 << log2size
    img = bytearray(0x2000)
    struct.pack_into('<HH', img, AVAIL, 0, len(heads))
    for i, h in enumerate(heads):
        struct.pack_into('<H', img, AVAIL + 4 + 2 * (i % size), h)
    for i, (addr, length, flags, nxt) in descs.items():
        struct.pack_into('<QIHH', img, DESC + 16 * i, addr, length, flags, nxt)
    for at, blob in (extra or {}).items():
        if len(img) < at + len(blob):
            img.extend(b'\0' * (at + len(blob) - len(img)))
        img[at:at + len(blob)] = blob
    return bytes([log2size, features, mem & 0xff, mem >> 8]) + bytes(img).rstrip(b'\0')


def table(entries):
    return b''.join(struct.pack('<QIHH', *e) for e in entries)


write('virtqueue_fuzzer', 'simple', vq(3, 3, {0: (0x3000, 16, NEXT, 1), 1: (0x3100, 512, NEXT | WRITE, 2), 2: (0x3400, 1, WRITE, 0)}, [0]))
write('virtqueue_fuzzer', 'indirect', vq(3, 3, {5: (0x3000, 48, INDIRECT, 0)}, [5],
      {0x3000: table([(0x4000, 44, NEXT, 2), (0x4100, 64, WRITE, 0), (0x4040, 8, NEXT, 1)])}))
write('virtqueue_fuzzer', 'loop', vq(2, 1, {0: (0x3000, 8, NEXT, 1), 1: (0x3000, 8, NEXT, 0)}, [0, 0]))
write('virtqueue_fuzzer', 'nested-indirect', vq(3, 2, {0: (0x3000, 16, INDIRECT, 0)}, [0],
      {0x3000: table([(0x3100, 16, INDIRECT, 0)]), 0x3100: table([(0x4000, 8, 0, 0)])}))
write('virtqueue_fuzzer', 'past-end', vq(3, 3, {0: (0xfff8, 16, 0, 0), 1: (0xffffffffffffff00, 0x200, WRITE, 0)}, [0, 1], mem=0))
write('virtqueue_fuzzer', 'many', vq(8, 3, {i: (0x3000 + 64 * i, 64, (WRITE if i % 2 else 0) | (NEXT if i % 3 == 0 else 0), i + 1) for i in range(40)}, list(range(0, 40, 2))))
write('virtqueue_fuzzer', 'bad-head', vq(2, 0, {0: (0x3000, 8, 0, 0)}, [0, 9]))


# --- vsock_fuzzer: [mode] then steps [kind][args...] ---------------------------------------------
GUEST_SEND, HOST_CONNECT, HOST_WRITE, HOST_CLOSE, ACCEPT, RECEIVE = 0, 2, 3, 4, 5, 6
REQUEST, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST = 1, 2, 3, 4, 5, 6, 7


def hdr(op, src_port=5000, dst_port=1024, length=0, flags=0, buf_alloc=65536, fwd_cnt=0, src_cid=3, dst_cid=2, typ=1):
    return struct.pack('<QQIIIHHIII', src_cid, dst_cid, src_port, dst_port, length, typ, op, flags, buf_alloc, fwd_cnt)


def send(op, payload=b'', framing=1, fix=0x0b, **kw):
    # fix: 1 = right CIDs and type, 2 = op clamped to 1..7, 8 = len from the payload (4, forcing
    # port 1024, is left to the fuzzer so explicit ports survive).
    h = hdr(op, length=len(payload), **kw)
    step = bytes([GUEST_SEND, fix | (framing << 4)]) + h + struct.pack('<H', len(payload)) + payload
    if framing == 2:
        step += bytes([len(h) // 2])
    return step


def host_connect(port):
    return bytes([HOST_CONNECT, 0x03]) + struct.pack('<H', port)


def host_write(data, index=0):
    return bytes([HOST_WRITE, index]) + struct.pack('<H', len(data)) + data


write('vsock_fuzzer', 'guest-connect', bytes([0]) + send(REQUEST) + bytes([ACCEPT, RECEIVE]) + send(RW, b'hello host')
      + host_write(b'hello guest') + bytes([RECEIVE]) + send(SHUTDOWN, flags=3) + bytes([RECEIVE]))
write('vsock_fuzzer', 'guest-connect-split-rx', bytes([7]) + send(REQUEST, framing=0) + bytes([ACCEPT])
      + send(RW, b'x' * 300, framing=2) + host_write(b'y' * 600) + bytes([RECEIVE]) + send(CREDIT_REQUEST)
      + bytes([HOST_CLOSE, 0, 0, RECEIVE]))
write('vsock_fuzzer', 'host-connect', bytes([2]) + host_connect(52) + bytes([RECEIVE])
      + send(RESPONSE, src_port=52, dst_port=1 << 30) + host_write(b'ping') + bytes([RECEIVE])
      + send(RW, b'pong', src_port=52, dst_port=1 << 30) + bytes([HOST_CLOSE, 0, 1, RECEIVE])
      + send(RST, src_port=52, dst_port=1 << 30))
write('vsock_fuzzer', 'host-connect-refused', bytes([0]) + host_connect(9) + bytes([RECEIVE])
      + send(RST, src_port=9, dst_port=1 << 30))
write('vsock_fuzzer', 'bad-line', bytes([0, HOST_CONNECT, 0x00, 6]) + b'HELLO\n' + bytes([RECEIVE]))
write('vsock_fuzzer', 'malformed', bytes([4]) + send(RW, b'stray') + send(99, fix=0x01) + send(REQUEST, dst_cid=9, fix=0x00)
      + send(CREDIT_UPDATE, b'zz', fix=0x07) + bytes([GUEST_SEND, 0x30]) + b'\0' * 44 + b'\0\0'
      + struct.pack('<QHBB', 0xfffffffffffff000, 64, 2, 3) + bytes([RECEIVE]))
write('vsock_fuzzer', 'credit', bytes([0]) + send(REQUEST, buf_alloc=100) + bytes([ACCEPT])
      + host_write(b'c' * 300) + bytes([RECEIVE, RECEIVE]) + send(CREDIT_UPDATE, buf_alloc=100, fwd_cnt=100)
      + bytes([RECEIVE]))


# --- net_fuzzer: [setup] then steps [kind % 9][args...] -------------------------------------------
# setup bits: 1 MRG_RXBUF, 2 EVENT_IDX, 4 INDIRECT, 8 offloads negotiated, 0x10 backend offloads,
# 0x20 tx rate limit, 0x40 rx rate limit, 0x80 the backend scatters (direct rx into guest buffers).
NET_TX, NET_RX, NET_FRAMES, NET_FULL, NET_TIME, NET_POKE, NET_RESET, NET_KICK = 0, 2, 3, 4, 5, 6, 7, 8


def net_addr(a):
    return bytes([0]) + struct.pack('<I', a - 0x10000)


def net_len(n):
    if n > 0xffff:  # kind 200..239: header + maximum frame - 8 + (next byte % 16)
        return bytes([200, n - (12 + 65550 - 8)])
    return bytes([0]) + struct.pack('<H', n)


def net_tx(head, descs, indirect=False):
    # descs: (addr, len, flags); NEXT is added by the harness between descriptors
    out = bytes([NET_TX, head, len(descs) - 1, 1 if indirect else 0])
    for addr, length, flags in descs:
        out += bytes([flags, 0]) + net_addr(addr) + net_len(length)
    return out


def net_rx(bufs):
    out = bytes([NET_RX, len(bufs) - 1])
    for head, addr, length in bufs:
        out += bytes([head, 0xf0]) + net_addr(addr) + net_len(length) + bytes([0])
    return out


def net_frames(lengths):
    out = bytes([NET_FRAMES, len(lengths) - 1])
    for n in lengths:  # kind < 200: u16 % 4000; kind >= 230: u32 % 200000
        out += bytes([0]) + struct.pack('<H', n) if n < 4000 else bytes([230]) + struct.pack('<I', n)
    return out


RXB = [(i, 0x10000 + 0x1000 * i, 2000) for i in range(4)]
write('net_fuzzer', 'rx-tx', bytes([0x1b]) + net_rx(RXB) + net_frames([100, 3000]) +
      net_tx(0, [(0x20000, 12, 0), (0x20010, 60, 0)]))
write('net_fuzzer', 'no-mrg', bytes([0x00]) + net_rx(RXB[:2]) + net_frames([1500, 3000, 40]))
write('net_fuzzer', 'no-buffers', bytes([0x03]) + net_frames([500, 600]) + net_rx(RXB[:1]) + net_rx(RXB[1:3]))
write('net_fuzzer', 'eagain', bytes([0x13]) + bytes([NET_FULL]) + net_tx(0, [(0x20000, 72, 0)]) +
      net_tx(1, [(0x20000, 72, 0)]) + bytes([NET_FULL]))
write('net_fuzzer', 'ratelimit', bytes([0x6b]) + net_tx(0, [(0x20000, 72, 0)]) + net_tx(1, [(0x20000, 1500, 0)]) +
      net_tx(2, [(0x20000, 72, 0)]) + net_rx(RXB) + net_frames([1000, 1000, 1000]) + bytes([NET_TIME]) +
      struct.pack('<H', 5000) + bytes([NET_TIME]) + struct.pack('<H', 20000))
write('net_fuzzer', 'bad-chains', bytes([0x07]) + net_tx(0, [(0x20000, 12, 2), (0x20010, 60, 0)]) +
      net_tx(3, [(0x3fff0, 72, 0)]) + net_tx(5, [(0x20000, 4, 0)]) + net_tx(7, [(0x20000, 65563, 0)], indirect=True) +
      net_rx([(0, 0x10000, 8)]) + bytes([NET_RESET, 0x01]))
BIGB = [(i, 0x10000 + 0x3000 * i, 8999) for i in range(8)]
write('net_fuzzer', 'rx-direct', bytes([0x9b]) + net_rx(BIGB[:4]) + net_rx(BIGB[4:]) + net_frames([20000, 100, 65562]) +
      net_rx(BIGB[:4]) + net_frames([65563, 3000]))


# --- snapshot_fuzzer: [mode] + a state file (native/vmm/snapshot/format.h) ----------------------
# mode 1: set the total length, 2: reseal the CRC, 4: the bytes go to the section decoders instead
# (8: with a memory record made to agree with the header page).
def crc32c(data, crc=0):
    crc ^= 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff


VM, MEMORY, VCPU, IRQCHIP, PIT, CLOCK, SERIAL, I8042, VIRTIO_MMIO, VIRTIO_DEVICE = range(1, 11)
RAM = 4 << 20
SNAP_ID = bytes(range(16))


def vm_section(vcpus=1, ram=RAM, config=b'{"kernel":"/k"}', flags=0):
    return struct.pack('<IIQI', vcpus, flags, ram, len(config)) + config


def memory_section(ram=RAM, sample_pages=64):
    header_page = memory_header(ram)
    return struct.pack('<QQQ', 4096 + ram, 4096, ram) + SNAP_ID + struct.pack('<IIII', crc32c(header_page), sample_pages, 0, 0)


# vcpu records {kind, length, bytes} (native/vmm/snapshot/vcpu_state.h), the KVM structures' sizes
# on x86-64: regs, sregs, fpu, xsave, xcrs, msrs (counted), lapic, mp_state, events, debugregs,
# cpuid (counted), tsc_khz.
VCPU_FIXED = {1: 144, 2: 312, 3: 416, 4: 4096, 5: 392, 7: 1024, 8: 4, 9: 64, 10: 128}


def vcpu_section(index, msrs=((0x10, 5), (0xc0000082, 0xffffffff81000000)), cpuid=((1, 0),), mp_state=0):
    out = b''
    for kind in range(1, 13):
        if kind in VCPU_FIXED:
            body = bytearray(VCPU_FIXED[kind])
            if kind == 1:
                struct.pack_into('<Q', body, 128, 0x1000000 + index)  # rip
            if kind == 8:
                struct.pack_into('<I', body, 0, mp_state)
        elif kind == 6:
            body = struct.pack('<I', len(msrs)) + b''.join(struct.pack('<IIQ', i, 0, v) for i, v in msrs)
        elif kind == 11:
            body = struct.pack('<I', len(cpuid)) + b''.join(struct.pack('<IIIIIIIIII', f, i, 0, 0, 0, 0, 0, 0, 0, 0) for f, i in cpuid)
        else:
            body = struct.pack('<I', 2000000)  # tsc_khz
        out += struct.pack('<II', kind, len(body)) + bytes(body)
    return out


# irqchip records {chip, length, bytes} (native/vmm/snapshot/machine_state.h): master and slave
# PIC (kvm_pic_state, 16 bytes), IOAPIC (kvm_ioapic_state, 216 bytes, at 0xfec00000); pit is a
# kvm_pit_state2 (112 bytes), clock a kvm_clock_data (48 bytes).
def irqchip_section(ioapic_base=0xfec00000, pic_irq_base=(0x20, 0x28)):
    out = b''
    for chip in (0, 1):
        pic = bytearray(16)
        pic[5] = pic_irq_base[chip]  # irq_base
        out += struct.pack('<II', chip, 16) + bytes(pic)
    ioapic = bytearray(216)
    struct.pack_into('<Q', ioapic, 0, ioapic_base)
    return out + struct.pack('<II', 2, 216) + bytes(ioapic)


def pit_section(mode=2, flags=0):
    channel = struct.pack('<IHBBBBBBBBBBq', 0x10000, 0, 0, 0, 0, 1, 1, 0, 3, mode, 0, 1, 123456)
    return channel * 3 + struct.pack('<I', flags) + b'\0' * 36


def clock_section(clock=987654321, flags=2):
    return struct.pack('<QIIQQ', clock, flags, 0, 0, 0) + b'\0' * 16


def memory_header(ram=RAM):
    return (b'VCSNAPMM' + struct.pack('<IIQ', 1, 4096, ram) + SNAP_ID).ljust(4096, b'\0')


def state_file(sections, version=1, vmm=b'vc-vmm 0.1.0'):
    table, payloads = b'', b''
    offset = 64 + 24 * len(sections)
    for tag, instance, payload in sections:
        table += struct.pack('<IIQQ', tag, instance, offset, len(payload))
        padded = payload + b'\0' * (-len(payload) % 8)
        payloads += padded
        offset += len(padded)
    head = b'VCSNAPST' + struct.pack('<IIQII', version, 64, offset, 0, len(sections)) + vmm.ljust(32, b'\0')
    body = head + table + payloads
    crc = crc32c(body)
    return body[:24] + struct.pack('<I', crc) + body[28:]


def snapshot(vcpus=1, extra=()):
    return [(VM, 0, vm_section(vcpus)), (MEMORY, 0, memory_section())] + \
        [(VCPU, i, vcpu_section(i)) for i in range(vcpus)] + \
        [(IRQCHIP, 0, irqchip_section()), (PIT, 0, pit_section()), (CLOCK, 0, clock_section())] + list(extra)


# The device sections (native/vmm/snapshot/device_state.h; layouts in docs/snapshots.md).
def serial_section(ier=0x01, lcr=0x03, mcr=0x0b, scr=0, fcr=0xc7, dll=1, dlm=0, pending=0, rx=b'ls\n'):
    return struct.pack('<8BI', ier, lcr, mcr, scr, fcr, dll, dlm, pending, len(rx)) + rx


def i8042_section(control=0x47, pending=0, output=b'\xfa'):
    return struct.pack('<BBI', control, pending, len(output)) + output


NET, BLK, RNG, VSOCK = 1, 2, 4, 19
QUEUES = {NET: 2, BLK: 1, RNG: 1, VSOCK: 3}
RING_FEATURES = (1 << 32) | (1 << 29) | (1 << 28)  # VERSION_1, EVENT_IDX, INDIRECT_DESC


def queue(mode=1, flags=3, size=256, next_avail=0, next_used=0, signalled=0, base=0x10000):
    return struct.pack('<BBHHHHQQQ', mode, flags, size, next_avail, next_used, signalled, base, base + 0x1000, base + 0x2000)


def mmio_section(kind=VSOCK, status=15, features=RING_FEATURES, interrupt=0, queues=None):
    if queues is None:
        queues = [queue(next_avail=40 + i, next_used=40 + i, signalled=39 + i, flags=7, base=0x10000 * (i + 1))
                  for i in range(QUEUES[kind])]
    return struct.pack('<IIIIQIIII', kind, status, 0, 1, features, 0, interrupt, 5, len(queues)) + b''.join(queues)


def device_section(kind=VSOCK):
    body = {BLK: struct.pack('<QII', 2048, 1, 7) + b'vc-root',
            NET: bytes([2, 0, 0, 0, 0, 7]) + struct.pack('<HQ', 1500, 3),
            VSOCK: struct.pack('<Q', 3), RNG: b''}[kind]
    return struct.pack('<I', kind) + body


DEVICES = [(SERIAL, 0, serial_section()), (I8042, 0, i8042_section()),
           (VIRTIO_MMIO, 2, mmio_section()), (VIRTIO_DEVICE, 2, device_section()),
           (VIRTIO_MMIO, 5, mmio_section(RNG, status=0, features=0, queues=[queue(0, 0, 0, base=0)])),
           (VIRTIO_DEVICE, 5, device_section(RNG))]
write('snapshot_fuzzer', 'valid', bytes([0]) + state_file(snapshot(2, DEVICES)))
write('snapshot_fuzzer', 'valid-resealed', bytes([3]) + state_file(snapshot(1)))
write('snapshot_fuzzer', 'truncated', bytes([0]) + state_file(snapshot(1))[:100])
write('snapshot_fuzzer', 'future-version', bytes([0]) + state_file(snapshot(1), version=2, vmm=b'vc-vmm 9.0.0'))
write('snapshot_fuzzer', 'duplicate', bytes([3]) + state_file(snapshot(1, [(PIT, 0, pit_section())])))
write('snapshot_fuzzer', 'vcpu-missing', bytes([3]) + state_file([s for s in snapshot(3) if s[:2] != (VCPU, 1)]))
write('snapshot_fuzzer', 'unpaired-virtio', bytes([3]) + state_file(snapshot(1, DEVICES[:3])))
write('snapshot_fuzzer', 'ring-outside-ram', bytes([3]) + state_file(snapshot(1, [
    (VIRTIO_MMIO, 1, mmio_section(BLK, queues=[queue(base=RAM - 0x1000)])), (VIRTIO_DEVICE, 1, device_section(BLK))])))
write('snapshot_fuzzer', 'vm-section', bytes([4]) + vm_section(4))
write('snapshot_fuzzer', 'memory-section', bytes([4]) + memory_section())
write('snapshot_fuzzer', 'memory-header', bytes([12]) + memory_header()[:64])
write('snapshot_fuzzer', 'serial-section', bytes([4]) + serial_section(pending=1, rx=b'x' * 100))
write('snapshot_fuzzer', 'i8042-section', bytes([4]) + i8042_section(pending=0xd1, output=b'\x55\xfa'))
write('snapshot_fuzzer', 'mmio-section', bytes([4]) + mmio_section(NET, features=RING_FEATURES | 3))
write('snapshot_fuzzer', 'mmio-broken-queue', bytes([4]) + mmio_section(BLK, status=0x4f, queues=[queue(2, 3, 3, 7, 6, 0, base=1 << 40)]))
for kind in (BLK, NET, VSOCK, RNG):
    write('snapshot_fuzzer', 'device-section-%d' % kind, bytes([4]) + device_section(kind))
# mode 16: an rng transport for a 64 KiB guest (deviceId and queueCount are set by the fuzzer).
write('snapshot_fuzzer', 'rng-transport', bytes([16]) + mmio_section(RNG, interrupt=1, queues=[
    queue(1, 7, 16, 3, 3, 2, base=0x4000)]))
# Rings all at 0 (the used index is the avail index) with one more used than popped: the device
# thread served it forever until the decoder required nextAvail == nextUsed (its first find).
write('snapshot_fuzzer', 'rng-transport-aliased', bytes([16]) + mmio_section(RNG, queues=[queue(1, 7, 16, 0xfff8, 0xfff9, 0, base=0)])[:-24] + bytes(24))
write('snapshot_fuzzer', 'rng-transport-off', bytes([16]) + mmio_section(RNG, status=3, features=0, queues=[queue(0, 0, 64, base=0x8)]))
write('snapshot_fuzzer', 'vcpu-section', bytes([4]) + vcpu_section(0, msrs=((0x10, 1), (0x10, 2)), mp_state=3))
write('snapshot_fuzzer', 'irqchip-section', bytes([4]) + irqchip_section())
write('snapshot_fuzzer', 'irqchip-bad-base', bytes([4]) + irqchip_section(ioapic_base=0xfee00000))
write('snapshot_fuzzer', 'pit-section', bytes([4]) + pit_section())
write('snapshot_fuzzer', 'pit-bad-mode', bytes([4]) + pit_section(mode=6))
write('snapshot_fuzzer', 'clock-section', bytes([4]) + clock_section())
write('snapshot_fuzzer', 'clock-bad-flags', bytes([4]) + clock_section(flags=1))
