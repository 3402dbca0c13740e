// Wire compatibility of our .proto files (proto/) with containerd's own, as Debian ships them in
// golang-github-containerd-containerd-dev (with its dependencies golang-github-containerd-ttrpc-dev,
// golang-github-gogo-protobuf-dev and golang-github-gogo-googleapis-dev). Those files are read
// here, at test time only; nothing of them is shipped or copied. For every message of ours:
// containerd has it under the same full name with the same fields (number, name, type, label),
// and a value with every field set encodes to the same bytes with either schema and decodes to
// the same value across them, both ways. ttrpc's Request/Response have no .proto in the package:
// their schema is built from the protobuf tags of ttrpc's Go types.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { loadProtoFiles } from '../../../../src/shim/proto/load.js';
import { messageCodec, protoRoot } from '../../../../src/shim/proto/messages.js';
import { taskEvents } from '../../../../src/shim/proto/events.js';

const DEBIAN_PACKAGE = 'golang-github-containerd-containerd-dev';
const GOCODE = '/usr/share/gocode/src';
const CONTAINERD = join(GOCODE, 'github.com/containerd/containerd');
const TTRPC_TYPES = join(GOCODE, 'github.com/containerd/ttrpc/types.go');
const EVENT_TOPICS = join(CONTAINERD, 'runtime/events.go');
const includeDirs = [GOCODE, join(GOCODE, 'github.com/gogo/protobuf/protobuf'), join(GOCODE, 'github.com/gogo/googleapis'), join(GOCODE, 'github.com/gogo/protobuf')];
const entryFiles = [
  join(CONTAINERD, 'runtime/v2/task/shim.proto'),
  join(CONTAINERD, 'api/events/task.proto'),
  join(CONTAINERD, 'api/services/ttrpc/events/v1/events.proto'),
  'google/rpc/status.proto',
  // Task Stats' answer on a cgroup v2 guest (golang-github-containerd-cgroups-dev, a dependency).
  join(GOCODE, 'github.com/containerd/cgroups/v2/stats/metrics.proto'),
];
/** Packages of which we must have every message containerd defines (in the files above). */
const completePackages = ['containerd.task.v2', 'containerd.events', 'containerd.services.events.ttrpc.v1', 'ttrpc', 'io.containerd.cgroups.v2'];

const missing = [...entryFiles.filter((f) => f.startsWith('/')), TTRPC_TYPES, EVENT_TOPICS, join(includeDirs[1]!, 'google/protobuf/any.proto'), join(includeDirs[2]!, 'google/rpc/status.proto')]
  .filter((f) => !existsSync(f));

