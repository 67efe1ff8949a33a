/** `onshi sim …` and `onshi sandbox`: the simulators' command line (never loaded by the daemon). */
import { superviseGateway } from './supervise.js';
import { parseArgs } from 'node:util';
import { todayJst } from '../oqs/dates.js';
import { CentralSim } from './central/server.js';
import { addDays, peopleRows, seedPopulation, type PeopleRow } from './central/population.js';
import { ensureSandboxPki, REVOKED_CARD_SERIAL } from './pki.js';
import { startSandbox } from './sandbox.js';
import { startIpsecSandbox } from './sandbox-ipsec.js';
import { IPSEC_FAULTS } from './line/ipsec/control.js';
import { cardControlClient } from './card/index.js';

const USAGE = `usage:
  onshi sandbox [--state DIR] [--port-base N] [--line ipsec]
                                                central simulator + gateway; prints READY key=value …
                                                --line ipsec: across a real IPsec tunnel between two
                                                network namespaces (root; see docs/line.md)
  onshi sim people [--json] [--control URL]     the simulator's people and the validity it will answer
  onshi sim central [--state DIR] [--host ADDR] [--port N] [--control-host ADDR] [--control-port N]
                                                run the central simulator alone
  onshi sim people disqualify ID [--date YYYYMMDD] [--control URL]
                                                central learns that person ID left the insurer
                                                (資格喪失 on --date, default today): a later check changes
  onshi sim people change-insurer ID --numbers INSURER,SYMBOL,NUMBER,BRANCH --registers-on-day N
          [--insurer-name NAME] [--control URL]
                                                person ID leaves the insurer today (simulated) and joins
                                                another, which central learns of on day N only
  onshi sim card list | insert [--slot N] [--profile P] [--reset] | remove [--slot N] [--cards URL]
                                                the sandbox's virtual cards (profiles: normal,
                                                expired-recent, expired-old, revoked, blocked,
                                                misregistered; PIN 1234)
  onshi sim day [N | +N | today] [--control URL]
                                                the simulated processing day: day 1 is the day the
                                                simulator started; +N advances (e.g. P0000018's new
                                                insurer registers on day 4); today = the real day
  onshi sim line [status | up | down | blackhole | slow MS | flap UP_MS DOWN_MS | MODE_JSON] [--line URL]
                                                the closed line between gateway and central
  onshi sim line ipsec [status | kill | restart | terminate | rekey [EVERY_MS] | rekey-stop |
          link-down | link-up | flap UP_MS DOWN_MS | flap-stop | readdress | mtu BYTES |
          mtu-clear | up] [--side clinic|central] [--lab URL]
                                                the IPsec sandbox's line: central's charon killed and
                                                restarted, the SA deleted by central, rekeys every
                                                EVERY_MS, the outer link down/up/flapping, the
                                                clinic's outer address changed, packets over BYTES
                                                dropped silently; up = all back to normal

--state defaults to ./.sandbox; --port-base to 18443 (central), +1 control, +2 gateway WebSocket,
+3 virtual cards; 0 picks free ports. --control (or ONSHI_SIM_CONTROL) asks a running simulator
instead of the seed; --cards (or ONSHI_SIM_CARDS, default http://127.0.0.1:18446) the card control;
--line (or ONSHI_SIM_LINE, default http://127.0.0.1:18448) the line control; --lab (or
ONSHI_SIM_LAB, default http://127.0.0.1:18448) the IPsec sandbox's lab control (READY's lab=).`;

export async function main(argv: string[]): Promise<number> {
  try {
    if (argv[0] === 'sandbox') return await sandbox(argv.slice(1));
    if (argv[0] === 'sim') {
      switch (argv[1]) {
        case 'people':
          return await people(argv.slice(2));
        case 'central':
          return await central(argv.slice(2));
        case 'card':
          return await card(argv.slice(2));
        case 'line':
          return await line(argv.slice(2));
        case 'day':
          return await day(argv.slice(2));
        case 'help':
        case '--help':
        case undefined:
          process.stdout.write(USAGE + '\n');
          return argv[1] === undefined ? 2 : 0;
      }
    }
    process.stderr.write(`onshi: unknown simulator command\n${USAGE}\n`);
    return 2;
  } catch (e) {
    process.stderr.write(`onshi: ${(e as Error).message}\n`);
    return (e as { usage?: boolean }).usage ? 2 : 1;
  }
}

