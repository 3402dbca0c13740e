// The busybox test image for the docker rig (test/helpers/docker.ts). docker 20.10's `load` reads
// docker archives (manifest.json) only, not OCI archives ("open …/blobs/json: no such file"), so the
// OCI archive test/helpers/containerd-image.ts builds is converted with skopeo, offline.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { busyboxArchive, splitRef } from './containerd-image.js';
import type { DockerRig } from './docker.js';

export const DOCKER_BUSYBOX_REF = 'vc-busybox:test';

/** A docker archive of the busybox image, named `ref` (NAME:TAG); built on first use, beside the OCI archive. */
export function busyboxDockerArchive(ref = DOCKER_BUSYBOX_REF): string {
  const { tag } = splitRef(ref);
  const oci = busyboxArchive(tag);
  const archive = `${oci.slice(0, -'.tar'.length)}-docker-${ref.replace(/[/:]/g, '_')}.tar`;
  if (existsSync(archive)) return archive;
  // --insecure-policy: a local conversion between two files; the host's policy.json is for pulls.
  execFileSync('skopeo', ['--insecure-policy', 'copy', '--quiet', `oci-archive:${oci}:${tag}`, `docker-archive:${archive}.partial:${ref}`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync('mv', [`${archive}.partial`, archive]);
  return archive;
}

/** Loads the busybox image into the rig's dockerd as `ref`; returns `ref`. */
export async function loadBusybox(rig: DockerRig, ref = DOCKER_BUSYBOX_REF): Promise<string> {
  const r = await rig.docker(['load', '--input', busyboxDockerArchive(ref)], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`docker load of ${ref} failed (${r.code}): ${r.stderr.trim()}`);
  const inspect = await rig.docker(['image', 'inspect', '--format', '{{.Id}}', ref]);
  if (inspect.code !== 0) throw new Error(`docker load did not make ${ref}: ${inspect.stderr.trim()}; load said: ${r.stdout.trim()}`);
  return ref;
}
