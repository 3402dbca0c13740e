// Where state lives: /run/virtcontainers for root, $XDG_RUNTIME_DIR/virtcontainers otherwise.
import { join } from 'node:path';
import { tmpdir } from 'node:os';

export function defaultRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VC_ROOT) return env.VC_ROOT;
  if (process.getuid?.() === 0) return '/run/virtcontainers';
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'virtcontainers');
  return join(tmpdir(), `virtcontainers-${process.getuid?.() ?? 'user'}`);
}

export interface PodPaths {
  dir: string;
  state: string;
  lock: string;
  console: string;
  qmpSocket: string;
  /**
   * vc-vmm's hybrid vsock socket, the agent channel's host end. QEMU pods have one socket per
   * agent port instead (agent.N.sock, src/hypervisor/qemu/agent-ports.ts).
   */
  agentSocket: string;
  pidFile: string;
  /** vc-vmm's control socket, its configuration and its log (stderr). */
  controlSocket: string;
  vmmConfig: string;
  vmmLog: string;
}

export function podPaths(root: string, id: string): PodPaths {
  const dir = join(root, 'pods', id);
  return {
    dir,
    state: join(dir, 'state.json'),
    lock: join(dir, 'lock'),
    console: join(dir, 'console.log'),
    qmpSocket: join(dir, 'qmp.sock'),
    agentSocket: join(dir, 'agent.sock'),
    pidFile: join(dir, 'vmm.pid'),
    controlSocket: join(dir, 'vmm.sock'),
    vmmConfig: join(dir, 'vmm.json'),
    vmmLog: join(dir, 'vmm.log'),
  };
}
