// The sandbox's gateway supervisor with real child processes: a killed daemon is named by its
// signal and started again after the back-off; stop() ends the supervision.
import { spawn, type ChildProcess } from 'node:child_process';
import t from 'tap';
import { describeExit, superviseGateway } from '../../src/sim/supervise.js';

const idle = (): ChildProcess => spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
const until = async (what: string, ok: () => boolean, ceilingMs = 20_000): Promise<void> => {
  const end = Date.now() + ceilingMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

t.test('describeExit names a signal or an exit code', async (t) => {
  t.equal(describeExit(null, 'SIGKILL'), 'was killed by SIGKILL');
  t.equal(describeExit(1, null), 'exited with code 1');
});

t.test('a killed gateway is named, restarted after the back-off, and supervision stops on request', async (t) => {
  const lines: string[] = [];
  const children: ChildProcess[] = [idle()];
  t.teardown(() => {
    for (const c of children) c.kill('SIGKILL');
  });
  const sup = superviseGateway({
    first: children[0]!,
    restart: async () => {
      const c = idle();
      children.push(c);
      return c;
    },
    warn: (l) => lines.push(l),
    baseMs: 50,
    capMs: 400,
  });
  children[0]!.kill('SIGKILL');
  await until('the first restart', () => sup.restarts === 1);
  t.match(lines[0], /the gateway was killed by SIGKILL; the simulators stay up, restarting it in 0\.05 s/);
  t.not(sup.current.pid, children[0]!.pid, 'a new process');

  // Dying again at once: the delay doubles.
  sup.current.kill('SIGTERM');
  await until('the second restart', () => sup.restarts === 2);
  t.match(
    lines.find((l) => l.includes('SIGTERM')),
    /restarting it in 0\.1 s/,
  );

  sup.stop();
  const last = sup.current;
  last.kill('SIGKILL');
  await new Promise((r) => last.once('exit', r));
  await new Promise((r) => setTimeout(r, 300));
  t.equal(sup.restarts, 2, 'no restart after stop()');
  t.equal(children.length, 3);
});

t.test('a restart that fails is tried again later, with the reason', async (t) => {
  const lines: string[] = [];
  const first = idle();
  let attempts = 0;
  const started: ChildProcess[] = [];
  t.teardown(() => {
    for (const c of [first, ...started]) c.kill('SIGKILL');
  });
  const sup = superviseGateway({
    first,
    restart: async () => {
      if (++attempts < 3) throw new Error('the gateway exited with 1 before it was ready');
      const c = idle();
      started.push(c);
      return c;
    },
    warn: (l) => lines.push(l),
    baseMs: 20,
    capMs: 200,
  });
  first.kill('SIGKILL');
  await until('the third attempt', () => sup.restarts === 1);
  sup.stop();
  t.equal(attempts, 3);
  t.equal(lines.filter((l) => l.includes('did not start again')).length, 2);
});