function args<T extends Record<string, { type: 'string' | 'boolean' }>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true }).values;
  } catch (e) {
    throw Object.assign(new Error((e as Error).message), { usage: true });
  }
}

const portOf = (v: string | undefined, fallback: number): number => {
  const n = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65533) throw Object.assign(new Error(`bad port "${v}"`), { usage: true });
  return n;
};

async function people(argv: string[]): Promise<number> {
  if (argv[0] === 'disqualify') return disqualify(argv.slice(1));
  if (argv[0] === 'change-insurer') return changeInsurer(argv.slice(1));
  const v = args(argv, { json: { type: 'boolean' }, control: { type: 'string' } });
  const control = v.control ?? process.env.ONSHI_SIM_CONTROL;
  let rows: PeopleRow[];
  if (control) {
    const res = await fetch(new URL('/control/people', control));
    if (!res.ok) throw new Error(`the simulator answered ${res.status}`);
    rows = (await res.json()) as PeopleRow[];
  } else rows = peopleRows(seedPopulation(), todayJst());
  if (v.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
  else {
    for (const r of rows) {
      process.stdout.write(
        `${r.expectedValidity}  --numbers '${r.insurerNumber},${r.symbol},${r.number},${r.branch}' --birthdate ${r.birthdate}   # ${r.id} ${r.label}\n`,
      );
    }
  }
  return 0;
}

/** The registration lag by hand: the old qualification ends today, the new one is registered on day N. */
async function changeInsurer(argv: string[]): Promise<number> {
  const [id, ...rest] = argv;
  const v = args(rest, {
    numbers: { type: 'string' },
    'registers-on-day': { type: 'string' },
    'insurer-name': { type: 'string' },
    control: { type: 'string' },
  });
  const usage = (m: string): Error => Object.assign(new Error(m), { usage: true });
  if (!id) throw usage('sim people change-insurer needs a person id (see onshi sim people)');
  const parts = (v.numbers ?? '').split(',');
  if (parts.length !== 4 || !/^\d{6}(\d{2})?$/.test(parts[0]!) || !parts[2])
    throw usage('--numbers is INSURER,SYMBOL,NUMBER,BRANCH (SYMBOL and BRANCH may be empty)');
  const day = Number(v['registers-on-day']);
  if (!Number.isInteger(day) || day < 1)
    throw usage('--registers-on-day is the simulated day (1 = the first) on which central learns of the new insurer');
  const control = v.control ?? process.env.ONSHI_SIM_CONTROL ?? 'http://127.0.0.1:18444';
  const call = async (path: string, method: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(new URL(path, control), {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok) throw new Error(`the simulator answered ${res.status}: ${await res.text()}`);
    return res.json();
  };
  const clock = (await call('/control/clock', 'GET')) as { day1: string; today: string };
  const registeredOn = addDays(clock.day1, day - 1);
  const [insurerNumber, symbol, number, branch] = parts as [string, string, string, string];
  const person = `/control/people/${encodeURIComponent(id)}/qualifications`;
  await call(`${person}/0`, 'PATCH', { disqualificationDate: clock.today, reasonOfLoss: '03' }); // OQSCD008 03: 転職等
  await call(person, 'POST', {
    insurerNumber,
    number,
    ...(symbol ? { symbol } : {}),
    ...(branch ? { branch } : {}),
    insurerName: v['insurer-name'] ?? '新保険者（シミュレータ）',
    cardClassification: '01',
    personalFamily: '1',
    qualificationDate: clock.today,
    registeredOn,
  });
  process.stdout.write(
    `${id}: 資格喪失 ${clock.today}; new insurer ${insurerNumber} from ${clock.today}, registered at central on day ${day} (${registeredOn})\n`,
  );
  return 0;
}

async function disqualify(argv: string[]): Promise<number> {
  const [id, ...rest] = argv;
  const v = args(rest, { date: { type: 'string' }, control: { type: 'string' } });
  if (!id)
    throw Object.assign(new Error('sim people disqualify needs a person id (see onshi sim people)'), { usage: true });
  const date = v.date ?? todayJst();
  if (!/^\d{8}$/.test(date)) throw Object.assign(new Error('--date is YYYYMMDD'), { usage: true });
  const control = v.control ?? process.env.ONSHI_SIM_CONTROL ?? 'http://127.0.0.1:18444';
  const res = await fetch(new URL(`/control/people/${encodeURIComponent(id)}/qualifications/0`, control), {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ disqualificationDate: date, reasonOfLoss: '99' }), // OQSCD008 99 その他
  });
  if (!res.ok) throw new Error(`the simulator answered ${res.status}: ${await res.text()}`);
  process.stdout.write(`${id}: 資格喪失 ${date}\n`);
  return 0;
}

