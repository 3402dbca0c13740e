import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canHappen, containerStepState, nextContainerState, nextState, stepOutcome, stepState, type PodEvent } from '../../../src/api/transitions.js';
import { containerStates, containerSteps, isContainerStep, isPodStep, podStates, podSteps } from '../../../src/model/states.js';
import { VcError } from '../../../src/errors.js';

test('the normal lifecycle: ready -> running -> stopped -> running -> stopped -> gone', () => {
  let state = nextState('p', 'ready', 'start');
  assert.is(state, 'running');
  state = nextState('p', state!, 'stop');
  assert.is(state, 'stopped');
  assert.is(nextState('p', state!, 'start'), 'running');
  assert.is(nextState('p', 'stopped', 'delete'), null);
  assert.is(nextState('p', 'ready', 'delete'), null);
});

test('a VMM that dies moves a running pod to stopped', () => {
  assert.is(nextState('p', 'running', 'vmmExited'), 'stopped');
});

test('pause and resume: running <-> paused; a paused pod stops, or is stopped by its VMM dying', () => {
  assert.is(nextState('p', 'running', 'pause'), 'paused');
  assert.is(nextState('p', 'paused', 'resume'), 'running');
  assert.is(nextState('p', 'paused', 'stop'), 'stopped');
  assert.is(nextState('p', 'paused', 'vmmExited'), 'stopped');
});

test('deleting a running or paused pod fails with POD_RUNNING', () => {
  for (const state of ['running', 'paused'] as const) {
    try {
      nextState('p', state, 'delete');
      assert.unreachable(`delete of a ${state} pod was allowed`);
    } catch (err) {
      assert.instance(err, VcError);
      assert.is((err as VcError).code, 'POD_RUNNING');
      assert.match((err as Error).message, `pod p is ${state}: stop it before deleting it`);
    }
  }
});

test('every other illegal event fails with ILLEGAL_TRANSITION naming state and event', () => {
  const events: PodEvent[] = ['start', 'pause', 'resume', 'stop', 'vmmExited', 'delete'];
  let illegal = 0;
  for (const state of podStates) {
    for (const event of events) {
      if (canHappen(state, event) || ((state === 'running' || state === 'paused') && event === 'delete')) continue;
      illegal += 1;
      try {
        nextState('pod-x', state, event);
        assert.unreachable(`${event} from ${state} was allowed`);
      } catch (err) {
        assert.is((err as VcError).code, 'ILLEGAL_TRANSITION');
        assert.match((err as Error).message, new RegExp(`pod-x: cannot ${event} a pod that is ${state}`));
      }
    }
  }
  // ready: pause, resume, stop, vmmExited; running: start, resume; paused: start, pause;
  // stopped: pause, resume, stop, vmmExited; starting, stopping, deleting: all 6 events each
  assert.is(illegal, 12 + 3 * 6);
});

test('the steps: start goes via starting, stop via stopping, delete via deleting; pause, resume and vmmExited have none', () => {
  assert.is(stepState('p', 'ready', 'start'), 'starting');
  assert.is(stepState('p', 'stopped', 'start'), 'starting');
  assert.is(stepState('p', 'running', 'stop'), 'stopping');
  assert.is(stepState('p', 'paused', 'stop'), 'stopping');
  assert.is(stepState('p', 'ready', 'delete'), 'deleting');
  assert.is(stepState('p', 'stopped', 'delete'), 'deleting');
  assert.is(stepState('p', 'running', 'pause'), undefined);
  assert.is(stepState('p', 'paused', 'resume'), undefined);
  assert.is(stepState('p', 'running', 'vmmExited'), undefined);
  // Every step state named by the table is a step, and every step is some event's step.
  const vias = new Set<string>();
  for (const state of podStates) {
    for (const event of ['start', 'pause', 'resume', 'stop', 'vmmExited', 'delete'] as const) {
      if (canHappen(state, event)) {
        const via = stepState('p', state, event);
        if (via) vias.add(via);
      }
    }
  }
  assert.equal([...vias].sort(), [...podSteps].sort());
  for (const state of podStates) assert.is(isPodStep(state), (podSteps as readonly string[]).includes(state), state);
});

