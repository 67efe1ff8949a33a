/**
 * `onshi sandbox --line ipsec` as a new user runs it (its own process, the real CLI): READY names
 * the line and the clinic's VICI socket, a check by numbers crosses the tunnel (the CHILD_SA's
 * packet counts rise), SIGINT tears the whole lab down.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import t from 'tap';
import { installedChild, ipsecLabPrerequisites, labNamespaces, parseListSas } from '../../src/sim/line/ipsec/index.js';
import { BIN, runOnshi } from '../helpers/sandbox-cli.js';

t.setTimeout(300_000);
const run = promisify(execFile);

t.test('sandbox --line ipsec: READY, a check through the tunnel, teardown on SIGINT', async (t) => {
  const missing = await ipsecLabPrerequisites();
  if (missing) {
    if (process.env.CI) t.fail(`the IPsec lab cannot run: ${missing}`);
    else t.plan(0, missing);
    return;
  }
  const state = mkdtempSync(join(tmpdir(), 'onshi-ipsec-sandbox-'));
  t.teardown(() => rmSync(state, { recursive: true, force: true }));
  const child = spawn(process.execPath, [BIN, 'sandbox', '--line', 'ipsec', '--state', state, '--port-base', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const ready = await new Promise<Record<string, string>>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the sandbox exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('READY '))
        resolve(
          Object.fromEntries(
            line
              .slice(6)
              .split(' ')
              .map((kv) => kv.split('=', 2) as [string, string]),
          ),
        );
    });
  });
  t.match(ready, {
    line: 'ipsec',
    vici: /^unix:\/\/\/.*charon\.vici$/,
    ws: /^wss:\/\/198\.1[89]\.\d+\.10:\d+\/v1$/,
    central: /^https:\/\/198\.19\.\d+\.1:\d+$/,
    lab: /^http:\/\/127\.0\.0\.1:\d+$/,
    netns: /^oipsec-\d+-[0-9a-f]+-clinic$/,
  });
  const packetsOut = async (): Promise<number> => {
    const { stdout } = await run('swanctl', ['--list-sas', '--uri', ready.vici!]);
    return installedChild(parseListSas(stdout), 'oqs')?.child.packetsOut ?? -1;
  };
  const before = await packetsOut();
  t.ok(before >= 0, 'the clinic charon has the CHILD_SA installed');
  const env = { ONSHI_WS: ready.ws!, ONSHI_TOKEN: ready.token!, NODE_EXTRA_CA_CERTS: ready.ca! };
  const check = await runOnshi(['inquiry', '--numbers', '06139992,テスト,12345,00', '--birthdate', '19800401'], env);
  t.equal(check.code, 0, check.stderr);
  t.equal((JSON.parse(check.stdout) as { source: string }).source, 'central', 'answered by central');
  t.ok((await packetsOut()) > before, 'the check crossed the tunnel (packets out rose)');

  const labId = /^oipsec-(\d+-[0-9a-f]+)-clinic$/.exec(ready.netns!)![1]!;
  child.kill('SIGINT');
  t.equal(await exited, 0, 'SIGINT ends the sandbox cleanly');
  t.same(
    (await labNamespaces()).filter((n) => n.includes(labId)),
    [],
    "the lab's namespaces are gone",
  );
});
