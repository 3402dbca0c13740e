/**
 * containerd.task.v2: the messages of the Task service a shim serves (proto/containerd.task.v2.proto),
 * typed, with a codec each, and the service's method table (which request and answer each method
 * takes) that the ttrpc layer binds handlers with.
 */
import { messageCodec, type Any, type Empty, type MessageCodec, type Timestamp } from './messages.js';

export const TASK_SERVICE = 'containerd.task.v2.Task';

/** containerd.types.Mount */
export interface Mount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

/** containerd.v1.types.Status: a process's state in State answers. */
export const TaskStatus = { Unknown: 0, Created: 1, Running: 2, Stopped: 3, Paused: 4, Pausing: 5 } as const;
export type TaskStatus = (typeof TaskStatus)[keyof typeof TaskStatus];

/** containerd.v1.types.ProcessInfo */
export interface ProcessInfo {
  pid: number;
  info: Any | null;
}

/** A request that names a task (and for some methods one of its execs). */
export interface TaskRef {
  id: string;
}
export interface ProcessRef extends TaskRef {
  execId: string;
}

export type StateRequest = ProcessRef;
export interface StateResponse {
  id: string;
  bundle: string;
  pid: number;
  status: TaskStatus;
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
  exitStatus: number;
  exitedAt: Timestamp | null;
  execId: string;
}

export interface CreateTaskRequest {
  id: string;
  bundle: string;
  rootfs: Mount[];
  terminal: boolean;
  stdin: string;
  stdout: string;
  stderr: string;
  checkpoint: string;
  parentCheckpoint: string;
  options: Any | null;
}
export interface CreateTaskResponse {
  pid: number;
}

export type StartRequest = ProcessRef;
export interface StartResponse {
  pid: number;
}

export type DeleteRequest = ProcessRef;
export interface DeleteResponse {
  pid: number;
  exitStatus: number;
  exitedAt: Timestamp | null;
}

export type PidsRequest = TaskRef;
export interface PidsResponse {
  processes: ProcessInfo[];
}

export type PauseRequest = TaskRef;
export type ResumeRequest = TaskRef;

export interface CheckpointTaskRequest {
  id: string;
  path: string;
  options: Any | null;
}

export interface KillRequest extends ProcessRef {
  signal: number;
  all: boolean;
}

export interface ExecProcessRequest extends ProcessRef {
  terminal: boolean;
  stdin: string;
  stdout: string;
  stderr: string;
  /** An OCI runtime-spec Process as JSON (type_url "types.containerd.io/opencontainers/runtime-spec/1/Process"). */
  spec: Any | null;
}

export interface ResizePtyRequest extends ProcessRef {
  width: number;
  height: number;
}

export interface CloseIORequest extends ProcessRef {
  stdin: boolean;
}

export interface UpdateTaskRequest {
  id: string;
  /** An OCI runtime-spec LinuxResources as JSON. */
  resources: Any | null;
  annotations: Record<string, string>;
}

export type WaitRequest = ProcessRef;
export interface WaitResponse {
  exitStatus: number;
  exitedAt: Timestamp | null;
}

export type StatsRequest = TaskRef;
export interface StatsResponse {
  stats: Any | null;
}

export type ConnectRequest = TaskRef;
export interface ConnectResponse {
  shimPid: number;
  taskPid: number;
  version: string;
}

export interface ShutdownRequest {
  id: string;
  now: boolean;
}

const t = <T>(name: string): MessageCodec<T> => messageCodec<T>(`containerd.task.v2.${name}`);

export const taskMessages = {
  StateRequest: t<StateRequest>('StateRequest'),
  StateResponse: t<StateResponse>('StateResponse'),
  CreateTaskRequest: t<CreateTaskRequest>('CreateTaskRequest'),
  CreateTaskResponse: t<CreateTaskResponse>('CreateTaskResponse'),
  StartRequest: t<StartRequest>('StartRequest'),
  StartResponse: t<StartResponse>('StartResponse'),
  DeleteRequest: t<DeleteRequest>('DeleteRequest'),
  /** Also what `<shim> delete` prints on stdout. */
  DeleteResponse: t<DeleteResponse>('DeleteResponse'),
  PidsRequest: t<PidsRequest>('PidsRequest'),
  PidsResponse: t<PidsResponse>('PidsResponse'),
  PauseRequest: t<PauseRequest>('PauseRequest'),
  ResumeRequest: t<ResumeRequest>('ResumeRequest'),
  CheckpointTaskRequest: t<CheckpointTaskRequest>('CheckpointTaskRequest'),
  KillRequest: t<KillRequest>('KillRequest'),
  ExecProcessRequest: t<ExecProcessRequest>('ExecProcessRequest'),
  ResizePtyRequest: t<ResizePtyRequest>('ResizePtyRequest'),
  CloseIORequest: t<CloseIORequest>('CloseIORequest'),
  UpdateTaskRequest: t<UpdateTaskRequest>('UpdateTaskRequest'),
  WaitRequest: t<WaitRequest>('WaitRequest'),
  WaitResponse: t<WaitResponse>('WaitResponse'),
  StatsRequest: t<StatsRequest>('StatsRequest'),
  StatsResponse: t<StatsResponse>('StatsResponse'),
  ConnectRequest: t<ConnectRequest>('ConnectRequest'),
  ConnectResponse: t<ConnectResponse>('ConnectResponse'),
  ShutdownRequest: t<ShutdownRequest>('ShutdownRequest'),
  Mount: messageCodec<Mount>('containerd.types.Mount'),
  ProcessInfo: messageCodec<ProcessInfo>('containerd.v1.types.ProcessInfo'),
};

/** Each Task method's request and answer types, for typed handlers (ttrpc/typed.ts). */
export interface TaskMethods {
  State: [StateRequest, StateResponse];
  Create: [CreateTaskRequest, CreateTaskResponse];
  Start: [StartRequest, StartResponse];
  Delete: [DeleteRequest, DeleteResponse];
  Pids: [PidsRequest, PidsResponse];
  Pause: [PauseRequest, Empty];
  Resume: [ResumeRequest, Empty];
  Checkpoint: [CheckpointTaskRequest, Empty];
  Kill: [KillRequest, Empty];
  Exec: [ExecProcessRequest, Empty];
  ResizePty: [ResizePtyRequest, Empty];
  CloseIO: [CloseIORequest, Empty];
  Update: [UpdateTaskRequest, Empty];
  Wait: [WaitRequest, WaitResponse];
  Stats: [StatsRequest, StatsResponse];
  Connect: [ConnectRequest, ConnectResponse];
  Shutdown: [ShutdownRequest, Empty];
}
