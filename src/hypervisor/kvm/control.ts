// A client for vc-vmm's control socket: newline-delimited JSON, one request and one response per
// line, in order (docs/vmm.md "Control socket"). One connection per call keeps callers simple:
// the socket serves up to 16 clients, and pods are driven from short-lived CLI processes.
import { createConnection } from 'node:net';
import { VcError } from '../../errors.js';

export interface ControlError { code: string; message: string }

export class VmmControlError extends VcError {
  constructor(readonly op: string, readonly error: ControlError) {
    super('HYPERVISOR_FAILED', `vc-vmm ${op}: ${error.code}: ${error.message}`);
  }
}

/** Sends one request and resolves with the response's fields (without `ok`). */
export function controlRequest(socketPath: string, op: string, args: Record<string, unknown> = {}, timeoutMs = 5000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffer = '';
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer = setTimeout(() => finish(() => reject(new VcError('HYPERVISOR_FAILED', `vc-vmm ${op}: no answer on ${socketPath} within ${timeoutMs} ms`))), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ op, ...args })}\n`));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\n');
      if (end < 0) return;
      const line = buffer.slice(0, end);
      finish(() => {
        let response: { ok?: unknown; error?: ControlError } & Record<string, unknown>;
        try {
          response = JSON.parse(line);
        } catch {
          reject(new VcError('HYPERVISOR_FAILED', `vc-vmm ${op}: the answer is not JSON: ${JSON.stringify(line.slice(0, 200))}`));
          return;
        }
        if (response.ok === true) {
          const { ok: _ok, ...rest } = response;
          resolve(rest);
        } else {
          reject(new VmmControlError(op, response.error ?? { code: 'UNKNOWN', message: line.slice(0, 200) }));
        }
      });
    });
    socket.on('error', (err) => finish(() => reject(new VcError('HYPERVISOR_FAILED', `vc-vmm ${op}: cannot use ${socketPath}: ${err.message}`, { cause: err }))));
    socket.on('close', () => finish(() => reject(new VcError('HYPERVISOR_FAILED', `vc-vmm ${op}: ${socketPath} closed without an answer`))));
  });
}