if (missing.length > 0) {
  test('wire compatibility with containerd', () => {
    const more = missing.length > 1 ? ` and ${missing.length - 1} more` : '';
    console.log(`SKIP wire compatibility with containerd: Debian package ${DEBIAN_PACKAGE} is not installed (no ${missing[0]}${more}); scripts/setup.sh installs it`);
  });
} else {
  const theirs = loadProtoFiles(entryFiles, includeDirs);
  theirs.add(ttrpcNamespaceFromGo(readFileSync(TTRPC_TYPES, 'utf8')));
  theirs.resolveAll();
  const ours = protoRoot();
  const ourTypes = allOf(ours, protobuf.Type);

  test('every message, enum and service of ours is containerd\'s, field for field', () => {
    assert.ok(ourTypes.length >= 45, `only ${ourTypes.length} messages in proto/`);
    for (const type of ourTypes) {
      const other = theirs.lookup(type.fullName);
      assert.ok(other instanceof protobuf.Type, `${type.fullName}: containerd has no such message`);
      assert.equal(fieldsOf(type), fieldsOf(other as protobuf.Type), type.fullName);
    }
    for (const en of allOf(ours, protobuf.Enum)) {
      const other = theirs.lookup(en.fullName);
      assert.ok(other instanceof protobuf.Enum, `${en.fullName}: containerd has no such enum`);
      assert.equal(en.values, (other as protobuf.Enum).values, en.fullName);
    }
    for (const service of allOf(ours, protobuf.Service)) {
      const other = theirs.lookup(service.fullName);
      assert.ok(other instanceof protobuf.Service, `${service.fullName}: containerd has no such service`);
      assert.equal(methodsOf(service), methodsOf(other as protobuf.Service), service.fullName);
    }
  });

  test('we have every message containerd defines in the Task, task event, Events and ttrpc packages', () => {
    const ourNames = new Set(ourTypes.map((t) => t.fullName));
    const lacking = allOf(theirs, protobuf.Type)
      .filter((t) => completePackages.some((p) => t.fullName.startsWith(`.${p}.`)) && !ourNames.has(t.fullName))
      .map((t) => t.fullName);
    assert.equal(lacking, []);
  });

  test('every message with every field set: the same bytes either way, and each side decodes the other\'s', () => {
    const options: protobuf.IConversionOptions = { defaults: true, longs: Number, enums: Number, arrays: true, objects: true };
    for (const type of ourTypes) {
      const name = type.fullName.slice(1);
      const their = theirs.lookupType(name);
      const sample = sampleOf(type);
      const codec = messageCodec<Record<string, unknown>>(name); // the shim's own path
      const ourBytes = codec.encode(sample);
      const theirBytes = Buffer.from(their.encode(their.fromObject(sample)).finish());
      assert.is(ourBytes.toString('hex'), theirBytes.toString('hex'), `${name}: encodings differ`);
      const expected = codec.decode(ourBytes);
      assert.equal(their.toObject(their.decode(ourBytes), options), expected, `${name}: containerd's schema reads ours differently`);
      assert.equal(codec.decode(theirBytes), expected, `${name}: we read containerd's encoding differently`);
      for (const field of type.fieldsArray) {
        assert.ok(isSet(expected[field.name]), `${name}.${field.name} did not survive the round trip`);
      }
    }
  });

  test('event topics are containerd\'s (runtime/events.go)', () => {
    const go = readFileSync(EVENT_TOPICS, 'utf8');
    const topics = Object.fromEntries([...go.matchAll(/^\s*Task(\w+)EventTopic\s*=\s*"([^"]+)"/gm)].map((m) => [`Task${m[1]}`, m[2]]));
    assert.equal(Object.fromEntries(Object.entries(taskEvents).map(([event, { topic }]) => [event, topic])), topics);
  });
}

/** Everything of one kind under a namespace, depth first, by full name. */
function allOf<T extends protobuf.ReflectionObject>(ns: protobuf.NamespaceBase, kind: abstract new (...args: never[]) => T): T[] {
  const found: T[] = [];
  for (const child of ns.nestedArray) {
    if (child instanceof kind) found.push(child);
    if (child instanceof protobuf.Namespace || child instanceof protobuf.Type) found.push(...allOf(child as protobuf.NamespaceBase, kind));
  }
  return found.sort((a, b) => a.fullName.localeCompare(b.fullName));
}

function fieldsOf(type: protobuf.Type): Record<number, string> {
  const out: Record<number, string> = {};
  for (const f of type.fieldsArray) {
    const kind = f.resolvedType ? f.resolvedType.fullName : f.type;
    const label = f instanceof protobuf.MapField ? `map<${f.keyType}>` : f.repeated ? 'repeated' : 'single';
    out[f.id] = `${f.name} ${label} ${kind}`;
  }
  return out;
}

function methodsOf(service: protobuf.Service): Record<string, string> {
  return Object.fromEntries(service.methodsArray.map((m) => [m.name, `${m.resolvedRequestType!.fullName} -> ${m.resolvedResponseType!.fullName}`]));
}

/** A value with every field set to something that is not its default, so every field is on the wire. */
function sampleOf(type: protobuf.Type, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  type.fieldsArray.forEach((field, n) => {
    const one = (k: number): unknown => scalarOrMessage(field, n + k, depth);
    if (field instanceof protobuf.MapField) out[field.name] = { [`k${n}`]: one(0), 'k-é': one(1) };
    else if (field.repeated) out[field.name] = [one(0), one(1)];
    else out[field.name] = one(0);
  });
  return out;
}

function scalarOrMessage(field: protobuf.Field, n: number, depth: number): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return depth < 3 ? sampleOf(resolved, depth + 1) : {};
  if (resolved instanceof protobuf.Enum) return Math.max(...Object.values(resolved.values));
  switch (field.type) {
    case 'string': return `${field.name}-${n}-é☃`;
    case 'bytes': return Buffer.from([n + 1, 0, 255]);
    case 'bool': return true;
    case 'int32': return -123_456 - n;
    case 'uint32': return 4_000_000_000 + n; // above 2^31: sign handling shows
    case 'int64': return -1_234_567_890_123 - n; // beyond 32 bits and negative
    case 'uint64': return 2 ** 40 + n;
    default: throw new Error(`${field.fullName}: no sample for type ${field.type}`);
  }
}

function isSet(value: unknown): boolean {
  if (value === null || value === undefined || value === '' || value === 0 || value === false) return false;
  if (Array.isArray(value) || Buffer.isBuffer(value)) return value.length > 0;
  // A sub-message is set when present, even if empty (google.protobuf.Empty).
  return true;
}

/**
 * ttrpc's Request, Response and KeyValue from the `protobuf:"…"` tags of their Go structs: the wire
 * kind, field number, label and name. The Go field type gives the proto type.
 */
function ttrpcNamespaceFromGo(source: string): protobuf.Namespace {
  const ns = new protobuf.Namespace('ttrpc');
  const goTypes: Record<string, string> = { string: 'string', '[]byte': 'bytes', int64: 'int64', uint32: 'uint32', '*spb.Status': '.google.rpc.Status', '[]*KeyValue': 'KeyValue' };
  for (const [, name, body] of source.matchAll(/^type (Request|Response|KeyValue) struct \{\n([^}]*)\}/gm)) {
    const type = new protobuf.Type(name!);
    for (const [, goType, id, label, fieldName] of body!.matchAll(/^\s*\w+\s+(\S+)\s+`protobuf:"\w+,(\d+),(opt|rep),name=(\w+)/gm)) {
      const protoType = goTypes[goType!];
      if (!protoType) throw new Error(`ttrpc types.go: Go type ${goType} of ${name}.${fieldName} is not mapped`);
      const camel = fieldName!.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
      type.add(new protobuf.Field(camel, Number(id), protoType, label === 'rep' ? 'repeated' : undefined));
    }
    assert.ok(type.fieldsArray.length > 0, `ttrpc types.go: no protobuf tags found on ${name}`);
    ns.add(type);
  }
  assert.equal(ns.nestedArray.map((t) => t.name).sort(), ['KeyValue', 'Request', 'Response']);
  return ns;
}

test.run();
