// A CRI client for the tests, speaking gRPC (@grpc/grpc-js) to containerd's CRI plugin the way the
// kubelet does, with our own .proto subset (test/fixtures/cri/runtime.v1.proto) encoded by
// protobufjs. Field names are lowerCamelCase (`pod_sandbox_id` → `podSandboxId`); int64s come back
// as numbers, enums as their names, bytes as Buffers. Every call is unary; a failed call rejects
// with an Error naming the method and carrying gRPC's status code and message.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { loadProtoFiles } from '../../../src/shim/proto/load.js';
import type * as T from './types.js';

export const CRI_PROTO = fileURLToPath(new URL('../../../../test/fixtures/cri/runtime.v1.proto', import.meta.url));
const RUNTIME = 'runtime.v1.RuntimeService';
const IMAGES = 'runtime.v1.ImageService';

let root: protobuf.Root | null = null;
function protoRoot(): protobuf.Root {
  root ??= loadProtoFiles([CRI_PROTO], []);
  return root;
}

/**
 * Throws naming the field when `value` has a field `type` does not declare (protobufjs would drop
 * it silently: a typo would look like an unset field), or an enum name the enum lacks.
 */
function checkFields(type: protobuf.Type, value: unknown, path: string): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`CriClient: ${path} must be an object, not ${JSON.stringify(value)}`);
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key];
    const where = `${path}.${key}`;
    if (!field) throw new Error(`CriClient: ${where}: ${type.name} has no field ${key} (fields: ${Object.keys(type.fields).join(', ')})`);
    if (v === undefined || v === null) continue;
    const items: unknown[] = field.map ? Object.values(v as object) : field.repeated ? (v as unknown[]) : [v];
    if (field.repeated && !Array.isArray(v)) throw new Error(`CriClient: ${where} must be a list`);
    field.resolve();
    for (const item of items) {
      if (field.resolvedType instanceof protobuf.Type) checkFields(field.resolvedType, item, where);
      else if (field.resolvedType instanceof protobuf.Enum && typeof item === 'string' && !(item in field.resolvedType.values)) {
        throw new Error(`CriClient: ${where} must be one of ${Object.keys(field.resolvedType.values).join(', ')}, not ${JSON.stringify(item)}`);
      }
    }
  }
}

/** A failed CRI call: `code` is gRPC's status (2 UNKNOWN, 4 DEADLINE_EXCEEDED, 5 NOT_FOUND, …). */
export class CriError extends Error {
  constructor(readonly method: string, readonly code: number, readonly details: string) {
    super(`CRI ${method} failed: ${grpc.status[code] ?? code}: ${details}`);
    this.name = 'CriError';
  }
}

export interface CallOptions {
  /** Deadline for the call (default 60 s; a QEMU pod boots in seconds, an exec may wait longer). */
  timeoutMs?: number;
}

export class CriClient {
  private readonly client: grpc.Client;

  /** `socket`: containerd's gRPC socket path (the CRI plugin serves on containerd's own socket). */
  constructor(readonly socket: string) {
    this.client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  }

  close(): void {
    this.client.close();
  }

