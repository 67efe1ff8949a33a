import t from 'tap';
import { validateConfig } from '../../src/core/config.js';
import { changedSettings, settingChanges, withoutDefaults } from '../../src/admin/settings-diff.js';
import { lockoutWarning, settingsReviewPage } from '../../src/admin/views.js';

t.test('saving keeps only what differs from the defaults', async (t) => {
  t.same(withoutDefaults(validateConfig({})), {}, 'all defaults: an empty file');
  const c = validateConfig({
    api: { port: 9100, host: '127.0.0.1' },
    tls: { hostnames: ['gw'] },
    reader: { enabled: false },
  });
  t.same(withoutDefaults(c), { api: { port: 9100 }, tls: { hostnames: ['gw'] }, reader: { enabled: false } });
  t.same(changedSettings(validateConfig({}), c), ['api.port', 'reader.enabled', 'tls.hostnames']);
});

t.test('the review before saving: each change now → new, the ones that can lock staff out said so', async (t) => {
  const before = validateConfig({ log: { level: 'debug' } });
  const after = validateConfig({ admin: { enabled: false, port: 9443 }, kiosk: { port: 9444 } });
  const changes = settingChanges(before, after);
  t.same(
    changes.map((c) => [c.name, c.before, c.after, c.lockout]),
    [
      ['log.level', 'debug', 'info', false],
      ['admin.enabled', true, false, true],
      ['admin.port', 8443, 9443, true],
      ['kiosk.port', validateConfig({}).kiosk.port, 9444, true],
    ],
  );
  const ctx = { lang: 'ja' as const, path: '/settings' };
  const said = changes.map((c) => lockoutWarning(ctx, c, after)?.text);
  t.equal(said[0], undefined, 'the log level is harmless');
  t.match(said[1], /この管理画面が使えなくなります/);
  t.match(said[2], /<code>https:\/\/127\.0\.0\.1:9443\/<\/code>/, 'the new address, as code');
  t.match(said[3], /キオスク/);
  t.equal(
    lockoutWarning(ctx, { name: 'admin.enabled', before: false, after: true, lockout: true }, after),
    undefined,
    'turning the page on locks nobody out',
  );
  const page = settingsReviewPage(ctx, changes, new URLSearchParams({ _csrf: 'x', 'log.level': 'info' }), after);
  t.match(page, /<input type="hidden" name="log.level" value="info">/, 'the values ride along');
  t.notMatch(page, /name="_csrf" value="x"/, 'the old token is not repeated');
});
