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
  agentSocket: string;
  pidFile: string;
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
  };
}
