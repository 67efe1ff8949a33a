import t from 'tap';
import { validateConfig } from '../../src/core/config.js';
import { changedSettings, withoutDefaults } from '../../src/admin/settings-diff.js';

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
