#!/usr/bin/env python3
"""Writes the seed inputs of the agent's fuzzers (corpus/<fuzzer>/seed-*): well-formed and
malformed examples of what each one parses, so a short run starts from the protocol's shapes
(docs/agent-protocol.md) instead of rediscovering them. Run it after changing a format; libFuzzer
adds what it finds on top of these in build/fuzz/. Regression inputs (crash-*) are kept by hand."""
import base64
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(fuzzer, name, data):
    d = os.path.join(HERE, 'corpus', fuzzer)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, 'seed-' + name), 'wb') as f:
        f.write(data)


def js(v):
    return json.dumps(v, separators=(',', ':'))


# --- frame_fuzzer: [split seed] + stream of frames: length(4) type flags reserved(2) id(4) -------
REQUEST, RESPONSE, STDIN, STDOUT, STDERR, EXIT, STDIN_ACK = 1, 2, 3, 4, 5, 6, 7


def frame(t, fid, payload=b'', flags=0, reserved=0):
    if isinstance(payload, str):
        payload = payload.encode()
    return struct.pack('>IBBHI', 8 + len(payload), t, flags, reserved, fid) + payload


HELLO = frame(REQUEST, 1, js({'op': 'hello', 'version': 1}))
write('frame_fuzzer', 'session', bytes([7]) + HELLO + frame(REQUEST, 2, js({'op': 'exec', 'argv': ['/bin/cat']}))
      + frame(STDIN, 1, 'input\n') + frame(STDIN, 1) + frame(REQUEST, 3, js({'op': 'wait', 'process': 1})))
write('frame_fuzzer', 'whole', bytes([0]) + HELLO + frame(REQUEST, 9, js({'op': 'shutdown'})))
write('frame_fuzzer', 'bad-length', bytes([3]) + HELLO + struct.pack('>I', 7) + b'\x01\0\0\0')
write('frame_fuzzer', 'huge-length', bytes([1]) + struct.pack('>I', 0xffffffff) + b'\x01')
write('frame_fuzzer', 'max-length', bytes([2]) + struct.pack('>IBBHI', 8 + (1 << 20), STDIN, 0, 0, 1) + b'x' * 200)
write('frame_fuzzer', 'unknown-type', bytes([5]) + HELLO + frame(8, 1, 'x'))
write('frame_fuzzer', 'flags', bytes([4]) + frame(STDIN, 1, 'a', flags=1))
write('frame_fuzzer', 'reserved', bytes([9]) + frame(REQUEST, 1, '{}', reserved=0x100))
write('frame_fuzzer', 'every-type', bytes([11]) + b''.join(frame(t, t, bytes([t])) for t in range(1, 8)))
write('frame_fuzzer', 'partial', bytes([13]) + HELLO + frame(STDIN, 1, 'a' * 300)[:100])

# --- json_fuzzer: JSON text ------------------------------------------------------------------
for name, text in [
    ('request', js({'op': 'create_container', 'id': 'c1', 'argv': ['sh', '-c', 'echo hi'], 'env': ['A=1'], 'tty': False, 'rows': None})),
    ('numbers', '[0,-0,1,-1,0.5,1e308,-1e308,1e-320,9007199254740993,1E+2,123456789012345678901234567890]'),
    ('out-of-range', '1e309'),
    ('strings', '["", "\\u0000", "\\ud83d\\ude00", "\\u00e9\\n\\t\\\\\\"/", "\u00e9\u4e2d\U0001f600"]'),
    ('lone-surrogate', '"\\ud800"'),
    ('bad-utf8', b'"\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xff"'),
    ('control-char', b'"a\x01b"'),
    ('duplicate-key', '{"a":1,"a":2}'),
    ('deep-ok', '[' * 64 + ']' * 64),
    ('deep-too-far', '[' * 65 + ']' * 65),
    ('deep-objects', '{"a":' * 64 + '1' + '}' * 64),
    ('whitespace', ' \t\r\n{ "k" : [ true , false , null ] } \n'),
    ('trailing', '{} {}'),
    ('literals', '[tru, nul, fals]'),
    ('bad-numbers', '[01, 1., .5, -, 1e, +1, 0x10]'),
]:
    write('json_fuzzer', name, text)

