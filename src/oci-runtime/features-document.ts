/**
 * `features`: the OCI runtime features document, in runc's shape. What a VM runtime can honour
 * differs from runc: the lists say what this one takes.
 */
import { RUN_HOOKS } from './hooks.js';
import { CAPABILITIES } from '../oci/capabilities.js';
import { ACTIONS, ARCHITECTURES, OPERATORS } from '../oci/seccomp/profile.js';
import { OCI_VERSION } from './features.js';

export function features(): Record<string, unknown> {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: OCI_VERSION,
    hooks: [...RUN_HOOKS],
    mountOptions: ['ro', 'rw', 'bind', 'rbind', 'nosuid', 'nodev', 'noexec'],
    linux: {
      // network and uts come from the pod; pid and ipc can be joined within a pod; user is refused.
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'uts'],
      capabilities: Object.keys(CAPABILITIES),
      cgroup: { v1: false, v2: true, systemd: false, systemdUser: false },
      seccomp: { enabled: true, actions: Object.keys(ACTIONS), operators: [...OPERATORS], archs: [...ARCHITECTURES] },
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: {
      'io.virtcontainers.runtime': 'virtc-runtime',
      'io.virtcontainers.isolation': 'vm',
    },
  };
}
