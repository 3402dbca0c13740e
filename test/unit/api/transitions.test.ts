import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canHappen, nextState, type PodEvent } from '../../../src/api/transitions.js';
import { podStates } from '../../../src/model/states.js';
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
  // stopped: pause, resume, stop, vmmExited
  assert.is(illegal, 12);
});

test.run();
