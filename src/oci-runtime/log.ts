/**
 * The runtime's log: `--log FILE` in `--log-format text|json`, as engines read it. With json, an
 * error is one line `{"level":"error","msg":…,"time":…}`; podman reads the whole oci-log file as
 * one JSON object when create fails (libpod readConmonPipeData), so in json format only errors are
 * written unless --debug. containerd's runc shim reads the last error line of its log.json. Errors
 * also go to stderr, where conmon picks them up when there is no log.
 */
import { appendFileSync } from 'node:fs';

export type Level = 'debug' | 'info' | 'warning' | 'error';

export class RuntimeLog {
  readonly #warned = new Set<string>();

  constructor(
    private readonly file: string,
    private readonly format: 'text' | 'json',
    private readonly debugEnabled: boolean,
    /** Whether errors are printed on stderr too (not for the daemon, whose stderr goes nowhere). */
    private readonly toStderr = true,
  ) {}

  debug(message: string): void {
    if (this.debugEnabled) this.#write('debug', message);
  }
  info(message: string): void {
    if (this.format === 'text' || this.debugEnabled) this.#write('info', message);
  }
  warn(message: string): void {
    if (this.format === 'text' || this.debugEnabled) this.#write('warning', message);
  }
  warnOnce(message: string): void {
    if (this.#warned.has(message)) return;
    this.#warned.add(message);
    this.warn(message);
  }
  error(message: string): void {
    if (this.toStderr) process.stderr.write(`virtc-runtime: ${message}\n`);
    this.#write('error', message);
  }

  #write(level: Level, message: string): void {
    if (!this.file) return;
    try {
      appendFileSync(this.file, formatLine(this.format, level, message, new Date()));
    } catch {
      // A log that cannot be written must not turn a success into a failure.
    }
  }
}

export function formatLine(format: 'text' | 'json', level: Level, message: string, at: Date): string {
  if (format === 'json') return `${JSON.stringify({ level, msg: message, time: at.toISOString() })}\n`;
  return `time="${at.toISOString()}" level=${level} msg=${JSON.stringify(message)}\n`;
}
