/**
 * What VICI says about our SAs, read into the tunnel state the gateway shows. Pure: list-sa and
 * updown/rekey event messages in, plain values out.
 *
 * VICI gives no time of the last DPD exchange. The nearest it offers is the CHILD_SA's `use-in`
 * (seconds since the last inbound ESP packet): charon only sends DPD when nothing came in for
 * dpd_delay, so "heard from the peer" = now − use-in is what `lastDpd` reports, and a DPD that
 * fails shows as the SA going down (dpd_action = clear) with its reason.
 */
import type { ViciMessage, ViciValue } from './vici/codec.js';

export type IkeState = 'down' | 'connecting' | 'established' | 'rekeying' | 'deleting';
export type ChildState = 'down' | 'installing' | 'installed' | 'rekeying' | 'deleting';

export interface TunnelState {
  ike: IkeState;
  child: ChildState;
  /** when the CHILD_SA (or, down, the outage) began, ISO time */
  since: string;
  /** IKE_SA and CHILD_SA rekeys seen since the service started */
  rekeys: number;
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
  /** the last sign of life from the peer on the CHILD_SA (see the module comment), ISO time */
  lastDpd?: string;
  /** strongSwan's words for the last change (down: which SA went, in which state) */
  reason?: string;
}

export interface SaSnapshot {
  ikeState: string;
  established?: number;
  child?: {
    uniqueId?: string;
    state: string;
    installTime?: number;
    bytesIn: number;
    bytesOut: number;
    packetsIn: number;
    packetsOut: number;
    useIn?: number;
  };
}

const str = (v: ViciValue | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: ViciValue | undefined): number | undefined => {
  const s = str(v);
  if (s === undefined || !/^\d+$/.test(s)) return undefined;
  return Number(s);
};
const section = (v: ViciValue | undefined): ViciMessage | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? v : undefined;

/** The child of our CHILD_SA config name in a `child-sas` section (keys are `name-uniqueid`). */
export function childOf(ike: ViciMessage, childName: string): ViciMessage | undefined {
  const children = section(ike['child-sas']);
  if (!children) return undefined;
  const all = Object.entries(children)
    .filter(([key, c]) => {
      const n = str(section(c)?.['name']);
      return n === undefined ? key === childName || key.startsWith(`${childName}-`) : n === childName;
    })
    .map(([, c]) => section(c))
    .filter((c): c is ViciMessage => c !== undefined);
  // During a rekey two exist; the installed one with the highest uniqueid is current.
  const rank = (c: ViciMessage): number => (str(c['state']) === 'INSTALLED' ? 1e12 : 0) + (num(c['uniqueid']) ?? 0);
  return all.sort((a, b) => rank(b) - rank(a))[0];
}

/** Our IKE_SA from the list-sa events of a list-sas stream. */
export function snapshotOf(events: ViciMessage[], ikeName: string, childName: string): SaSnapshot | undefined {
  for (const e of events) {
    const ike = section(e[ikeName]);
    if (!ike) continue;
    const c = childOf(ike, childName);
    const established = num(ike['established']);
    return {
      ikeState: str(ike['state']) ?? 'UNKNOWN',
      ...(established !== undefined ? { established } : {}),
      ...(c
        ? {
            child: {
              state: str(c['state']) ?? 'UNKNOWN',
              ...(str(c['uniqueid']) ? { uniqueId: str(c['uniqueid'])! } : {}),
              ...(num(c['install-time']) !== undefined ? { installTime: num(c['install-time'])! } : {}),
              bytesIn: num(c['bytes-in']) ?? 0,
              bytesOut: num(c['bytes-out']) ?? 0,
              packetsIn: num(c['packets-in']) ?? 0,
              packetsOut: num(c['packets-out']) ?? 0,
              ...(num(c['use-in']) !== undefined ? { useIn: num(c['use-in'])! } : {}),
            },
          }
        : {}),
    };
  }
  return undefined;
}

export function ikeStateOf(s: string | undefined): IkeState {
  switch (s) {
    case 'ESTABLISHED':
      return 'established';
    case 'CONNECTING':
    case 'CREATED':
      return 'connecting';
    case 'REKEYING':
    case 'REKEYED':
      return 'rekeying';
    case 'DELETING':
    case 'DESTROYING':
      return 'deleting';
    default:
      return 'down';
  }
}

export function childStateOf(s: string | undefined): ChildState {
  switch (s) {
    case 'INSTALLED':
      return 'installed';
    case 'CREATED':
    case 'ROUTED':
    case 'INSTALLING':
      return 'installing';
    case 'REKEYING':
    case 'REKEYED':
      return 'rekeying';
    case 'DELETING':
    case 'DELETED':
    case 'DESTROYING':
      return 'deleting';
    default:
      return 'down';
  }
}

export type UpdownEvent = { kind: 'child' | 'ike'; up: boolean; reason: string; counters?: SaSnapshot['child'] };

/**
 * An ike-updown / child-updown event for our connection, or undefined when it is about another.
 * VICI's updown events carry no reason field; the reason given is the SAs' states at that moment
 * (e.g. "CHILD_SA DELETING, IKE_SA DELETING" for a delete by the peer or by DPD).
 */
export function updownOf(
  name: 'ike-updown' | 'child-updown',
  message: ViciMessage,
  ikeName: string,
  childName: string,
): UpdownEvent | undefined {
  const ike = section(message[ikeName]);
  if (!ike) return undefined;
  const up = message['up'] === 'yes';
  const ikeState = str(ike['state']) ?? 'UNKNOWN';
  if (name === 'ike-updown') return { kind: 'ike', up, reason: `IKE_SA ${up ? 'established' : ikeState}` };
  const c = childOf(ike, childName);
  if (!c) return undefined;
  const snap = snapshotOf([{ [ikeName]: ike }], ikeName, childName);
  return {
    kind: 'child',
    up,
    reason: up ? 'CHILD_SA installed' : `CHILD_SA ${str(c['state']) ?? 'UNKNOWN'}, IKE_SA ${ikeState}`,
    ...(snap?.child ? { counters: snap.child } : {}),
  };
}

const ZERO = { state: 'UNKNOWN', bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 };

/** A child-rekey event for our CHILD_SA: the old SA's final counters (carried into the totals) and the new SA. */
export function childRekeyOf(
  message: ViciMessage,
  ikeName: string,
  childName: string,
): { old: NonNullable<SaSnapshot['child']>; new: NonNullable<SaSnapshot['child']> } | null {
  const ike = section(message[ikeName]);
  const children = ike && section(ike['child-sas']);
  if (!children) return null;
  for (const [key, c] of Object.entries(children)) {
    const pair = section(c);
    const old = pair && section(pair['old']);
    const fresh = pair && section(pair['new']);
    if (!old || !fresh) continue;
    const named = str(old['name']);
    if (named === undefined ? key !== childName && !key.startsWith(`${childName}-`) : named !== childName) continue;
    const read = (x: ViciMessage) =>
      snapshotOf([{ [ikeName]: { 'child-sas': { [childName]: x } } }], ikeName, childName)?.child ?? ZERO;
    return { old: read(old), new: read(fresh) };
  }
  return null;
}
