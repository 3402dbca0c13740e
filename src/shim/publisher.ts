/**
 * Events to containerd: each one Forwarded to TTRPC_ADDRESS in the order the shim publishes them
 * (one at a time, so TaskExit never overtakes TaskStart). A failed send is retried a few times on a
 * new connection and then logged and dropped: containerd also learns a task's end from Wait.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { eventMessages, forwardRequest, EVENTS_SERVICE, taskEvents, type ForwardRequest, type TaskEventName } from './proto/events.js';
import type { MessageInit } from './proto/messages.js';
import { TtrpcClient } from './ttrpc/client.js';
import type { ShimLog } from './log.js';

type EventInit<N extends TaskEventName> = Parameters<typeof forwardRequest<N>>[2];

export class EventPublisher {
  #client: TtrpcClient | null = null;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(private readonly address: string, private readonly namespace: string, private readonly log: ShimLog) {}

  publish<N extends TaskEventName>(name: N, event: EventInit<N>): Promise<void> {
    const at = new Date();
    const request = forwardRequest(this.namespace, name, event, at);
    this.log.debug(`event ${taskEvents[name].topic} ${JSON.stringify(event)}`);
    this.#queue = this.#queue.then(() => this.#send(name, request));
    return this.#queue;
  }

  /** Waits for what is queued, then closes the connection. */
  async close(): Promise<void> {
    await this.#queue;
    this.#closed = true;
    this.#client?.close();
    this.#client = null;
  }

  async #send(name: TaskEventName, request: MessageInit<ForwardRequest>): Promise<void> {
    if (!this.address) return;
    for (let attempt = 1; ; attempt++) {
      try {
        if (!this.#client || this.#client.closed) this.#client = await TtrpcClient.connect(this.address);
        const payload = eventMessages.ForwardRequest.encode(request);
        await this.#client.call(EVENTS_SERVICE, 'Forward', payload, { timeoutMs: 5000 });
        return;
      } catch (err) {
        this.#client?.close();
        this.#client = null;
        if (this.#closed || attempt >= 3) {
          this.log.warn(`event ${taskEvents[name].topic} not delivered to ${this.address}: ${(err as Error).message}`);
          return;
        }
        await sleep(100 * attempt);
      }
    }
  }
}
