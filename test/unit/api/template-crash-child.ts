// Child of template-crash.test.ts: createTemplate with the fake hypervisor on the root given, so
// the parent can kill it at each of createTemplate's steps (VC_TEST_CRASH_AT=createTemplate:N).
import { createTemplate } from '../../../src/api/template.js';
import { FakeHypervisor } from '../../helpers/fake-hypervisor.js';

const root = process.argv[2]!;
const fake = new FakeHypervisor();
try {
  await createTemplate({ name: 'py', hypervisor: 'kvm', vcpus: 1, memoryMiB: 256, network: 'none' }, { root, hypervisor: fake.factory });
} finally {
  await fake.stopAll();
}
