// Does giving the agent 16 virtio-serial ports instead of one slow a QEMU pod's boot? Boots the pod
// guest (Debian cloud kernel + our initrd) alternately with 1 and 16 agent ports, side by side in
// one run, and reports start → agent hello and the guest's MemAvailable (the driver fills every
// port's receive queue with pages). Not part of `npm run bench`; run by hand:
//   node dist/bench/agent-ports-boot.js [--runs N] [--accel tcg|kvm]
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentClient, dialUnix } from '../src/agent/index.js';
import { createPod, deletePod } from '../src/index.js';
import { qemuArgs, tscKhzFromCpuinfo, type QemuAccel } from '../src/hypervisor/qemu/command.js';
import { qemuAgentPorts } from '../src/hypervisor/qemu/agent-ports.js';
import { launchDetached, waitUntilServing } from '../src/hypervisor/qemu/launch.js';
import { podPaths } from '../src/store/paths.js';
import { signalProcess, waitForExit } from '../src/host/process.js';
import { tempDir } from '../test/helpers/tmp.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
};
const runs = Number(option('--runs', '5'));
const accel = option('--accel', 'tcg') as QemuAccel;
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a whole number ≥ 1, got ${JSON.stringify(option('--runs', ''))}`);
if (accel !== 'tcg' && accel !== 'kvm') throw new Error(`--accel: expected tcg or kvm, got ${JSON.stringify(accel)}`);

interface Sample { ports: number; bootMs: number; memAvailableKiB: number }

async function boot(root: string, boot: { kernelPath: string; initrdPath: string }, ports: number, run: number): Promise<Sample> {
  const id = `b${ports}-${run}`;
  const paths = podPaths(root, id);
  mkdirSync(paths.dir, { recursive: true });
  const spec = { id, paths, vcpus: 1, memoryMiB: 256, ...boot, kernelCmdline: 'console=ttyS0 panic=-1 random.trust_cpu=on' };
  const tsc = tscKhzFromCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));
  const started = performance.now();
  const log = join(paths.dir, 'qemu.log');
  const { pid, exited } = await launchDetached('qemu-system-x86_64', qemuArgs(spec, accel, { hostTscKhz: tsc, agentPorts: ports }), log);
  try {
    await waitUntilServing(paths.qmpSocket, { pid, exited }, log, { timeoutMs: 60_000 });
    const socket = qemuAgentPorts(paths, ports)[0]!.socket;
    const agent = await AgentClient.connect(() => dialUnix(socket), { timeoutMs: 120_000 });
    const bootMs = performance.now() - started;
    const info = await agent.guestInfo();
    await agent.close();
    return { ports, bootMs, memAvailableKiB: info.memAvailableKiB };
  } finally {
    signalProcess(pid, 'SIGKILL');
    await waitForExit(pid, 5000);
  }
}

const tmp = tempDir('vcb');
try {
  const pod = await createPod({ id: 'guest', hypervisor: 'qemu', memoryMiB: 256 }, { root: tmp.path });
  const record = JSON.parse(readFileSync(join(tmp.path, 'pods', 'guest', 'state.json'), 'utf8')) as { boot: { kernelPath: string; initrdPath: string } };
  console.log(`guest kernel ${pod.kernelRelease}, ${accel}, ${runs} boots per variant, alternating`);
  const samples: Sample[] = [];
  for (let run = 0; run < runs; run++) {
    for (const ports of run % 2 === 0 ? [1, 16] : [16, 1]) {
      const s = await boot(tmp.path, record.boot, ports, run);
      console.log(`  ${String(ports).padStart(2)} port(s): agent answered after ${Math.round(s.bootMs)} ms, MemAvailable ${s.memAvailableKiB} KiB`);
      samples.push(s);
    }
  }
  for (const ports of [1, 16]) {
    const mine = samples.filter((s) => s.ports === ports);
    const times = mine.map((s) => s.bootMs).sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)]!;
    const mem = Math.round(mine.reduce((sum, s) => sum + s.memAvailableKiB, 0) / mine.length);
    console.log(`${String(ports).padStart(2)} port(s): median ${Math.round(median)} ms (min ${Math.round(times[0]!)}, max ${Math.round(times.at(-1)!)}), MemAvailable ${mem} KiB`);
  }
  await deletePod('guest', { root: tmp.path });
} finally {
  tmp.remove();
}
