/**
 * The `TabChat` object of `tabchat/node`: the entry's default export is this module's
 * namespace, so `TabChat.EVENT` and `TabChat.TYPES` are values and types, as in the browser
 * entry (src/browser/api.ts). Only what is exported here is on it.
 */
export { create } from './create.js';
export { EVENT, TSignaling, TYPES, VERSION } from '../client/constants.js';
