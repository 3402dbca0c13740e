import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canHappen, nextState, podStates, type PodEvent } from '../../../src/api/transitions.js';
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

test('deleting a running pod fails with POD_RUNNING', () => {
  try {
    nextState('p', 'running', 'delete');
    assert.unreachable('delete of a running pod was allowed');
  } catch (err) {
    assert.instance(err, VcError);
    assert.is((err as VcError).code, 'POD_RUNNING');
  }
});

test('every other illegal event fails with ILLEGAL_TRANSITION naming state and event', () => {
  const events: PodEvent[] = ['start', 'stop', 'vmmExited', 'delete'];
  let illegal = 0;
  for (const state of podStates) {
    for (const event of events) {
      if (canHappen(state, event) || (state === 'running' && event === 'delete')) continue;
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
  assert.is(illegal, 5); // ready: stop, vmmExited; running: start; stopped: stop, vmmExited
});

test.run();