# --- request_fuzzer: a REQUEST payload -------------------------------------------------------
SECCOMP = base64.b64encode(struct.pack('<HBBI', 6, 0, 0, 0x7fff0000)).decode()  # RET ALLOW
CREATE = {
    'op': 'create_container', 'id': 'web-1', 'image': {'serial': 'img0', 'fstype': 'erofs'},
    'argv': ['/bin/sh', '-c', 'sleep 1'], 'env': ['PATH=/bin', 'A=b'], 'cwd': '/srv', 'tty': True,
    'rows': 24, 'cols': 80, 'user': 'www:www', 'hostname': 'web',
    'limits': {'memoryBytes': 67108864, 'pids': 64, 'cpuQuotaUs': 50000, 'cpuPeriodUs': 100000},
    'security': {'caps': {'bounding': 1 << 21 | 1, 'effective': 1, 'permitted': 1, 'inheritable': 1, 'ambient': 1},
                 'noNewPrivileges': True, 'seccomp': {'filter': SECCOMP},
                 'maskedPaths': ['/proc/kcore'], 'readonlyPaths': ['/proc/sys']},
    'rlimits': [{'resource': 7, 'soft': 1024, 'hard': 4096}, {'resource': 3, 'soft': None, 'hard': None}],
    'sysctls': {'net.ipv4.ip_forward': '1', 'kernel.shmmax': '65536'},
    'oomScoreAdj': -500, 'additionalGids': [10, 20],
    'mounts': [{'destination': '/proc', 'type': 'proc', 'source': 'proc', 'options': ['nosuid', 'noexec', 'nodev']},
               {'destination': '/tmp', 'type': 'tmpfs', 'options': ['mode=1777', 'size=65536k']},
               {'destination': '/data', 'type': 'bind', 'source': '/srv/data', 'options': ['rbind', 'ro', 'rprivate']}],
    'binds': [{'destination': '/etc/app.conf', 'kind': 'file', 'readOnly': True}, {'destination': '/var/out', 'kind': 'dir'}],
    'joinNamespaces': {'pid': 'other', 'ipc': 'other'},
}
write('request_fuzzer', 'create', js(CREATE))
write('request_fuzzer', 'create-minimal', js({'op': 'create_container', 'id': 'a', 'image': {'path': '/tmp/root'}, 'argv': ['x'], 'cwd': '/'}))
write('request_fuzzer', 'create-bad-caps', js(dict(CREATE, security={'caps': {'bounding': 0, 'effective': 2, 'permitted': 1, 'inheritable': 1, 'ambient': 4}})))
write('request_fuzzer', 'create-bad-gids', js(dict(CREATE, additionalGids=[4294967295, -1, 0.5])))
write('request_fuzzer', 'create-bad-mounts', js(dict(CREATE, mounts=[{'destination': '/a/../b', 'type': 'bind', 'source': 'rel'}, {'destination': '/dev', 'type': 'proc'}])))
write('request_fuzzer', 'create-bad-rlimits', js(dict(CREATE, rlimits=[{'resource': 7, 'soft': 9, 'hard': 1}, {'resource': 16, 'soft': 1, 'hard': 1}])))
write('request_fuzzer', 'create-bad-seccomp', js(dict(CREATE, security={'seccomp': {'filter': 'AAAA'}})))
write('request_fuzzer', 'exec-confine', js({'op': 'exec_container', 'id': 'web-1', 'argv': ['id'], 'cwd': '/', 'user': '1000',
                                            'security': {'caps': CREATE['security']['caps'], 'seccomp': {'filter': SECCOMP}},
                                            'rlimits': [{'resource': 0, 'soft': 1, 'hard': 2}], 'additionalGids': [5], 'noNewPrivileges': False}))
write('request_fuzzer', 'network', js({'op': 'configure_network',
                                       'interfaces': [{'mac': '52:54:00:12:34:56', 'name': 'eth0', 'mtu': 1500, 'up': True, 'addresses': ['10.0.2.15/24', 'fd00::15/64']}],
                                       'routes': [{'dest': 'default', 'gateway': '10.0.2.2'}, {'dest': '::/0', 'gateway': 'fd00::1', 'interface': 'eth0', 'metric': 100},
                                                  {'dest': '10.1.0.0/16', 'interface': '52:54:00:12:34:56'}],
                                       'dns': {'nameservers': ['10.0.2.3', '::1'], 'search': ['example.com'], 'options': ['ndots:2']},
                                       'hosts': [{'ip': '127.0.0.1', 'names': ['localhost', 'web']}], 'hostname': 'web-1'}))
write('request_fuzzer', 'network-bad', js({'interfaces': [{'mac': '52:54:00:12:34:5g'}], 'routes': [{'dest': '10.0.0.1/8', 'gateway': '::1'}],
                                           'dns': {'nameservers': ['300.1.1.1']}, 'hostname': '-x'}))
