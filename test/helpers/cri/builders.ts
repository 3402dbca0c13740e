// Builders for the CRI configs the tests send, filled in as the kubelet would: metadata with a
// fresh uid, a log directory per pod, a cgroup parent under the rig's /vc-test (which the rig
// removes), and containers logging to NAME.log in it.
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CTR_NAMESPACE } from '../containerd.js';
import type { ContainerConfig, LinuxContainerSecurityContext, Mount, PodSandboxConfig, PortMapping } from './types.js';

export interface PodOptions {
  /** The pod's name (metadata.name), also its hostname unless `hostname` says otherwise. */
  name: string;
  /** Where the pod's containers log: a directory `logRoot/NAME-UID` is made for it. */
  logRoot: string;
  namespace?: string;
  hostname?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  portMappings?: PortMapping[];
  /** One PID namespace for all the pod's containers (Kubernetes' shareProcessNamespace). */
  shareProcessNamespace?: boolean;
}

export function podSandboxConfig(o: PodOptions): PodSandboxConfig {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(o.name)) throw new Error(`podSandboxConfig: name must be a DNS label (a-z, 0-9, '-'), not ${JSON.stringify(o.name)}`);
  const uid = randomUUID();
  const logDirectory = join(o.logRoot, `${o.name}-${uid}`);
  mkdirSync(logDirectory, { recursive: true });
  return {
    metadata: { name: o.name, uid, namespace: o.namespace ?? 'default', attempt: 0 },
    hostname: o.hostname ?? o.name,
    logDirectory,
    portMappings: o.portMappings ?? [],
    labels: o.labels ?? {},
    annotations: o.annotations ?? {},
    linux: {
      // cgroupfs: CRI puts the sandbox at PARENT/ID and runc its containers beside it. Under the
      // rig's /vc-test, where stop() removes what runc leaves.
      cgroupParent: `/${CTR_NAMESPACE}/pod${uid}`,
      securityContext: { namespaceOptions: { network: 'POD', pid: o.shareProcessNamespace ? 'POD' : 'CONTAINER', ipc: 'POD' } },
    },
  };
}

export interface ContainerOptions {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  workingDir?: string;
  mounts?: Mount[];
  /** Relative to the pod's log directory (default NAME.log). */
  logPath?: string;
  tty?: boolean;
  stdin?: boolean;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  securityContext?: LinuxContainerSecurityContext;
  /** Shares the pod's PID namespace (with the pod's shareProcessNamespace). */
  sharePid?: boolean;
}

export function containerConfig(o: ContainerOptions): ContainerConfig {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(o.name)) throw new Error(`containerConfig: name must be a DNS label (a-z, 0-9, '-'), not ${JSON.stringify(o.name)}`);
  return {
    metadata: { name: o.name, attempt: 0 },
    image: { image: o.image },
    command: o.command ?? [],
    args: o.args ?? [],
    workingDir: o.workingDir ?? '',
    envs: Object.entries(o.env ?? {}).map(([key, value]) => ({ key, value })),
    mounts: o.mounts ?? [],
    labels: o.labels ?? {},
    annotations: o.annotations ?? {},
    logPath: o.logPath ?? `${o.name}.log`,
    stdin: o.stdin ?? false,
    tty: o.tty ?? false,
    linux: {
      securityContext: {
        namespaceOptions: { network: 'POD', pid: o.sharePid ? 'POD' : 'CONTAINER', ipc: 'POD' },
        ...o.securityContext,
      },
    },
  };
}

/** One line of a CRI log file: `TIMESTAMP STREAM TAG CONTENT` (TAG F: full line, P: partial). */
export interface CriLogLine {
  time: string;
  stream: 'stdout' | 'stderr';
  tag: 'F' | 'P';
  content: string;
}

/** Parses a CRI-format log; throws naming the first line that is not in that format. */
export function parseCriLog(text: string): CriLogLine[] {
  return text.split('\n').filter(Boolean).map((line, i) => {
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) (F|P) (.*)$/.exec(line);
    if (!m) throw new Error(`line ${i + 1} of the log is not in the CRI format (TIME STREAM F|P TEXT): ${JSON.stringify(line)}`);
    return { time: m[1]!, stream: m[2] as CriLogLine['stream'], tag: m[3] as CriLogLine['tag'], content: m[4]! };
  });
}
