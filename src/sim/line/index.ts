/** Line fault proxy for the sandbox and the tests: see docs/fault-proxy.md. Never imported by production code. */
export { FaultProxy, type FaultProxyEvents, type FaultProxyOptions } from './proxy.js';
export { startLineControl, type LineControl } from './control.js';
export {
  parseLineMode,
  LINE_MODE_KINDS,
  LINE_MODE_LIMITS,
  type LineMode,
  type LineModeKind,
  type LineStats,
} from './modes.js';