write('request_fuzzer', 'put-file', js({'op': 'put_file', 'id': 'web-1', 'bind': 0, 'path': 'a/b/c.txt', 'kind': 'file', 'mode': 420,
                                        'uid': 0, 'gid': 0, 'data': base64.b64encode(b'hello world').decode(), 'offset': 4096, 'truncate': True}))
write('request_fuzzer', 'put-symlink', js({'path': './x//y', 'kind': 'symlink', 'uid': 1, 'gid': 1, 'target': '../../etc/passwd'}))
write('request_fuzzer', 'put-bad', js({'path': '../escape', 'kind': 'dir', 'mode': 4095, 'uid': 0, 'gid': 0, 'data': 'aGk'}))
write('request_fuzzer', 'put-root', js({'path': '', 'kind': 'file', 'mode': 384, 'uid': 0, 'gid': 0, 'data': 'aGk='}))

# The process ops, update_container, forward and the bind reads (one seed may serve several: every
# check runs on every input).
write('request_fuzzer', 'exec', js({'op': 'exec', 'argv': ['/bin/sh', '-c', 'stty size'], 'env': ['TERM=xterm', 'A='], 'cwd': 'rel',
                                    'tty': True, 'rows': 65535, 'cols': 0}))
write('request_fuzzer', 'exec-bad', js({'op': 'exec', 'argv': ['a\u0000b'], 'env': ['=x', 'NOEQUALS'], 'cwd': '', 'rows': 65536}))
write('request_fuzzer', 'signal-resize', js({'op': 'signal', 'process': 4294967295, 'signal': 64, 'rows': 24, 'cols': 80, 'all': True}))
write('request_fuzzer', 'resize', js({'op': 'resize', 'process': 1, 'rows': 0, 'cols': 65535}))
write('request_fuzzer', 'signal-container', js({'op': 'signal_container', 'id': 'web-1', 'signal': 9, 'all': True}))
write('request_fuzzer', 'signal-bad', js({'op': 'signal', 'process': 0, 'signal': 65, 'rows': -1, 'cols': 1.5}))
write('request_fuzzer', 'exec-container', js({'op': 'exec_container', 'id': 'web-1', 'argv': ['ls'], 'cwd': '/tmp', 'user': '',
                                              'tty': False, 'rows': 3, 'signal': 0}))
write('request_fuzzer', 'update', js({'op': 'update_container', 'id': 'web-1',
                                      'limits': {'memoryBytes': 'max', 'pids': 4194304, 'cpuQuotaUs': 1000, 'cpuPeriodUs': 1000000}}))
write('request_fuzzer', 'update-bad', js({'op': 'update_container', 'id': 'web-1',
                                          'limits': {'memoryBytes': 0, 'pids': 'none', 'cpuQuotaUs': 9007199254740992, 'cpuPeriodUs': 'max'}}))
write('request_fuzzer', 'forward', js({'op': 'forward', 'port': 65535, 'host': '::ffff:127.0.0.1'}))
write('request_fuzzer', 'forward-bad', js({'op': 'forward', 'port': 0, 'host': 'fe80::1%eth0'}))
write('request_fuzzer', 'forward-v4', js({'op': 'forward', 'port': 8080, 'host': '010.0.0.1'}))
SEED = base64.b64encode(bytes(range(32))).decode()
write('request_fuzzer', 'restored', js({'op': 'restored', 'epoch': 1, 'time': {'sec': 1796601600, 'nsec': 5},
                                        'hostname': 'web-1', 'machineId': '0123456789abcdef0123456789abcdef', 'seed': SEED,
                                        'macs': [{'from': '52:54:00:12:34:56', 'to': 'AA:bb:cc:dd:ee:ff'}]}))
write('request_fuzzer', 'restored-bad', js({'op': 'restored', 'epoch': 0, 'time': {'sec': 0, 'nsec': 1000000000},
                                            'hostname': '-x', 'machineId': '0' * 32, 'seed': base64.b64encode(bytes(31)).decode(),
                                            'macs': [{'from': '52:54:00:12:34:56', 'to': 'x'}, {'from': '52:54:00:12:34:56', 'to': 'x'}]}))
write('request_fuzzer', 'get-file', js({'op': 'get_file', 'id': 'web-1', 'bind': 3, 'path': 'out/./log.txt', 'offset': 9007199254740991, 'length': 524288}))
write('request_fuzzer', 'get-file-bad', js({'op': 'get_file', 'id': 'web-1', 'bind': 4, 'path': 'a/../../etc', 'offset': -1, 'length': 524289}))
write('request_fuzzer', 'list-bind', js({'op': 'list_bind', 'id': 'web-1', 'bind': 0, 'path': '', 'after': 'name\u00e9'}))
write('request_fuzzer', 'remove-file', js({'op': 'remove_file', 'id': 'web-1', 'bind': 1, 'path': 'a//b/'}))

