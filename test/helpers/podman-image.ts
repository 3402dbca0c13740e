// A busybox image for a private podman (test/helpers/podman.ts): the same OCI archive the
// containerd tests import (test/helpers/containerd-image.ts builds it with umoci), given to
// `podman load`. podman names an OCI archive's image after its index's ref.name annotation, which
// holds only the tag, so the loaded image is tagged with the full reference afterwards and the
// name podman made up is removed.
import { busyboxArchive, splitRef } from './containerd-image.js';
import type { PodmanRig } from './podman.js';

export const PODMAN_BUSYBOX_REF = 'localhost/vc-busybox:test';

/** Loads the busybox image into `rig` as `ref`; returns `ref`. */
export async function loadBusybox(rig: PodmanRig, ref = PODMAN_BUSYBOX_REF): Promise<string> {
  return loadArchive(rig, ref, busyboxArchive(splitRef(ref).tag));
}

/** Loads an OCI archive (one image) into `rig` as `ref`. */
export async function loadArchive(rig: PodmanRig, ref: string, archive: string): Promise<string> {
  splitRef(ref);
  const load = await rig.podman(['load', '--input', archive], { timeoutMs: 120_000 });
  if (load.code !== 0) throw new Error(`podman load --input ${archive} failed (${load.code}): ${load.stderr.trim()}`);
  // "Loaded image: NAME" or "Loaded image(s): NAME[,NAME…]"; NAME may be an image ID.
  const loaded = /^Loaded image(?:\(s\))?: *(\S+)/m.exec(load.stdout)?.[1]?.split(',')[0];
  if (!loaded) throw new Error(`podman load --input ${archive} named no image; it said: ${JSON.stringify(load.stdout)}`);
  if (loaded !== ref) {
    const tag = await rig.podman(['tag', loaded, ref]);
    if (tag.code !== 0) throw new Error(`podman tag ${loaded} ${ref} failed (${tag.code}): ${tag.stderr.trim()}`);
    // An ID has no name to remove; a made-up name would only clutter `podman images`. (`untag`
    // with no name would remove every name, ours too.)
    if (!/^(sha256:)?[0-9a-f]{12,64}$/.test(loaded)) await rig.podman(['untag', ref, loaded]);
  }
  const exists = await rig.podman(['image', 'exists', ref]);
  if (exists.code !== 0) {
    const images = await rig.podman(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    throw new Error(`podman load did not make ${ref}; images: ${images.stdout.trim() || '(none)'}; load said: ${load.stdout.trim()}`);
  }
  return ref;
}
