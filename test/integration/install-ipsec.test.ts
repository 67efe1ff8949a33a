/**
 * scripts/install.sh --line ipsec into a scratch root: strongSwan's packages are asked for, charon
 * gets its group and VICI socket path, systemd makes the socket's directory, user onshi joins the
 * group; a second run changes nothing; --line ip-vpn takes it all away again. And the file the
 * installer writes, run by a real charon-systemd (in a namespace of its own), makes the VICI
 * socket group-owned with mode 0770, which swanctl finds through the same file.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ipsecLabPrerequisites, LAB_PLUGINS } from '../../src/sim/line/ipsec/index.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const INSTALL = join(REPO, 'scripts/install.sh');
t.setTimeout(400_000);

// mkdtemp, not t.testdir(): the installer makes root-owned files for other users in it, kept out of the repository.
const root = mkdtempSync(join(tmpdir(), 'onshi-install-ipsec-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const install = (...args: string[]) => {
  const r = spawnSync('bash', [INSTALL, '--root', root, '--no-build', ...args], { encoding: 'utf8', timeout: 150_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
};
const at = (p: string) => join(root, p);
const CONF = 'etc/strongswan.d/onshi-gateway.conf';
const DROPIN = 'etc/systemd/system/strongswan.service.d/onshi-gateway.conf';
const SYSUSERS = 'etc/sysusers.d/onshi-gateway-vici.conf';

t.test('a wrong --line is refused', async (t) => {
  const r = install('--line', 'dialup');
  t.not(r.status, 0);
  t.match(r.out, /--line is ip-vpn or ipsec, not 'dialup'/);
});

t.test('--line ipsec: packages, charon config, socket directory, group', async (t) => {
  const first = install('--line', 'ipsec');
  t.equal(first.status, 0, first.out);
  t.match(first.out, /apt packages \([^)]*charon-systemd strongswan-swanctl/, 'asks for strongSwan');
  t.match(first.out, /creating the group onshi-vici and adding onshi to it/);
  for (const f of [CONF, DROPIN, SYSUSERS]) t.equal(statSync(at(f)).mode & 0o777, 0o644, `${f} 0644`);
  const conf = readFileSync(at(CONF), 'utf8');
  t.match(
    conf,
    /charon-systemd \{\n {2}group = onshi-vici\n {2}plugins \{\n {4}vici \{\n {6}socket = unix:\/\/\/run\/strongswan\/charon\.vici/,
  );
  t.match(conf, /swanctl \{\n {2}socket = unix:\/\/\/run\/strongswan\/charon\.vici\n\}/, 'swanctl finds the socket');
  t.match(readFileSync(at(DROPIN), 'utf8'), /\[Service\]\nRuntimeDirectory=strongswan\nRuntimeDirectoryMode=0755\n/);
  t.match(readFileSync(at(SYSUSERS), 'utf8'), /^g onshi-vici -\nm onshi onshi-vici$/m);

  const again = install('--line', 'ipsec');
  t.equal(again.status, 0, again.out);
  t.match(again.out, /nothing changed/, 'a second run changes nothing');

  const ipvpn = install();
  t.equal(ipvpn.status, 0, ipvpn.out);
  for (const f of [CONF, DROPIN, SYSUSERS]) t.notOk(existsSync(at(f)), `ip-vpn removes ${f}`);
  t.notMatch(ipvpn.out, /charon-systemd|strongswan-swanctl/, 'ip-vpn asks for nothing of strongSwan');
});

t.test(
  "the installer's strongSwan file, run by a real charon: group-owned 0770 socket, swanctl finds it",
  async (t) => {
    const missing = await ipsecLabPrerequisites();
    if (missing) {
      if (process.env.CI) t.fail(`strongSwan or namespaces missing: ${missing}`);
      else t.plan(0, missing);
      return;
    }
    if (!existsSync(at(CONF))) install('--line', 'ipsec');
    // mkdtemp, not t.testdir(): charon's VICI socket (a unix socket path is limited to 108 bytes), from a network namespace.
    const dir = mkdtempSync(join(tmpdir(), 'onshi-socket-group-'));
    const ns = `onshi-vicigrp-${process.pid}`;
    let charon: ChildProcess | undefined;
    t.teardown(async () => {
      if (charon && charon.exitCode === null) {
        const gone = new Promise((r) => charon!.once('exit', r));
        charon.kill('SIGTERM');
        await gone;
      }
      spawnSync('ip', ['netns', 'del', ns]);
      rmSync(dir, { recursive: true, force: true });
    });
    // The installed file with the socket moved into our folder and an existing group (daemon) for onshi-vici.
    const socket = join(dir, 'charon.vici');
    const installed = readFileSync(at(CONF), 'utf8')
      .replaceAll('/run/strongswan/charon.vici', socket)
      .replace('group = onshi-vici', 'group = daemon');
    writeFileSync(join(dir, 'onshi-gateway.conf'), installed);
    writeFileSync(
      join(dir, 'strongswan.conf'),
      `charon-systemd {\n  load = ${LAB_PLUGINS.join(' ')}\n}\ninclude ${join(dir, 'onshi-gateway.conf')}\n`,
    );
    const env = { ...process.env, STRONGSWAN_CONF: join(dir, 'strongswan.conf') };
    t.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0, 'a namespace of its own');
    const out = openSync(join(dir, 'charon.out'), 'w');
    charon = spawn('ip', ['netns', 'exec', ns, 'charon-systemd'], { env, stdio: ['ignore', out, out] });
    closeSync(out);
    const until = Date.now() + 15_000;
    while (!existsSync(socket) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    if (!existsSync(socket)) t.comment(`charon said: ${readFileSync(join(dir, 'charon.out'), 'utf8')}`);
    const st = statSync(socket);
    t.ok(st.isSocket(), 'charon made the VICI socket where the file says');
    t.equal(st.mode & 0o777, 0o770, 'mode 0770: the group may connect, others may not');
    t.equal(st.gid, 1, 'owned by the group the file names (daemon here, onshi-vici installed)');
    t.equal(st.uid, 0, 'and by root');
    let stats = spawnSync('swanctl', ['--stats'], { env, encoding: 'utf8' });
    for (let i = 0; stats.status !== 0 && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 250));
      stats = spawnSync('swanctl', ['--stats'], { env, encoding: 'utf8' });
    }
    t.equal(stats.status, 0, `swanctl reaches charon through swanctl.socket: ${stats.stderr}`);
    t.match(stats.stdout, /uptime:/);
  },
);
