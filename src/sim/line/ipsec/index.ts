export * from './conf.js';
export * from './lab.js';
export * from './list-sas.js';
export * from './control.js';
