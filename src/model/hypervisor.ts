// Which hypervisor a pod runs on: what a config may ask for, and what a pod record holds.

/** The hypervisors a pod can run on: the built-in VMM (`kvm`) or QEMU. */
export const hypervisorKindNames = ['kvm', 'qemu'] as const;
export type HypervisorKind = (typeof hypervisorKindNames)[number];

/** What a pod config may ask for; `auto` is resolved to a `HypervisorKind` at create. */
export const hypervisorKinds = ['auto', ...hypervisorKindNames] as const;
export type HypervisorChoice = (typeof hypervisorKinds)[number];