test('a pod in a step takes no event: stepState refuses too, with ILLEGAL_TRANSITION', () => {
  for (const state of podSteps) {
    for (const event of ['start', 'stop', 'delete'] as const) {
      try {
        stepState('p', state, event);
        assert.unreachable(`${event} on ${state}`);
      } catch (err) {
        assert.is((err as VcError).code, 'ILLEGAL_TRANSITION', `${event} on ${state}`);
      }
    }
  }
});

test('where an interrupted step goes: a start is undone, a stop and a delete finish', () => {
  assert.is(stepOutcome.starting.undone, 'from');
  assert.is(stepOutcome.stopping.done, 'stopped');
  assert.is(stepOutcome.deleting.done, null);
});

test('containers: created -start(via starting)-> running -exited-> stopped -delete-> gone; steps take no event', () => {
  assert.is(nextContainerState('p', 'c', 'created', 'start'), 'running');
  assert.is(containerStepState('p', 'c', 'created', 'start'), 'starting');
  assert.is(nextContainerState('p', 'c', 'created', 'exited'), 'stopped');
  assert.is(nextContainerState('p', 'c', 'running', 'exited'), 'stopped');
  assert.is(nextContainerState('p', 'c', 'stopped', 'delete'), null);
  assert.is(nextContainerState('p', 'c', 'created', 'delete'), null);
  try {
    nextContainerState('p', 'c', 'running', 'delete');
    assert.unreachable('delete of a running container');
  } catch (err) {
    assert.is((err as VcError).code, 'CONTAINER_RUNNING');
  }
  for (const state of containerSteps) {
    for (const event of ['start', 'pause', 'resume', 'exited', 'delete'] as const) {
      try {
        nextContainerState('p', 'c', state, event);
        assert.unreachable(`${event} on a ${state} container`);
      } catch (err) {
        assert.is((err as VcError).code, 'ILLEGAL_TRANSITION');
        assert.match((err as Error).message, `cannot ${event} a container that is ${state}`);
      }
    }
  }
  for (const state of containerStates) assert.is(isContainerStep(state), (containerSteps as readonly string[]).includes(state), state);
});

test('containers: running -pause-> paused -resume-> running; a paused one exits or refuses delete like a running one', () => {
  assert.is(nextContainerState('p', 'c', 'running', 'pause'), 'paused');
  assert.is(containerStepState('p', 'c', 'running', 'pause'), undefined, 'nothing to undo: no step');
  assert.is(nextContainerState('p', 'c', 'paused', 'resume'), 'running');
  assert.is(nextContainerState('p', 'c', 'paused', 'exited'), 'stopped');
  const codeOf = (from: Parameters<typeof nextContainerState>[2], event: Parameters<typeof nextContainerState>[3]) => {
    try {
      nextContainerState('p', 'c', from, event);
      return undefined;
    } catch (err) {
      return [(err as VcError).code, (err as Error).message];
    }
  };
  assert.equal(codeOf('paused', 'delete'), ['CONTAINER_RUNNING', 'container c in pod p is paused: stop it before deleting it (or delete it with force)']);
  assert.equal(codeOf('paused', 'pause')?.[0], 'ILLEGAL_TRANSITION');
  assert.equal(codeOf('paused', 'start')?.[0], 'ILLEGAL_TRANSITION');
  for (const from of ['created', 'running', 'stopped'] as const) assert.equal(codeOf(from, 'resume')?.[0], 'ILLEGAL_TRANSITION', from);
  for (const from of ['created', 'stopped'] as const) assert.equal(codeOf(from, 'pause')?.[0], 'ILLEGAL_TRANSITION', from);
});

test.run();
