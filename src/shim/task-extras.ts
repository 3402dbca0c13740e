/**
 * The Task methods that need per-container guest operations (Pids, Pause/Resume, Stats, Update).
 * Until those operations exist in the API they answer Unimplemented, naming the method.
 */
import type { Any } from './proto/messages.js';
import type { ProcessInfo } from './proto/task.js';
import { RpcError, StatusCode } from './ttrpc/errors.js';
import type { ShimContext } from './task-service.js';

interface TaskRefLike {
  id: string;
}

export class TaskExtras {
  constructor(private readonly ctx: ShimContext) {}

  pids(task: TaskRefLike): Promise<ProcessInfo[]> {
    return Promise.reject(unimplemented('Pids', task.id));
  }
  pause(task: TaskRefLike, pause: boolean): Promise<void> {
    return Promise.reject(unimplemented(pause ? 'Pause' : 'Resume', task.id));
  }
  stats(task: TaskRefLike): Promise<Any> {
    return Promise.reject(unimplemented('Stats', task.id));
  }
  update(task: TaskRefLike, _resources: Any | null): Promise<void> {
    return Promise.reject(unimplemented('Update', task.id));
  }
}

function unimplemented(method: string, id: string): RpcError {
  return new RpcError(StatusCode.Unimplemented, `${method} (task ${id}) is not implemented yet`);
}
