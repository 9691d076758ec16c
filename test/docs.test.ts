/**
 * Docs stay next to the code: every error code and close code in src/protocol/codes.ts has
 * a heading (or table row) in docs/errors.md, every metric the server registers is listed
 * in docs/operations.md, and every metric of a cluster node in docs/scaling.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CLOSE, CODE } from '../src/protocol/codes.js';
import { ClusterMetrics, Metrics } from '../server/metrics.js';

const errorsDoc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
const opsDoc = readFileSync(new URL('../docs/operations.md', import.meta.url), 'utf8');
const scalingDoc = readFileSync(new URL('../docs/scaling.md', import.meta.url), 'utf8');

test('every error code has a heading in docs/errors.md', () => {
  const missing = Object.entries(CODE)
    .filter(([, code]) => code !== 0)
    .filter(([name, code]) => !errorsDoc.includes(`### ${code} ${name}`))
    .map(([name, code]) => `${code} ${name}`);
  assert.deepEqual(missing, []);
});

test('every close code is in the close-code table of docs/errors.md', () => {
  const missing = Object.entries(CLOSE).filter(([, code]) => !errorsDoc.includes(`| ${code} |`));
  assert.deepEqual(missing, []);
});

test('every tabchat metric is documented in docs/operations.md', async () => {
  const metrics = new Metrics('docs', () => new Map());
  const names = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => !n.startsWith('tabchat_process_'));
  assert.ok(names.includes('tabchat_connections'));
  const missing = names.filter((n) => !opsDoc.includes(`\`${n}\``));
  assert.deepEqual(missing, []);
});

test('every cluster metric is documented in docs/scaling.md', async () => {
  const metrics = new Metrics('docs', () => new Map());
  const before = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
  new ClusterMetrics(metrics.registry);
  const names = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => !before.has(n));
  assert.ok(names.includes('tabchat_engine_available'));
  const missing = names.filter((n) => !scalingDoc.includes(`\`${n}\``));
  assert.deepEqual(missing, []);
});
