/**
 * OCI hooks, run on the host by the CLI: `prestart` and `createRuntime` at create (after the
 * holder — the container's host process, in the network namespace made for it — exists, before
 * the pod is made, so what a hook puts into that namespace reaches the VM), `poststart` after
 * start, `poststop` at delete. `createContainer` and `startContainer` would run inside the
 * container's namespaces, which are in the guest: a spec with them is refused, not ignored.
 * Each hook gets the OCI state on stdin; its args, env and timeout are honoured as runc does.
 */
import { spawn } from 'node:child_process';
import { z } from 'zod';
import { envRecord, type OciSpec } from '../oci/spec.js';

const hookSchema = z.looseObject({
  path: z.string().regex(/^\//, 'must be an absolute path'),
  args: z.array(z.string()).optional(),
  env: z.array(z.string()).optional(),
  timeout: z.number().int().positive('must be a positive number of seconds').optional(),
});
export type OciHook = z.output<typeof hookSchema>;

const hooksSchema = z.looseObject({
  prestart: z.array(hookSchema).optional(),
  createRuntime: z.array(hookSchema).optional(),
  createContainer: z.array(hookSchema).optional(),
  startContainer: z.array(hookSchema).optional(),
  poststart: z.array(hookSchema).optional(),
  poststop: z.array(hookSchema).optional(),
});

export type HookKind = 'prestart' | 'createRuntime' | 'poststart' | 'poststop';
export type SpecHooks = Record<HookKind, OciHook[]>;

/** The hook kinds this runtime runs (the features document lists them). */
export const RUN_HOOKS: readonly HookKind[] = ['prestart', 'createRuntime', 'poststart', 'poststop'];

/** The spec's hooks, checked; hooks that would run inside the container are an error naming them. */
export function specHooks(spec: OciSpec): SpecHooks {
  const given = (spec as { hooks?: unknown }).hooks;
  const parsed = hooksSchema.safeParse(given ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`config.json: hooks.${issue.path.join('.')}: ${issue.message}`);
  }
  const h = parsed.data;
  for (const inside of ['createContainer', 'startContainer'] as const) {
    if (h[inside]?.length) {
      throw new Error(`config.json: hooks.${inside} (${h[inside]![0]!.path}) is not supported: it would run in the container's namespaces, which are inside the VM`);
    }
  }
  return { prestart: h.prestart ?? [], createRuntime: h.createRuntime ?? [], poststart: h.poststart ?? [], poststop: h.poststop ?? [] };
}

/** What a hook reads on stdin. */
export interface HookState {
  ociVersion: string;
  id: string;
  status: 'creating' | 'created' | 'running' | 'stopped';
  pid?: number;
  bundle: string;
  annotations: Record<string, string>;
}

const OUTPUT_LIMIT = 4096;

/** Runs one hook; rejects with why it failed (exit status, timeout, its output). */
export function runHook(kind: HookKind, index: number, hook: OciHook, state: HookState): Promise<void> {
  const what = `hooks.${kind}[${index}] (${hook.path})`;
  return new Promise((resolve, reject) => {
    const argv = hook.args ?? [hook.path];
    // The hook's environment is exactly its `env`, as runc gives it.
    const child = spawn(hook.path, argv.slice(1), { argv0: argv[0] ?? hook.path, env: envRecord(hook.env ?? []), stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer): void => {
      if (output.length < OUTPUT_LIMIT) output += chunk.toString('utf8').slice(0, OUTPUT_LIMIT - output.length);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = hook.timeout
      ? setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, hook.timeout * 1000)
      : null;
    child.stdin.on('error', () => {}); // a hook that does not read its stdin
    child.stdin.end(JSON.stringify(state));
    child.once('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`${what}: cannot run it: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const said = output.trim() ? `: ${output.trim()}` : '';
      if (timedOut) reject(new Error(`${what}: timed out after ${hook.timeout} s${said}`));
      else if (code !== 0) reject(new Error(`${what}: failed (${signal ? `signal ${signal}` : `exit code ${code}`})${said}`));
      else resolve();
    });
  });
}

/** Runs a kind's hooks in order; stops at the first failure and rejects with it. */
export async function runHooks(hooks: SpecHooks, kind: HookKind, state: HookState): Promise<void> {
  for (const [index, hook] of hooks[kind].entries()) await runHook(kind, index, hook, { ...state });
}

/** Runs a kind's hooks, each failure only logged (poststart, poststop: the container's fate is set). */
export async function runHooksLogged(hooks: SpecHooks, kind: HookKind, state: HookState, warn: (message: string) => void): Promise<void> {
  for (const [index, hook] of hooks[kind].entries()) {
    await runHook(kind, index, hook, { ...state }).catch((err: Error) => warn(err.message));
  }
}
