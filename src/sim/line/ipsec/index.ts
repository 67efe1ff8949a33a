export * from './conf.js';
export * from './lab.js';
