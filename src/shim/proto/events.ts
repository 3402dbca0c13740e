/**
 * The task events a shim sends to containerd (proto/containerd.events.proto), and the Envelope
 * they travel in to Events/Forward on TTRPC_ADDRESS (proto/containerd.services.events.ttrpc.v1.proto).
 * containerd files each event under a topic and reads the Any's type_url to decode it.
 */
import {
  messageCodec,
  packAny,
  timestampFromDate,
  type Any,
  type Empty,
  type MessageCodec,
  type MessageInit,
  type Timestamp,
} from './messages.js';
import type { Mount } from './task.js';

export const EVENTS_SERVICE = 'containerd.services.events.ttrpc.v1.Events';

export interface TaskIO {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

export interface TaskCreate {
  containerId: string;
  bundle: string;
  rootfs: Mount[];
  io: TaskIO | null;
  checkpoint: string;
  pid: number;
}

export interface TaskStart {
  containerId: string;
  pid: number;
}

export interface TaskExit {
  containerId: string;
  /** The exec id, or the container id for the task's init process. */
  id: string;
  pid: number;
  exitStatus: number;
  exitedAt: Timestamp | null;
}

export interface TaskDelete {
  containerId: string;
  pid: number;
  exitStatus: number;
  exitedAt: Timestamp | null;
  /** The exec id; empty for the task's init process. */
  id: string;
}

export interface TaskExecAdded {
  containerId: string;
  execId: string;
}

export interface TaskExecStarted {
  containerId: string;
  execId: string;
  pid: number;
}

export interface TaskOOM {
  containerId: string;
}

export interface TaskPaused {
  containerId: string;
}

export interface TaskResumed {
  containerId: string;
}

export interface TaskCheckpointed {
  containerId: string;
  checkpoint: string;
}

export interface Envelope {
  timestamp: Timestamp | null;
  namespace: string;
  topic: string;
  event: Any | null;
}

export interface ForwardRequest {
  envelope: Envelope | null;
}

/** The Events service's one method (for ttrpc/typed.ts). */
export interface EventsMethods {
  Forward: [ForwardRequest, Empty];
}

const e = <T>(name: string): MessageCodec<T> => messageCodec<T>(`containerd.events.${name}`);

/** Each event's codec and the topic containerd files it under (containerd's runtime/events.go). */
export const taskEvents = {
  TaskCreate: { codec: e<TaskCreate>('TaskCreate'), topic: '/tasks/create' },
  TaskStart: { codec: e<TaskStart>('TaskStart'), topic: '/tasks/start' },
  TaskExit: { codec: e<TaskExit>('TaskExit'), topic: '/tasks/exit' },
  TaskDelete: { codec: e<TaskDelete>('TaskDelete'), topic: '/tasks/delete' },
  TaskExecAdded: { codec: e<TaskExecAdded>('TaskExecAdded'), topic: '/tasks/exec-added' },
  TaskExecStarted: { codec: e<TaskExecStarted>('TaskExecStarted'), topic: '/tasks/exec-started' },
  TaskOOM: { codec: e<TaskOOM>('TaskOOM'), topic: '/tasks/oom' },
  TaskPaused: { codec: e<TaskPaused>('TaskPaused'), topic: '/tasks/paused' },
  TaskResumed: { codec: e<TaskResumed>('TaskResumed'), topic: '/tasks/resumed' },
  TaskCheckpointed: { codec: e<TaskCheckpointed>('TaskCheckpointed'), topic: '/tasks/checkpointed' },
};
export type TaskEventName = keyof typeof taskEvents;
type EventOf<N extends TaskEventName> = (typeof taskEvents)[N]['codec'] extends MessageCodec<infer T> ? T : never;

export const eventMessages = {
  TaskIO: e<TaskIO>('TaskIO'),
  Envelope: messageCodec<Envelope>('containerd.services.events.ttrpc.v1.Envelope'),
  ForwardRequest: messageCodec<ForwardRequest>('containerd.services.events.ttrpc.v1.ForwardRequest'),
};

/** The Forward request for one event: stamped `at` (default now) in containerd namespace `namespace`. */
export function forwardRequest<N extends TaskEventName>(
  namespace: string,
  name: N,
  event: MessageInit<EventOf<N>>,
  at: Date = new Date(),
): MessageInit<ForwardRequest> {
  const { codec, topic } = taskEvents[name] as { codec: MessageCodec<EventOf<N>>; topic: string };
  return { envelope: { timestamp: timestampFromDate(at), namespace, topic, event: packAny(codec, event) } };
}
