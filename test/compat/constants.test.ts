/**
 * Every `EVENT`, `TYPES` and `TSignaling` constant of the reference SDK, read from its
 * package at run time, exists in `tabchat/node` with the identical value, and no other
 * constant does. A drift of the reference's tables (a new version of the package) fails
 * here with the names that differ. The drop-in script's tables are checked the same way in
 * a browser (e2e/compat.spec.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import TabChat from '../../src/node/index.js';
import { loadReference, tableDiff, type Table } from './reference.js';

const reference = loadReference();

test('the reference package is the version the suite was written for', () => {
  assert.equal(reference.version, '3.6.6');
});

for (const name of ['EVENT', 'TYPES', 'TSignaling'] as const) {
  test(`${name}: every reference key, with its value, and nothing else`, () => {
    const ours = TabChat[name] as unknown as Table;
    assert.deepEqual(tableDiff(ours, reference[name]), [], `${name} differs from the reference`);
    assert.ok(Object.keys(reference[name]).length > 0);
    assert.ok(Object.isFrozen(ours), `${name} is frozen`);
  });
}

test('sizes the issue names: 37 events, 115 types', () => {
  assert.equal(Object.keys(TabChat.EVENT).length, 37);
  assert.equal(Object.keys(TabChat.TYPES).length, 115);
});
