/**
 * The `TabChat` object of browsers: the default export of `tabchat` and the drop-in global.
 * It is this module's namespace (src/index.ts), so that, as with the reference SDK's
 * typings, `TabChat.EVENT` and `TabChat.TYPES` are values, types and namespaces
 * (`TabChat.TYPES.KICKED_OUT_MULT_ACCOUNT` as a type). Only what is exported here is on it.
 */
export { create, getWorkerState } from './tabchat.js';
export { EVENT, TSignaling, TYPES, VERSION } from '../client/constants.js';
