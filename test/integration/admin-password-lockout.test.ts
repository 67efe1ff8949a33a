/**
 * The admin page's password form honours the login lockout (issue 18, item 3): after enough wrong
 * logins from an address, its password form refuses with the login's message, right password or not.
 */
import t from 'tap';
import { request } from 'node:https';
import { AdminAccounts, AdminServer, createAdminBackend } from '../../src/admin/index.js';
import { ClientStore } from '../../src/api/tokens.js';
import { validateConfig } from '../../src/core/config.js';
import type { GatewayStatus } from '../../src/ops/status.js';
import { loadOrCreateTlsIdentity } from '../../src/ops/tls-identity.js';
import { silentLogger } from '../helpers/logger.js';

interface Reply {
  status: number;
  body: string;
  cookies: Record<string, string>;
}

function call(port: number, method: string, path: string, cookies: Record<string, string>, form?: object) {
  const body = form ? new URLSearchParams(form as Record<string, string>).toString() : '';
  return new Promise<Reply>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        rejectUnauthorized: false, // the gateway's own certificate; this test is about the form, not TLS
        headers: {
          cookie: Object.entries(cookies)
            .map(([k, v]) => `${k}=${v}`)
            .join('; '),
          ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => {
          const set: Record<string, string> = {};
          for (const c of res.headers['set-cookie'] ?? []) {
            const m = /^([^=]+)=([^;]*)/.exec(c);
            if (m) set[m[1]!] = m[2]!;
          }
          resolve({ status: res.statusCode!, body: text, cookies: set });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const csrfOf = (html: string): string => /name="_csrf" value="([^"]*)"/.exec(html)![1]!;

t.test('after the login lockout the password form refuses, with the login message', async (t) => {
  const dir = t.testdir();
  const tls = loadOrCreateTlsIdentity({ stateDir: dir, machineName: 'gw-test' });
  const accounts = new AdminAccounts(dir);
  const secret = (await accounts.ensureInitialized())!.secret!;
  const server = await AdminServer.start({
    host: '127.0.0.1',
    port: 0,
    tls,
    backend: createAdminBackend({
      status: { status: () => ({}) as GatewayStatus },
      clients: new ClientStore(dir),
      configFile: `${dir}/config.json`,
      stateDir: dir,
      config: validateConfig({ stateDir: dir }),
    }),
    accounts,
    logger: silentLogger(),
    sessionIdleMs: 600_000,
    sessionMaxMs: 3_600_000,
    loginMaxFailures: 3,
    loginLockoutMs: 60_000,
    liveIntervalMs: 60_000,
  });
  t.teardown(() => server.close());
  const port = server.port;

  const loginPage = await call(port, 'GET', '/login', {});
  const login = (password: string) =>
    call(port, 'POST', '/login', loginPage.cookies, { _csrf: csrfOf(loginPage.body), user: 'admin', password });
  const ok = await login(secret);
  t.equal(ok.status, 303, 'the first login works');
  const jar = ok.cookies; // the session
  const form = await call(port, 'GET', '/password', jar);
  t.equal(form.status, 200);
  const csrf = csrfOf(form.body);

  for (let i = 0; i < 3; i++) t.equal((await login(`wrong-${i}`)).status, 401);
  t.equal((await login(secret)).status, 429, 'the login is locked');

  const change = await call(port, 'POST', '/password', jar, {
    _csrf: csrf,
    current: secret,
    next: 'correct horse battery',
    confirm: 'correct horse battery',
  });
  t.equal(change.status, 429, 'the password form is locked too, even with the right current password');
  t.match(change.body, /\d+秒間ログインできません/, "the login's message");
  t.ok(await accounts.verify('admin', secret), 'the password did not change');
});
