/**
 * The shim's log: lines to the bundle's `log` FIFO, which containerd reads into its own log (and to
 * stderr when there is no such FIFO, e.g. for `delete`). Writes never block: with no reader or a
 * full pipe a line is dropped rather than stalling the shim.
 */
import { constants, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export class ShimLog {
  #fd = -1;
  readonly #warned = new Set<string>();

  constructor(private readonly context: string, private readonly debugEnabled: boolean) {}

  /** Opens `<bundle>/log` for writing; without a reader (ENXIO) or FIFO, logs go to stderr. */
  openBundleLog(bundle: string): void {
    try {
      this.#fd = openSync(join(bundle, 'log'), constants.O_WRONLY | constants.O_NONBLOCK);
    } catch {
      this.#fd = -1;
    }
  }

  debug(message: string): void {
    if (this.debugEnabled) this.#write('debug', message);
  }
  info(message: string): void {
    this.#write('info', message);
  }
  warn(message: string): void {
    this.#write('warning', message);
  }
  error(message: string): void {
    this.#write('error', message);
  }
  /** A warning about something not honoured: once per distinct text for the shim's life. */
  warnOnce(message: string): void {
    if (this.#warned.has(message)) return;
    this.#warned.add(message);
    this.warn(message);
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }

  #write(level: string, message: string): void {
    // logrus's text format, which containerd's shim log reader passes on as is.
    const line = `time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(message)} runtime=io.containerd.virtc.v2 ${this.context}\n`;
    const fd = this.#fd >= 0 ? this.#fd : 2;
    try {
      writeSync(fd, line);
    } catch {
      // EAGAIN (pipe full) or EPIPE (containerd went away): drop the line.
    }
  }
}
