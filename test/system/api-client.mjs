// A receipt computer for the system test (scripts/test-system.sh), run inside the container with
// the package's own `ws` module: one WebSocket, checks one after another, each timed from the
// request frame to its answer (so the figure is the gateway's, not a CLI's start-up).
//   node api-client.mjs PEOPLE_FILE COUNT|Ns DEADLINE_MS [PAUSE_MS [FIRST]]
// PEOPLE_FILE: lines "--numbers I,S,N,B --birthdate D". COUNT checks, or as many as fit in N
// seconds ("75s"), starting with person FIRST (default 0). Prints one JSON line per check: { i, ms, type, source, code }.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire('/usr/lib/onshi-gateway/package.json');
const WebSocket = require('ws');
const [peopleFile, amount, deadlineArg, pauseArg, firstArg] = process.argv.slice(2);
const people = readFileSync(peopleFile, 'utf8')
  .trim()
  .split('\n')
  .map((l) => {
    const m = l.match(/--numbers (\S*) --birthdate (\d{8})/);
    const [insurerNumber, symbol, number, branch] = m[1].split(',');
    return {
      insurerNumber,
      number,
      birthdate: m[2],
      limitConsent: false,
      ...(symbol ? { symbol } : {}),
      ...(branch ? { branch } : {}),
    };
  });
const deadlineMs = Number(deadlineArg ?? 15000);
const pause = Number(pauseArg ?? 0);
const first = Number(firstArg ?? 0);
const untilMs = amount.endsWith('s') ? Date.now() + Number(amount.slice(0, -1)) * 1000 : Infinity;
const count = amount.endsWith('s') ? Infinity : Number(amount);

const ws = new WebSocket(process.env.ONSHI_WS ?? 'ws://127.0.0.1:8765/v1', {
  headers: { authorization: `Bearer ${readFileSync('/root/token', 'utf8').trim()}` },
});
const waiting = new Map();
ws.on('message', (data) => {
  const m = JSON.parse(String(data));
  const w = m.id !== undefined && waiting.get(m.id);
  if (w) {
    waiting.delete(m.id);
    w(m);
  }
});
await new Promise((resolve, reject) => {
  ws.once('open', resolve);
  ws.once('error', reject);
});
const ask = (msg) =>
  new Promise((resolve) => {
    waiting.set(msg.id, resolve);
    ws.send(JSON.stringify(msg));
  });
await ask({ type: 'hello', id: 'h', protocol: '1.0', client: 'system-test' });
for (let i = 0; i < count && Date.now() < untilMs; i++) {
  const t0 = performance.now();
  const m = await ask({ type: 'inquiry.numbers', id: `q${i}`, query: people[(first + i) % people.length], deadlineMs });
  const ms = Math.round(performance.now() - t0);
  console.log(JSON.stringify({ i, ms, type: m.type, source: m.result?.source ?? null, code: m.error?.code ?? null }));
  if (pause) await new Promise((r) => setTimeout(r, pause));
}
ws.close();
