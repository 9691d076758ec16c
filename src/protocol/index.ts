export * from './codes.js';
export * from './frames.js';
export * from './conversation-frames.js';
