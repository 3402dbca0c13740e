// Runs one command in the nested-KVM harness's L1 VM, by hand:
//   node dist/test/harness/cli.js [--cpus N] [--cpu MODEL] [--memory MIB] [--timeout SECONDS] [--scratch DIR]
//                                 [--env K=V]... [--console] -- CMD [ARG...]
// Streams the command's output, prints the timings to stderr, and exits with the command's code
// (125 when the harness itself fails; --console prints L1's kernel console afterwards).
import { L1Error, runInL1, type RunInL1Options } from './l1.js';

const usage = 'usage: node dist/test/harness/cli.js [--cpus N] [--cpu MODEL] [--memory MIB] [--timeout SECONDS] [--scratch DIR] [--env K=V]... [--console] -- CMD [ARG...]';
const argv = process.argv.slice(2);
const opts: RunInL1Options = { command: [], env: {} };
let showConsole = false;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  const value = () => {
    const v = argv[++i];
    if (v === undefined) fail(`${a} needs a value`);
    return v;
  };
  if (a === '--') { opts.command = argv.slice(i + 1); break; }
  else if (a === '--cpus') opts.cpus = Number(value());
  else if (a === '--cpu') opts.cpuModel = value();
  else if (a === '--memory') opts.memoryMiB = Number(value());
  else if (a === '--timeout') opts.timeoutMs = Number(value()) * 1000;
  else if (a === '--scratch') opts.scratchDir = value();
  else if (a === '--console') showConsole = true;
  else if (a === '--env') {
    const kv = value();
    const eq = kv.indexOf('=');
    if (eq <= 0) fail(`--env ${kv}: expected K=V`);
    opts.env![kv.slice(0, eq)] = kv.slice(eq + 1);
  } else fail(`unknown option ${a}`);
}
if (opts.command.length === 0) fail('no command given');

// Ctrl-C or a kill ends L1 and removes its files instead of leaving QEMU behind.
const abort = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => abort.abort());
try {
  const r = await runInL1({
    ...opts,
    signal: abort.signal,
    onOutput: (chunk) => process.stdout.write(chunk),
    onProgress: (m) => process.stderr.write(`# ${m}\n`),
  });
  if (showConsole) process.stderr.write(`--- L1 console ---\n${r.console}\n`);
  process.stderr.write(`# l1: boot ${r.bootMs} ms, total ${r.totalMs} ms, exit ${r.exitCode}\n`);
  process.exitCode = r.exitCode;
} catch (err) {
  if (showConsole && err instanceof L1Error) process.stderr.write(`--- L1 console ---\n${err.console}\n`);
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 125;
}

function fail(msg: string): never {
  process.stderr.write(`${msg}\n${usage}\n`);
  process.exit(2);
}
