// The agent channel of a QEMU pod: N virtio-serial ports, because one socket chardev serves one
// host client at a time (a second one waits in the listen backlog until the first closes). Host
// clients share the ports out by flocking lease files (src/agent/port-lease.ts).
import { join } from 'node:path';
import type { PodPaths } from '../../store/paths.js';
import type { LeasedPortEndpoint } from '../types.js';

/**
 * The most host clients that can talk to a QEMU pod's agent at once; the next one waits for a
 * port. 16 serves a runtime's attach streams plus its probes and execs (each enterPod, each
 * virtc call holds a connection while it runs). Ports are not free: the guest driver fills each
 * port's receive queue with 1024 page-sized buffers when the port appears, ≈ 4 MiB of guest
 * kernel memory per port whether it is used or not (measured: docs/agent-protocol.md).
 */
export const QEMU_AGENT_PORTS = 16;
/** Guest RAM per agent port: the ports' buffers take at most 1/8 of the guest's memory. */
export const MIB_PER_AGENT_PORT = 32;
export const MIN_AGENT_PORTS = 4;

/** One port per 32 MiB of guest RAM, 4 to 16: 16 from 512 MiB (the default pod) up. */
export function agentPortCount(memoryMiB: number): number {
  return Math.max(MIN_AGENT_PORTS, Math.min(QEMU_AGENT_PORTS, Math.floor(memoryMiB / MIB_PER_AGENT_PORT)));
}

export interface QemuAgentPort extends LeasedPortEndpoint {
  /** The virtio-serial port name the guest agent looks for: `agent.<index>`. */
  name: string;
  /** The chardev id on QEMU's command line. */
  chardev: string;
}

/** Ports 0 … count-1 of the pod in `paths.dir`: `agent.N.sock` (QEMU's end) and `agent.N.lease`. */
export function qemuAgentPorts(paths: PodPaths, count: number): QemuAgentPort[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_AGENT_PORTS) {
    throw new RangeError(`agent port count ${JSON.stringify(count)} must be a whole number from 1 to ${MAX_AGENT_PORTS}`);
  }
  return Array.from({ length: count }, (_, i) => ({
    name: `agent.${i}`,
    chardev: `agent${i}`,
    socket: join(paths.dir, `agent.${i}.sock`),
    lease: join(paths.dir, `agent.${i}.lease`),
  }));
}

/**
 * QEMU's virtio-serial device takes `max_ports` ≤ 511 (two virtqueues per port, one pair for
 * control), and keeps port 0 for a virtconsole even where there is none: 510 named ports at most.
 */
export const MAX_AGENT_PORTS = 510;