async function day(argv: string[]): Promise<number> {
  const positional = argv.filter((a) => !a.startsWith('--') && !argv[argv.indexOf(a) - 1]?.startsWith('--'));
  const v = args(
    argv.filter((a) => !positional.includes(a)),
    { control: { type: 'string' } },
  );
  const control = v.control ?? process.env.ONSHI_SIM_CONTROL ?? 'http://127.0.0.1:18444';
  const [what] = positional;
  let body: Record<string, unknown> | undefined;
  if (what === 'today') body = { day: null };
  else if (what !== undefined && /^\+\d{1,4}$/.test(what)) body = { advanceDays: Number(what.slice(1)) };
  else if (what !== undefined && /^\d{1,4}$/.test(what)) body = { day: Number(what) };
  else if (what !== undefined)
    throw Object.assign(new Error(`"${what}" is not a day (N, +N or today)`), { usage: true });
  const res = await fetch(
    new URL('/control/clock', control),
    body ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {},
  );
  if (!res.ok) throw new Error(`the simulator answered ${res.status}: ${await res.text()}`);
  const c = (await res.json()) as { day: number; today: string; day1: string };
  process.stdout.write(`day ${c.day}: ${c.today} (day 1 = ${c.day1})\n`);
  return 0;
}

async function line(argv: string[]): Promise<number> {
  if (argv[0] === 'ipsec') return ipsecLine(argv.slice(1));
  const [sub = 'status', ...rest] = argv;
  const positional = rest.filter((a) => !a.startsWith('--'));
  const v = args(
    rest.filter((a) => !positional.includes(a)),
    { line: { type: 'string' } },
  );
  const url = new URL('/line', v.line ?? process.env.ONSHI_SIM_LINE ?? 'http://127.0.0.1:18448');
  const ms = (x: string | undefined): number => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 0)
      throw Object.assign(new Error(`"${x}" is not a number of milliseconds`), { usage: true });
    return n;
  };
  let mode: unknown;
  switch (sub) {
    case 'status':
      break;
    case 'up':
    case 'down':
    case 'blackhole':
      mode = { kind: sub };
      break;
    case 'slow':
      mode = { kind: 'latency', ms: ms(positional[0]) };
      break;
    case 'flap':
      mode = { kind: 'flap', upMs: ms(positional[0]), downMs: ms(positional[1]) };
      break;
    default:
      try {
        mode = JSON.parse(sub);
      } catch {
        throw Object.assign(new Error(`unknown line mode "${sub}"`), { usage: true });
      }
  }
  if (mode !== undefined) {
    const res = await fetch(url, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mode }),
    });
    if (!res.ok) throw new Error(`the line control answered ${res.status}: ${await res.text()}`);
  }
  const res = await fetch(url);
  process.stdout.write(JSON.stringify(await res.json(), null, 2) + '\n');
  return 0;
}

