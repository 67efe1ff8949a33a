/** The docs' examples name the fields the gateway really sends (issue 18, item 7). */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { STATUS_SCHEMA } from '../../src/protocol/status.js';

t.test("docs/api.md: the status example's api fields are the wire's", async (t) => {
  const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
  const example = /"api": (\{[^}]*\})/.exec(doc.slice(doc.indexOf('### `status` → `status`')));
  t.ok(example, 'the status example shows api');
  const documented = Object.keys(JSON.parse(example![1]!));
  const wire = Object.keys(STATUS_SCHEMA.properties.api.properties);
  t.same(
    documented.filter((k) => !wire.includes(k)),
    [],
    `every documented field is on the wire (${wire.join(', ')})`,
  );
  t.ok(documented.includes('connections'), 'connections is documented');
});