  /** One unary call of `service`/`method`; the request and answer types are looked up by name. */
  call<Req extends object, Res>(service: string, method: string, request: Req, opts: CallOptions = {}): Promise<Res> {
    const svc = protoRoot().lookupService(service);
    const m = svc.methods[method];
    if (!m) throw new Error(`CriClient: ${service} has no method ${method} in ${CRI_PROTO}`);
    const reqType = m.resolvedRequestType!, resType = m.resolvedResponseType!;
    checkFields(reqType, request, method);
    const encode = (v: Req) => Buffer.from(reqType.encode(reqType.fromObject(v as Record<string, unknown>)).finish());
    const decode = (b: Buffer) => resType.toObject(resType.decode(b), { longs: Number, enums: String, defaults: true, arrays: true, objects: true }) as Res;
    const deadline = new Date(Date.now() + (opts.timeoutMs ?? 60_000));
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(`/${service}/${method}`, encode, decode, request, new grpc.Metadata(), { deadline }, (err, res) => {
        if (err) reject(new CriError(method, err.code, err.details));
        else resolve(res!);
      });
    });
  }

  private rt<Res>(method: string, request: object, opts?: CallOptions): Promise<Res> {
    return this.call(RUNTIME, method, request, opts);
  }

  version(): Promise<T.VersionResponse> {
    return this.rt('Version', { version: 'v1' });
  }

  /** Runs a pod sandbox with `handler` (a runtime name from containerd's CRI config; '' the default). */
  async runPodSandbox(config: T.PodSandboxConfig, handler = '', opts?: CallOptions): Promise<string> {
    const r = await this.rt<{ podSandboxId: string }>('RunPodSandbox', { config, runtimeHandler: handler }, { timeoutMs: 120_000, ...opts });
    return r.podSandboxId;
  }
  async stopPodSandbox(podSandboxId: string, opts?: CallOptions): Promise<void> {
    await this.rt('StopPodSandbox', { podSandboxId }, opts);
  }
  async removePodSandbox(podSandboxId: string, opts?: CallOptions): Promise<void> {
    await this.rt('RemovePodSandbox', { podSandboxId }, opts);
  }
  podSandboxStatus(podSandboxId: string, verbose = false): Promise<T.PodSandboxStatusResponse> {
    return this.rt('PodSandboxStatus', { podSandboxId, verbose });
  }
  async listPodSandbox(filter: T.PodSandboxFilter = {}): Promise<T.PodSandbox[]> {
    return (await this.rt<{ items: T.PodSandbox[] }>('ListPodSandbox', { filter })).items;
  }

  /** Creates a container in a sandbox; `sandboxConfig` is the config the sandbox was run with. */
  async createContainer(podSandboxId: string, config: T.ContainerConfig, sandboxConfig: T.PodSandboxConfig, opts?: CallOptions): Promise<string> {
    const r = await this.rt<{ containerId: string }>('CreateContainer', { podSandboxId, config, sandboxConfig }, opts);
    return r.containerId;
  }
  async startContainer(containerId: string, opts?: CallOptions): Promise<void> {
    await this.rt('StartContainer', { containerId }, opts);
  }
  /** `timeout`: seconds between the stop signal and SIGKILL. */
  async stopContainer(containerId: string, timeout = 0, opts?: CallOptions): Promise<void> {
    await this.rt('StopContainer', { containerId, timeout }, { timeoutMs: (timeout + 60) * 1000, ...opts });
  }
  async removeContainer(containerId: string, opts?: CallOptions): Promise<void> {
    await this.rt('RemoveContainer', { containerId }, opts);
  }
  async listContainers(filter: T.ContainerFilter = {}): Promise<T.Container[]> {
    return (await this.rt<{ containers: T.Container[] }>('ListContainers', { filter })).containers;
  }
  containerStatus(containerId: string, verbose = false): Promise<T.ContainerStatusResponse> {
    return this.rt('ContainerStatus', { containerId, verbose });
  }
  async updateContainerResources(containerId: string, linux: T.LinuxContainerResources): Promise<void> {
    await this.rt('UpdateContainerResources', { containerId, linux });
  }
  async reopenContainerLog(containerId: string): Promise<void> {
    await this.rt('ReopenContainerLog', { containerId });
  }

  /** Runs `cmd` in the container and waits (`timeout` seconds, 0: for ever); output as text. */
  async execSync(containerId: string, cmd: string[], timeout = 0, opts?: CallOptions): Promise<T.ExecSyncResult> {
    const r = await this.rt<{ stdout: Buffer; stderr: Buffer; exitCode: number }>('ExecSync', { containerId, cmd, timeout },
      { timeoutMs: (timeout || 60) * 1000 + 30_000, ...opts });
    return { stdout: Buffer.from(r.stdout).toString(), stderr: Buffer.from(r.stderr).toString(), exitCode: r.exitCode };
  }
  /** The streaming server's URL for an exec (continued over SPDY/WebSocket). */
  async exec(request: T.ExecRequest): Promise<string> {
    return (await this.rt<{ url: string }>('Exec', request)).url;
  }
  async attach(request: T.AttachRequest): Promise<string> {
    return (await this.rt<{ url: string }>('Attach', request)).url;
  }
  async portForward(podSandboxId: string, port: number[]): Promise<string> {
    return (await this.rt<{ url: string }>('PortForward', { podSandboxId, port })).url;
  }
  async containerStats(containerId: string): Promise<T.ContainerStats> {
    return (await this.rt<{ stats: T.ContainerStats }>('ContainerStats', { containerId })).stats;
  }

  async listImages(): Promise<T.Image[]> {
    return (await this.call<object, { images: T.Image[] }>(IMAGES, 'ListImages', { filter: {} })).images;
  }
  /** The image, or null when containerd does not have it. */
  async imageStatus(image: string): Promise<T.Image | null> {
    const r = await this.call<object, { image: T.Image | null }>(IMAGES, 'ImageStatus', { image: { image } });
    return r.image && r.image.id ? r.image : null;
  }
  /** PullImage: containerd 1.6 asks the registry even for an image it has (there is none here). */
  async pullImage(image: string): Promise<string> {
    return (await this.call<object, { imageRef: string }>(IMAGES, 'PullImage', { image: { image } })).imageRef;
  }
  /** The kubelet's IfNotPresent: the image's id when containerd has it, else a PullImage. */
  async ensureImage(image: string): Promise<string> {
    return (await this.imageStatus(image))?.id ?? this.pullImage(image);
  }
}
