// createContainer's joinNamespaces against a fake hypervisor: the joined container must exist in
// the pod and run (errors naming the field and the container); what passes reaches the agent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createContainer, startContainer } from '../../../src/api/container.js';
import { listContainers } from '../../../src/api/container-queries.js';
import { createPod, startPod } from '../../../src/api/pod.js';
import { fakePods, type FakePods } from './fake-pods.js';

let pods: FakePods;
test.before.each(async () => {
  pods = fakePods();
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options());
  await startPod('p', pods.options());
});
test.after.each(async () => {
  await pods.done();
});

const config = (id: string, join?: Record<string, string>) => ({ id, rootfs: pods.rootfs(id), command: ['/bin/sleep', '9'], ...(join ? { joinNamespaces: join } : {}) });

async function refused(id: string, join: Record<string, string>, message: RegExp): Promise<void> {
  const err = await createContainer('p', config(id, join), pods.options()).then(() => null, (e: { code?: string; message: string }) => e);
  assert.ok(err, 'refused');
  assert.is(err!.code, 'INVALID_CONFIG');
  assert.match(err!.message, message);
}

test('joining a container that is not in the pod, or not running, is INVALID_CONFIG naming the field; nothing is created', async () => {
  await refused('m', { pid: 'nope' }, /container m in pod p: joinNamespaces\.pid: no container "nope" in the pod/);
  await createContainer('p', config('sandbox'), pods.options());
  await refused('m', { ipc: 'sandbox' }, /joinNamespaces\.ipc: container "sandbox" is created, not running/);
  assert.equal((await listContainers('p', pods.options())).map((c) => c.id), ['sandbox'], 'no record of the refused creates');
  assert.not.ok(pods.fake.vmOf('p')!.guest.requests.some((r) => r === 'create_container:m'), 'the agent was never asked');
});

test('joining a running container: the agent gets joinNamespaces as given', async () => {
  await createContainer('p', config('sandbox'), pods.options());
  await startContainer('p', 'sandbox', pods.options());
  await createContainer('p', config('m', { pid: 'sandbox', ipc: 'sandbox' }), pods.options());
  assert.equal(pods.fake.vmOf('p')!.guest.createArgs.get('m')?.joinNamespaces, { pid: 'sandbox', ipc: 'sandbox' });
  assert.is(pods.fake.vmOf('p')!.guest.createArgs.get('sandbox')?.joinNamespaces, undefined);
});

test.run();
