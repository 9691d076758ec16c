/**
 * src/core/next-task.ts: the task SDK_READY and the late envelopes of a login are delivered
 * on. Its order relative to promise continuations, cancelling, a throwing
 * callback, and that an idle channel keeps no Node process alive. That a hidden browser tab
 * gets it without the timer throttle is e2e/hidden.spec.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nextTask } from '../../src/core/next-task.js';

function settle(): Promise<void> {
  return new Promise((resolve) => nextTask(resolve));
}

test("the caller's promise continuations run before the task; tasks run first in, first out", async () => {
  const order: string[] = [];
  const login = Promise.resolve('resolved');
  nextTask(() => order.push('task 1'));
  nextTask(() => order.push('task 2'));
  // A chain of continuations several microtasks long still runs before the first task.
  void login.then(() => order.push('then 1')).then(() => order.push('then 2')).then(() => order.push('then 3'));
  order.push('sync');
  await settle();
  assert.deepEqual(order, ['sync', 'then 1', 'then 2', 'then 3', 'task 1', 'task 2']);
});

test('a cancelled task never runs; cancelling after it ran changes nothing', async () => {
  const ran: string[] = [];
  const cancelA = nextTask(() => ran.push('a'));
  nextTask(() => ran.push('b'));
  cancelA();
  await settle();
  assert.deepEqual(ran, ['b']);
  const cancelC = nextTask(() => ran.push('c'));
  await settle();
  cancelC();
  assert.deepEqual(ran, ['b', 'c']);
});

test('a throwing callback is reported (reportError) and the next task still runs', async () => {
  const g = globalThis as { reportError?: (e: unknown) => void };
  const saved = g.reportError;
  const reported: unknown[] = [];
  g.reportError = (e) => reported.push(e);
  try {
    const ran: string[] = [];
    nextTask(() => { throw new Error('handler failed'); });
    nextTask(() => ran.push('after'));
    await settle();
    assert.deepEqual(ran, ['after']);
    assert.equal(reported.length, 1);
    assert.match(String((reported[0] as Error).message), /handler failed/);
  } finally {
    if (saved === undefined) delete g.reportError;
    else g.reportError = saved;
  }
});

test('an idle channel keeps no Node process alive, a waiting one does', () => {
  const modulePath = fileURLToPath(new URL('../../src/core/next-task.ts', import.meta.url));
  const script = `
    const { nextTask } = await import(${JSON.stringify(modulePath)});
    nextTask(() => {
      console.log('first');
      nextTask(() => console.log('second'));
    });`;
  const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(res.signal, null, `the process did not exit by itself (${res.signal}); stderr: ${res.stderr}`);
  assert.equal(res.status, 0, res.stderr);
  assert.equal(res.stdout, 'first\nsecond\n');
});
