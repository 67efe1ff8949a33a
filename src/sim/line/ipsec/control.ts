/**
 * Loopback-only HTTP JSON control of a running IPsec lab, for `onshi sim line ipsec …` against the
 * sandbox and for tests in another process:
 *   GET  /ipsec            → 200 {faults, clinic, central}  (the faults in force, each side's SAs)
 *   POST /ipsec/FAULT {…}  → 200 the same, after the fault took effect
 * FAULT: kill · restart (central's charon; {side} for the clinic's) · terminate (an SA delete from
 * central) · rekey {everyMs} · rekey-stop · link-down · link-up · flap {upMs, downMs} · flap-stop ·
 * readdress · mtu {bytes} · mtu-clear · up (everything back to normal).
 * Errors are JSON {error: {code, message}}: 400, 403 foreign Host, 404, 405, 413, 500.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpError, objectBody, readJson, sendError, sendJson } from '../../http.js';
import type { IpsecLab, LabSide } from './lab.js';

export const IPSEC_FAULTS = [
  'kill',
  'restart',
  'terminate',
  'rekey',
  'rekey-stop',
  'link-down',
  'link-up',
  'flap',
  'flap-stop',
  'readdress',
  'mtu',
  'mtu-clear',
  'up',
] as const;
export type IpsecFault = (typeof IPSEC_FAULTS)[number];

export interface IpsecLabControl {
  /** e.g. "http://127.0.0.1:PORT" */
  url: string;
  close(): Promise<void>;
}

const intIn = (body: Record<string, unknown>, key: string, min: number, max: number, fallback?: number): number => {
  const v = body[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new HttpError(400, 'BAD_REQUEST', `${key} is a whole number from ${min} to ${max}`);
  return v;
};

const sideOf = (body: Record<string, unknown>): LabSide => {
  const side = body.side ?? 'central';
  if (side !== 'clinic' && side !== 'central') throw new HttpError(400, 'BAD_REQUEST', 'side is clinic or central');
  return side;
};

/** Applies one fault to the lab. */
export async function applyIpsecFault(lab: IpsecLab, fault: IpsecFault, body: Record<string, unknown>): Promise<void> {
  switch (fault) {
    case 'kill':
      return lab.killCharon(sideOf(body));
    case 'restart':
      return lab.restartCharon(sideOf(body));
    case 'terminate':
      return lab.terminate(sideOf(body));
    case 'rekey':
      lab.startRekeying(intIn(body, 'everyMs', 500, 3_600_000, 3000));
      return;
    case 'rekey-stop':
      return lab.stopRekeying();
    case 'link-down':
    case 'link-up':
      return lab.setOuterLink(fault === 'link-up');
    case 'flap':
      lab.startFlapping(intIn(body, 'upMs', 100, 600_000), intIn(body, 'downMs', 100, 600_000));
      return;
    case 'flap-stop':
      return lab.stopFlapping();
    case 'readdress':
      await lab.readdressClinic();
      return;
    case 'mtu':
      return lab.setMtuBlackhole(intIn(body, 'bytes', 68, 9000));
    case 'mtu-clear':
      return lab.setMtuBlackhole(undefined);
    case 'up':
      return lab.restore();
  }
}

async function labStatus(lab: IpsecLab): Promise<Record<string, unknown>> {
  const sasOf = (side: LabSide) => (lab.charonRunning(side) ? lab.sas(side).catch(() => []) : Promise.resolve([]));
  return {
    faults: await lab.faultState(),
    clinic: { vici: lab.clinic.viciUri, outer: lab.clinic.outer, inner: lab.clinic.inner, sas: await sasOf('clinic') },
    central: {
      vici: lab.central.viciUri,
      outer: lab.central.outer,
      inner: lab.central.inner,
      sas: await sasOf('central'),
    },
  };
}

export async function startIpsecLabControl(lab: IpsecLab, opts: { port?: number } = {}): Promise<IpsecLabControl> {
  let port = opts.port ?? 0;
  const server = http.createServer((req, res) => void handle(req, res).catch((e: unknown) => sendError(res, e)));

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Guard against DNS rebinding: a web page must not drive the lab through a browser.
    const host = (req.headers.host ?? '').toLowerCase();
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`)
      throw new HttpError(403, 'FORBIDDEN', 'Host header must name the loopback control address');
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/ipsec') {
      if (req.method !== 'GET') throw new HttpError(405, 'METHOD', 'GET /ipsec');
      return sendJson(res, 200, await labStatus(lab));
    }
    const fault = path.startsWith('/ipsec/') ? path.slice('/ipsec/'.length) : '';
    if (!(IPSEC_FAULTS as readonly string[]).includes(fault)) throw new HttpError(404, 'NOT_FOUND', `no ${path}`);
    if (req.method !== 'POST') throw new HttpError(405, 'METHOD', `POST ${path}`);
    await applyIpsecFault(lab, fault as IpsecFault, objectBody(await readJson(req, 16 * 1024)));
    sendJson(res, 200, await labStatus(lab));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
