/**
 * Saving settings writes only what differs from the defaults, so a later release's new defaults
 * still apply; and says which changed settings can lock staff out of this page or the API.
 */
import { configLeaves, type GatewayConfig, validateConfig } from '../core/config.js';

type Tree = Record<string, unknown>;

const at = (o: unknown, path: string[]): unknown =>
  path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Tree)[k] : undefined), o);

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The config reduced to the settings whose value is not the default (nested as in the file). */
export function withoutDefaults(config: GatewayConfig): Tree {
  const defaults = validateConfig({});
  const out: Tree = {};
  for (const leaf of configLeaves()) {
    const value = at(config, leaf.path);
    if (value === undefined || same(value, at(defaults, leaf.path))) continue;
    let obj = out;
    for (const seg of leaf.path.slice(0, -1)) {
      obj[seg] ??= {};
      obj = obj[seg] as Tree;
    }
    obj[leaf.path[leaf.path.length - 1]!] = value;
  }
  return out;
}

/** The dotted paths whose value differs between two configs. */
export function changedSettings(before: GatewayConfig, after: GatewayConfig): string[] {
  return configLeaves()
    .map((l) => l.path)
    .filter((p) => !same(at(before, p), at(after, p)))
    .map((p) => p.join('.'));
}

/**
 * Settings that, set wrong, keep staff from reaching this page, receipt computers from the API or
 * the kiosks from theirs (or make browsers distrust the certificate).
 */
export const LOCKOUT_SETTINGS: ReadonlySet<string> = new Set([
  'admin.enabled',
  'admin.host',
  'admin.port',
  'api.host',
  'api.port',
  'api.tls',
  'tls.hostnames',
  'tls.ips',
  'kiosk.host',
  'kiosk.port',
]);

export interface SettingChange {
  /** the dotted path */
  name: string;
  before: unknown;
  after: unknown;
  /** one of LOCKOUT_SETTINGS */
  lockout: boolean;
}

/** What saving `after` over `before` changes, setting by setting, in the schema's order. */
export function settingChanges(before: GatewayConfig, after: GatewayConfig): SettingChange[] {
  return changedSettings(before, after).map((name) => {
    const path = name.split('.');
    return { name, before: at(before, path), after: at(after, path), lockout: LOCKOUT_SETTINGS.has(name) };
  });
}
