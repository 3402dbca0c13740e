/**
 * The runtime's log: `--log FILE` in `--log-format text|json`, as engines read it. With json, an
 * error is one line `{"level":"error","msg":…,"time":…}`; podman reads the whole oci-log file as
 * one JSON object when create fails (libpod readConmonPipeData), so in json format only errors are
 * written unless --debug. containerd's runc shim reads the last error line of its log.json. Errors
 * also go to stderr, where conmon picks them up when there is no log.
 */
import { appendFileSync, renameSync, statSync } from 'node:fs';

export type Level = 'debug' | 'info' | 'warning' | 'error';

export class RuntimeLog {
  readonly #warned = new Set<string>();
  /** Bytes in the file as far as this writer knows (read once, then counted). */
  #size: number | null = null;

  constructor(
    private readonly file: string,
    private readonly format: 'text' | 'json',
    private readonly debugEnabled: boolean,
    /** Whether errors are printed on stderr too (not for the daemon, whose stderr goes nowhere). */
    private readonly toStderr = true,
    /**
     * The daemon's own log, which lives as long as the root is used: past this many bytes the file
     * becomes `FILE.1` (replacing the previous one) and a new one begins. Engines' `--log` files are
     * theirs to manage.
     */
    private readonly rotateAtBytes = 0,
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
      const line = formatLine(this.format, level, message, new Date());
      if (this.rotateAtBytes > 0) this.#rotateFor(Buffer.byteLength(line));
      appendFileSync(this.file, line);
    } catch {
      // A log that cannot be written must not turn a success into a failure.
    }
  }

  #rotateFor(lineBytes: number): void {
    if (this.#size === null) {
      try {
        this.#size = statSync(this.file).size;
      } catch {
        this.#size = 0;
      }
    }
    if (this.#size > 0 && this.#size + lineBytes > this.rotateAtBytes) {
      renameSync(this.file, `${this.file}.1`);
      this.#size = 0;
    }
    this.#size += lineBytes;
  }
}

export function formatLine(format: 'text' | 'json', level: Level, message: string, at: Date): string {
  if (format === 'json') return `${JSON.stringify({ level, msg: message, time: at.toISOString() })}\n`;
  return `time="${at.toISOString()}" level=${level} msg=${JSON.stringify(message)}\n`;
}
