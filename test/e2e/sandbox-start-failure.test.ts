/**
 * A sandbox whose gateway never becomes ready gives up with a clear error and leaves nothing
 * running: the central simulator, the line proxy and its control are closed and the gateway
 * process is gone before startSandbox rejects — so `onshi sandbox` exits instead of hanging.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSandbox } from '../../src/sim/sandbox.js';
import { seedCardDir } from '../helpers/card-dir.js';
import { waitFor } from '../helpers/gateway.js';

const count = (kind: string): number => process.getActiveResourcesInfo().filter((r) => r === kind).length;

t.test('the gateway misses READY: a typed refusal, and every part started is stopped', async (t) => {
  const state = await seedCardDir(mkdtempSync(join(tmpdir(), 'onshi-sandbox-fail-')));
  const servers = count('TCPServerWrap');
  const processes = count('ProcessWrap');
  process.env.ONSHI_SANDBOX_READY_MS = '1';
  t.teardown(() => {
    delete process.env.ONSHI_SANDBOX_READY_MS;
  });
  await t.rejects(startSandbox({ stateDir: state, portBase: 0, card: false }), {
    message: /did not become ready within 0\.001 s/,
  });
  // Central, its control port, the line proxy and the line's control had listened meanwhile; their
  // handles finish closing within a turn or two of the loop.
  await waitFor(() => count('TCPServerWrap') === servers, 'no server left listening', 5000);
  await waitFor(() => count('ProcessWrap') === processes, 'the gateway process gone', 5000);
  t.pass('nothing left running');
});
