// Public surface of the agent layer: the client, its process handle, dialers, errors and the codec.
export { AgentError } from './errors.js';
export {
  AgentClient,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type ConnectOptions,
  type Dial,
  type ExecOptions,
  type GuestInfo,
  type RequestOptions,
} from './client.js';
export { networkArguments, type ConfiguredInterface, type NetworkConfig, type NetworkInterfaceConfig, type NetworkRouteConfig } from './network.js';
export { AgentProcess } from './process.js';
export { AgentForward, DEFAULT_FORWARD_HOST, forwardArguments, forwardTargetName, type ForwardTarget } from './forward.js';
export { dialHybridVsock, dialUnix, DEFAULT_DIAL_TIMEOUT_MS, type DialOptions } from './dial.js';
export { dialLeasedPort, leasePort, LEASE_POLL_MAX_MS, type LeasablePort, type PortLease } from './port-lease.js';
export type { CancelOptions } from './deadline.js';
export { FrameDecoder } from './decoder.js';
export {
  encodeExit,
  encodeFrame,
  encodeRequest,
  encodeResponse,
  encodeStdinAck,
  FrameType,
  frameTypeName,
  HEADER_SIZE,
  MAX_FRAME_LENGTH,
  MAX_PAYLOAD_SIZE,
  MIN_FRAME_LENGTH,
  PROTOCOL_VERSION,
  STDIN_WINDOW,
  type AgentResponse,
  type DataFrame,
  type ExitFrame,
  type ExitStatus,
  type Frame,
  type JsonObject,
  type RequestFrame,
  type ResponseFrame,
  type StdinAckFrame,
} from './protocol.js';
