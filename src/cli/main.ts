// virtc: a demo CLI over the public API. Exit codes: 0 ok, 1 error, 2 usage; `run` and the `enter`
// commands exit with the command's own code (128+N for signal N) and use 125 for their own errors,
// like docker run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../native.js';
import { UsageError } from './args.js';
import { podCommand, podUsage } from './pod-commands.js';
import { containerCommand, containerUsage } from './container-commands.js';
import { runCommand, runUsage } from './run-command.js';
import { gcCommand, gcUsage } from './gc-command.js';
import { templateCommand, templateUsage } from './template-commands.js';

const usage = `usage:
  virtc [--root DIR] pod ...      (state directory; default $VC_ROOT or /run/virtcontainers)
  ${podUsage}
  ${containerUsage}
  ${runUsage}
  ${templateUsage}
  ${gcUsage}
  virtc --version

REF is oci:DIR[:TAG], docker-archive:FILE or oci-archive:FILE; without --rootfs or --image a
container runs the default busybox image.`;

export async function main(argv: string[]): Promise<number> {
  const [area, ...rest] = argv;
  if (area === '--version') {
    const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
    console.log(`virtc ${pkg.version}`);
    return 0;
  }
  if (area === undefined || area === '--help' || area === '-h' || area === 'help') {
    console.log(usage);
    return area === undefined ? 2 : 0;
  }
  // A global --root before the area moves behind `<area> <verb>`, where every command's parser
  // reads it (and before any `--`, after which it would be taken as part of the guest command).
  // (`run` and `gc` have no verb.)
  if (area === '--root' && (rest[1] === 'run' || rest[1] === 'gc')) return main([rest[1], '--root', rest[0]!, ...rest.slice(2)]);
  if (area.startsWith('--root=') && (rest[0] === 'run' || rest[0] === 'gc')) return main([rest[0], area, ...rest.slice(1)]);
  if (area === '--root' && rest.length >= 3) return main([rest[1]!, rest[2]!, '--root', rest[0]!, ...rest.slice(3)]);
  if (area.startsWith('--root=') && rest.length >= 2) return main([rest[0]!, rest[1]!, area, ...rest.slice(2)]);
  try {
    if (area === 'pod') return await podCommand(rest);
    if (area === 'container') return await containerCommand(rest);
    if (area === 'run') return await runCommand(rest);
    if (area === 'gc') return await gcCommand(rest);
    if (area === 'template') return await templateCommand(rest);
    throw new UsageError(`unknown command ${JSON.stringify(area)}\n${usage}`);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`virtc: ${err.message}\n`);
      return 2;
    }
    const code = (err as { code?: string }).code;
    process.stderr.write(`virtc: ${(err as Error).message}${code ? ` [${code}]` : ''}\n`);
    const streams = area === 'run' || (rest[0] === 'enter' && (area === 'pod' || area === 'container'));
    return streams ? 125 : 1;
  }
}
