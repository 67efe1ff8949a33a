/**
 * scripts/install.sh --root DIR: the tree an install writes (unit, sysusers, tmpfiles, polkit rule,
 * the app in /opt with production dependencies only, a config the gateway itself accepts, secrets
 * with private modes), that a second run changes nothing and says so, that the config is never
 * overwritten, that the installed copy runs, and that --uninstall removes what it installed but
 * keeps config and state (--purge removes those too).
 *
 * Uses the build already in the checkout (--no-build): scripts/test.sh builds before the tests.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/core/config.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const INSTALL = join(REPO, 'scripts/install.sh');

if (!existsSync(join(REPO, 'dist/cli/index.js'))) {
  const b = spawnSync('npm', ['run', '--silent', 'build'], { cwd: REPO, encoding: 'utf8' });
  if (b.status !== 0) t.fail(`the build is missing and npm run build failed:\n${b.stdout}${b.stderr}`);
}

// Four installs and three uninstalls, each copying the app: more than the default 120 s on a busy CI box.
t.setTimeout(300_000);

// mkdtemp, not t.testdir(): the installer makes root-owned files for other users in it, kept out of the repository.
const root = mkdtempSync(join(tmpdir(), 'onshi-install-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

const install = (...args: string[]) => {
  const r = spawnSync('bash', [INSTALL, ...args], { encoding: 'utf8', timeout: 110_000, env: { ...process.env } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
};
const at = (p: string) => join(root, p);
const mode = (p: string) => statSync(at(p)).mode & 0o777;

/** path → mode + content hash (or link target) for every entry under dir. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const p = join(rel, name);
      const st = lstatSync(join(dir, p));
      if (st.isSymbolicLink()) out.set(p, `link ${readlinkSync(join(dir, p))}`);
      else if (st.isDirectory()) {
        out.set(p, `dir ${(st.mode & 0o7777).toString(8)}`);
        walk(p);
      } else
        out.set(
          p,
          `${(st.mode & 0o7777).toString(8)} ${createHash('sha256')
            .update(readFileSync(join(dir, p)))
            .digest('hex')}`,
        );
    }
  };
  walk('');
  return out;
}

let first: { status: number | null; out: string };
t.before(() => {
  first = install('--root', root, '--no-build');
});

t.test('the script parses (bash -n)', async (t) => {
  const r = spawnSync('bash', ['-n', INSTALL], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
});

t.test('--help and a wrong option', async (t) => {
  const help = install('--help');
  t.equal(help.status, 0);
  t.match(help.out, /--root DIR/);
  t.match(help.out, /--uninstall/);
  const bad = install('--frobnicate');
  t.not(bad.status, 0);
  t.match(bad.out, /unknown option --frobnicate/);
  t.not(install('--purge', '--root', root).status, 0, '--purge only with --uninstall');
});

t.test('the first run writes the whole tree and says what it skipped', async (t) => {
  t.equal(first.status, 0, first.out);
  t.match(first.out, /skipped outside a real install/);
  t.match(first.out, /apt packages/);
  t.match(first.out, /creating the system user onshi/);
  t.match(first.out, /systemctl/);
  t.match(first.out, /admin page: https:\/\/\S+:8443\/ {2}\(log in as admin with the initial secret/);
  t.match(first.out, /still needed .*central-client\.key central-client\.pem central-ca\.pem/);

  for (const [installed, source] of [
    ['etc/systemd/system/onshi-gateway.service', 'systemd/onshi-gateway.service'],
    ['etc/sysusers.d/onshi-gateway.conf', 'systemd/onshi-gateway.sysusers'],
    ['etc/tmpfiles.d/onshi-gateway.conf', 'systemd/onshi-gateway.tmpfiles'],
    ['etc/polkit-1/rules.d/50-onshi-gateway-pcscd.rules', 'systemd/50-onshi-gateway-pcscd.rules'],
  ] as const) {
    t.equal(readFileSync(at(installed), 'utf8'), readFileSync(join(REPO, source), 'utf8'), `${installed} is ${source}`);
    t.equal(mode(installed), 0o644, `${installed} is 0644`);
  }
  t.ok(existsSync(at('opt/onshi-gateway/bin/onshi.js')), 'bin/onshi.js');
  t.ok(existsSync(at('opt/onshi-gateway/dist/cli/index.js')), 'dist/cli/index.js');
  t.ok(existsSync(at('opt/onshi-gateway/package.json')), 'package.json');
  t.ok(existsSync(at('opt/onshi-gateway/node_modules/ws/package.json')), 'production dependencies are there');
  t.ok(existsSync(at('opt/onshi-gateway/node_modules/better-sqlite3/package.json')), 'native ones too');
  t.notOk(existsSync(at('opt/onshi-gateway/node_modules/tap')), 'dev dependencies are pruned (tap)');
  t.notOk(existsSync(at('opt/onshi-gateway/node_modules/typescript')), 'dev dependencies are pruned (typescript)');
  t.notOk(existsSync(at('opt/.onshi-gateway.new')), 'no staging leftovers');

  t.equal(mode('etc/onshi-gateway/credentials'), 0o700, 'credentials dir 0700');
  t.equal(mode('etc/onshi-gateway/credentials/cache.key'), 0o600, 'cache.key 0600');
  t.match(
    readFileSync(at('etc/onshi-gateway/credentials/cache.key'), 'utf8'),
    /^[0-9a-f]{64}\n$/,
    'a 256-bit key in hex',
  );
  t.equal(mode('etc/onshi-gateway/credentials/admin-initial-secret'), 0o600, 'admin secret 0600');
  const secret = readFileSync(at('etc/onshi-gateway/credentials/admin-initial-secret'), 'utf8').trim();
  t.ok(secret.length >= 20, 'a long random secret');
  t.ok(first.out.includes(`initial admin secret: ${secret}`), 'printed once, the first time');
  t.equal(mode('var/lib/onshi-gateway'), 0o700, 'state dir 0700');
  t.equal(mode('etc/onshi-gateway/config.json'), 0o644, 'config readable by the service, holds no secrets');
});

t.test("the config passes the gateway's own validation", async (t) => {
  const config = loadConfig({ file: at('etc/onshi-gateway/config.json'), explicit: true, env: {} });
  t.equal(config.stateDir, '/var/lib/onshi-gateway');
  t.equal(config.central.keyFile, '', 'keys come from systemd credentials');
});

t.test('the installed copy runs', async (t) => {
  const r = spawnSync(process.execPath, [at('opt/onshi-gateway/bin/onshi.js'), '--help'], {
    encoding: 'utf8',
    cwd: root,
  });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /usage: onshi <command>/);
});

t.test('a second run changes nothing and says so', async (t) => {
  const before = snapshot(root);
  const again = install('--root', root, '--no-build');
  t.equal(again.status, 0, again.out);
  t.match(again.out, /nothing changed/);
  t.notMatch(again.out, /^install: (installed|updated|created|mode) \//m);
  t.match(again.out, /initial admin secret: unchanged/);
  t.same(snapshot(root), before, 'same files, same modes, same hashes');
});

t.test('an existing config is never overwritten', async (t) => {
  const file = at('etc/onshi-gateway/config.json');
  const mine =
    JSON.stringify({ stateDir: '/var/lib/onshi-gateway', institutionCode: '1319999996', log: { level: 'debug' } }) +
    '\n';
  writeFileSync(file, mine);
  const again = install('--root', root, '--no-build');
  t.equal(again.status, 0, again.out);
  t.equal(readFileSync(file, 'utf8'), mine);
});

t.test('--uninstall removes what it installed and keeps config and state; --purge removes them', async (t) => {
  const u = install('--root', root, '--uninstall');
  t.equal(u.status, 0, u.out);
  for (const p of [
    'opt/onshi-gateway',
    'etc/systemd/system/onshi-gateway.service',
    'etc/polkit-1/rules.d/50-onshi-gateway-pcscd.rules',
    'etc/sysusers.d/onshi-gateway.conf',
    'etc/tmpfiles.d/onshi-gateway.conf',
  ]) {
    t.notOk(existsSync(at(p)), `removed ${p}`);
  }
  for (const p of [
    'etc/onshi-gateway/config.json',
    'etc/onshi-gateway/credentials/cache.key',
    'var/lib/onshi-gateway',
  ]) {
    t.ok(existsSync(at(p)), `kept ${p}`);
  }
  t.match(u.out, /kept \/etc\/onshi-gateway/);
  const twice = install('--root', root, '--uninstall');
  t.equal(twice.status, 0, twice.out);
  t.match(twice.out, /nothing changed/);

  const p = install('--root', root, '--uninstall', '--purge');
  t.equal(p.status, 0, p.out);
  t.notOk(existsSync(at('etc/onshi-gateway')), 'config and credentials purged');
  t.notOk(existsSync(at('var/lib/onshi-gateway')), 'state purged');
});