# cgroup files for container_stats' parser: '#', a mask of absent files (bit i: the i-th of
# cpu.stat, memory.current, memory.max, memory.swap.current, memory.stat, memory.events,
# pids.current, pids.max), then the texts and io.stat's, NUL-separated.
CPU_STAT = 'usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods 10\nnr_throttled 2\nthrottled_usec 999\n'
MEM_STAT = 'anon 4096\nfile 8192\nkernel_stack 16384\npgfault 12\n'
MEM_EVENTS = 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n'
IO_STAT = '8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n254:16 rbytes=1 wbytes=2 rios=3 wios=4\n'


def cgroup(absent, texts):
    return b'#' + bytes([absent]) + b'\0'.join(t.encode() if isinstance(t, str) else t for t in texts)


write('request_fuzzer', 'cgroup-stats', cgroup(0, [CPU_STAT, '1048576\n', 'max\n', '0\n', MEM_STAT, MEM_EVENTS, '3\n', '64\n', IO_STAT]))
write('request_fuzzer', 'cgroup-none', cgroup(0xff, ['', '', '', '', '', '', '', '']))
write('request_fuzzer', 'cgroup-odd', cgroup(0x05, ['', '-1\n', '18446744073709551616\n', ' 12', b'k\xff 1\nk\xfe 2\nk 3\nk 4\n',
                                                  'nospace\n\n', '+7', '0x10', '8:0\n:\nx:y rbytes=\n8:1 rbytes=1 rbytes=2 xrbytes=3\n']))

# --- users_fuzzer: spec \n /etc/passwd \0 /etc/group -----------------------------------------
PASSWD = ('root:x:0:0:root:/root:/bin/sh\n# comment\n\nwww:x:33:33:www-data:/var/www:/usr/sbin/nologin\n'
          'short:x:5\nbad:x:1x:2:b:/:/bin/sh\nbig:x:4294967295:0::/:\n')
GROUP = 'root:x:0:\nwww:x:33:www,other\nstaff:x:50:www\nstaff2:x:50:www\nweird:x:9::\nlong:x:12345678901:www\n'
for name, spec in [('name', 'www'), ('name-group', 'www:staff'), ('uid', '33'), ('uid-gid', '1000:1000'),
                   ('unknown', 'nobody'), ('bad-entry', 'bad'), ('minus-one', '4294967295'), ('empty-group', 'www:'),
                   ('big-entry', 'big')]:
    write('users_fuzzer', name, spec + '\n' + PASSWD + '\0' + GROUP)
write('users_fuzzer', 'no-files', '0:0\n')

# --- channel_fuzzer: [settings: bit 7 socket, else virtio-serial; low bits seed reads] + stream --
SERIAL, SOCKET = 0x00, 0x80
EXEC = frame(REQUEST, 2, js({'op': 'exec', 'argv': ['/bin/true']}))
write('channel_fuzzer', 'serial-session', bytes([SERIAL | 5]) + HELLO + EXEC + frame(STDIN, 1, 'x') + frame(REQUEST, 3, js({'op': 'shutdown'})))
write('channel_fuzzer', 'serial-new-session', bytes([SERIAL | 9]) + HELLO + EXEC + HELLO + EXEC)
write('channel_fuzzer', 'serial-cut-frame', bytes([SERIAL | 17]) + HELLO + frame(STDIN, 1, 'y' * 400)[:60] + HELLO + EXEC)
write('channel_fuzzer', 'serial-resync', bytes([SERIAL | 33]) + HELLO + struct.pack('>I', 3) + b'garbage' * 20 + HELLO + EXEC)
write('channel_fuzzer', 'serial-bad-json', bytes([SERIAL | 2]) + HELLO + frame(REQUEST, 4, '{"op":') + b'\0' * 13 + HELLO)
write('channel_fuzzer', 'serial-wrong-type', bytes([SERIAL | 7]) + HELLO + frame(STDOUT, 1, 'z') + frame(REQUEST, 0, '{}') + HELLO)
write('channel_fuzzer', 'serial-no-hello', bytes([SERIAL | 3]) + EXEC + frame(REQUEST, 5, '[]') + EXEC)
write('channel_fuzzer', 'socket-session', bytes([SOCKET | 5]) + HELLO + EXEC + frame(STDIN, 1) + frame(REQUEST, 3, js({'op': 'wait', 'process': 1})))
write('channel_fuzzer', 'socket-malformed', bytes([SOCKET | 1]) + HELLO + frame(RESPONSE, 1, '{}') + HELLO)