/** `onshi sim line ipsec FAULT [ARGS] [--side S] [--lab URL]`: the IPsec sandbox's lab. */
async function ipsecLine(argv: string[]): Promise<number> {
  const [sub = 'status', ...rest] = argv;
  const positional = rest.filter((a, i) => !a.startsWith('--') && !rest[i - 1]?.startsWith('--'));
  const v = args(
    rest.filter((a) => !positional.includes(a)),
    { lab: { type: 'string' }, side: { type: 'string' } },
  );
  const base = v.lab ?? process.env.ONSHI_SIM_LAB ?? 'http://127.0.0.1:18448';
  const usage = (m: string): Error => Object.assign(new Error(m), { usage: true });
  const num = (x: string | undefined, what: string): number => {
    const n = Number(x);
    if (x === undefined || !Number.isInteger(n) || n < 0) throw usage(`${what}: "${x ?? ''}" is not a whole number`);
    return n;
  };
  let res: Response;
  if (sub === 'status') res = await fetch(new URL('/ipsec', base));
  else {
    if (!(IPSEC_FAULTS as readonly string[]).includes(sub))
      throw usage(`unknown IPsec lab fault "${sub}" (one of: status ${IPSEC_FAULTS.join(' ')})`);
    const body: Record<string, unknown> = v.side ? { side: v.side } : {};
    if (sub === 'rekey' && positional[0]) body.everyMs = num(positional[0], 'rekey EVERY_MS');
    if (sub === 'flap')
      Object.assign(body, { upMs: num(positional[0], 'flap UP_MS'), downMs: num(positional[1], 'flap DOWN_MS') });
    if (sub === 'mtu') body.bytes = num(positional[0], 'mtu BYTES');
    res = await fetch(new URL(`/ipsec/${sub}`, base), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }
  if (!res.ok) throw new Error(`the lab control answered ${res.status}: ${await res.text()}`);
  process.stdout.write(JSON.stringify(await res.json(), null, 2) + '\n');
  return 0;
}

async function central(argv: string[]): Promise<number> {
  const v = args(argv, {
    state: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'control-host': { type: 'string' },
    'control-port': { type: 'string' },
  });
  const pki = await ensureSandboxPki(v.state ?? '.sandbox');
  const sim = await CentralSim.start({
    pki,
    ...(v.host ? { host: v.host } : {}),
    ...(v['control-host'] ? { controlHost: v['control-host'] } : {}),
    port: portOf(v.port, 18443),
    controlPort: portOf(v['control-port'], 18444),
    revokedSerials: [REVOKED_CARD_SERIAL],
  });
  process.stdout.write(`READY central=${sim.url} control=${sim.controlUrl}\n`);
  await untilSignal();
  await sim.close();
  return 0;
}

async function card(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const v = args(rest, {
    slot: { type: 'string' },
    profile: { type: 'string' },
    reset: { type: 'boolean' },
    cards: { type: 'string' },
  });
  const client = cardControlClient(v.cards ?? process.env.ONSHI_SIM_CARDS ?? 'http://127.0.0.1:18446');
  const slot = v.slot === undefined ? 0 : Number(v.slot);
  if (!Number.isInteger(slot) || slot < 0 || slot > 1)
    throw Object.assign(new Error('--slot is 0 or 1'), { usage: true });
  let out: unknown;
  switch (sub) {
    case 'list':
      out = await client.list();
      break;
    case 'insert':
      out = await client.insert(slot, v.profile, v.reset ? { resetCounters: true } : {});
      break;
    case 'remove':
      out = await client.remove(slot);
      break;
    default:
      throw Object.assign(new Error('sim card list|insert|remove'), { usage: true });
  }
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  return 0;
}

async function sandbox(argv: string[]): Promise<number> {
  const v = args(argv, { state: { type: 'string' }, 'port-base': { type: 'string' }, line: { type: 'string' } });
  if (v.line !== undefined && v.line !== 'ipsec')
    throw Object.assign(new Error(`--line is ipsec (without it, the line is a fault proxy on loopback)`), {
      usage: true,
    });
  const opts = {
    stateDir: v.state ?? '.sandbox',
    portBase: portOf(v['port-base'], 18443),
    log: (line: string) => process.stdout.write(line + '\n'),
    warn: (line: string) => process.stderr.write(`onshi: ${line}\n`),
  };
  // Ctrl-C during the start still tears everything down (the lab's namespaces above all).
  const signalled = untilSignal();
  const sb = await (v.line === 'ipsec' ? startIpsecSandbox(opts) : startSandbox(opts));
  // A gateway that dies is started again (as systemd would); the simulators and the card stay up.
  const supervisor = superviseGateway({
    first: sb.gateway,
    restart: () => sb.restartGateway(),
    warn: (line) => opts.warn(`${line} (log: ${sb.ready.log})`),
  });
  await signalled;
  supervisor.stop();
  await sb.close();
  return 0;
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
