/**
 * The README's first command, exactly as written (`npm start`, with `-- --port 0` so it
 * cannot collide with anything on 8080): it prints the demo URL, the demo page loads and a
 * tab logs in with no console error, and SIGTERM stops the whole process tree cleanly.
 * (`npm install` is what `.ci/run` already did through scripts/setup.sh.)
 */
import { spawn } from 'node:child_process';
import { expect, test } from '@playwright/test';
import { ROOT, watchConsoleErrors } from './fixtures.js';

test('npm start serves the demo, a tab logs in, SIGTERM stops it', async ({ context }) => {
  const child = spawn('npm', ['start', '--', '--port', '0'], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? `exit ${code}`)));
  // The server shares the pipe: it is closed once every process of the tree is gone.
  const outputClosed = new Promise<void>((resolve) => child.stdout!.once('close', () => resolve()));
  try {
    await expect.poll(() => /demo: open (http:\/\/\S+)\//.exec(output)?.[1] ?? '', { timeout: 120_000, message: 'npm start prints the demo URL' }).not.toBe('');
    const url = /demo: open (http:\/\/\S+)\//.exec(output)![1]!;
    const problems = watchConsoleErrors(context);
    const page = await context.newPage();
    await page.goto(`${url}/`);
    await expect(page.locator('h1')).toContainText('tabchat');
    await page.locator('#user').fill(`readme-${Date.now()}`);
    await page.locator('#login').click();
    await expect(page.locator('#ready')).toHaveText('ready');
    await page.close();
    expect(problems).toEqual([]);
  } finally {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
  }
  // The whole group got SIGTERM: the server stops cleanly (its "stopped" log line) and npm
  // ends by the signal, as npm does.
  expect(['exit 0', 'SIGTERM']).toContain(await exited);
  await outputClosed;
  expect(output).toContain('"msg":"stopped"');
});
