/**
 * As a new user would: start the sandbox, list the simulator's people, and check each of them with
 * `onshi inquiry`, all through the real CLI processes (built JavaScript).
 */
import t from 'tap';
import { runOnshi, startSandboxProcess } from '../helpers/sandbox-cli.js';
import { ensurePcscd } from '../helpers/pcscd.js';

t.setTimeout(300_000);

const onshi = runOnshi;

t.test('sandbox → sim people → inquiry: everyone gets the promised validity', async (t) => {
  // The sandbox puts its virtual card in this file's own pcscd.
  if (!(await ensurePcscd(t))) return;
  const { ready } = await startSandboxProcess(t, 'onshi-sandbox-', false);
  t.match(
    ready,
    { ws: /^ws:\/\/127\.0\.0\.1:\d+\/v1$/, token: /^onshi_/, central: /^https:\/\/127\.0\.0\.1:\d+$/ },
    'READY names ws, token and central',
  );

  const people = await onshi(['sim', 'people', '--json', '--control', ready.control!]);
  t.equal(people.code, 0);
  const rows = JSON.parse(people.stdout) as {
    id: string;
    insurerNumber: string;
    symbol: string;
    number: string;
    branch: string;
    birthdate: string;
    expectedValidity: string;
  }[];
  t.ok(rows.length >= 10, `${rows.length} people`);
  for (const key of ['insurerNumber', 'symbol', 'number', 'branch', 'birthdate', 'expectedValidity'])
    t.ok(key in rows[0]!, `rows carry ${key}`);

  const env = { ONSHI_WS: ready.ws!, ONSHI_TOKEN: ready.token! };
  for (const r of rows) {
    const out = await onshi(
      ['inquiry', '--numbers', [r.insurerNumber, r.symbol, r.number, r.branch].join(','), '--birthdate', r.birthdate],
      env,
    );
    t.equal(out.code, 0, `${r.id}: exit 0`);
    t.equal(
      (JSON.parse(out.stdout) as { validity: string }).validity,
      r.expectedValidity,
      `${r.id}: validity ${r.expectedValidity}`,
    );
  }

  const badToken = await onshi(['inquiry', '--numbers', '06139992,テスト,12345,00', '--birthdate', '19800401'], {
    ...env,
    ONSHI_TOKEN: 'onshi_00000000_' + 'x'.repeat(43),
  });
  t.equal(badToken.code, 1, 'a refused token exits non-zero');
  t.match(JSON.parse(badToken.stderr), { error: { code: 'CLIENT_CONNECT_FAILED', message: /401/ } });

  const badInput = await onshi(['inquiry', '--numbers', '06139993,テスト,12345,00', '--birthdate', '19800401'], env);
  t.equal(badInput.code, 1, 'invalid numbers exit non-zero');
  t.match(JSON.parse(badInput.stderr), { error: { code: 'OQS_MESSAGE_INVALID' } });

  const usage = await onshi(['inquiry', '--numbers', '1,2'], env);
  t.equal(usage.code, 2, 'a usage error exits 2');

  // The card: the sandbox put the `normal` virtual card (PIN 1234) in pcscd's virtual reader.
  t.ok(ready.cards, 'READY names the card control (pcscd with vpcd is running)');
  if (!ready.cards) return;
  const cardEnv = { ...env, ONSHI_SIM_CARDS: ready.cards };
  const good = await onshi(['inquiry', '--card'], cardEnv, '1234\n');
  t.equal(good.code, 0, `the card check with the right PIN exits 0 ${good.stderr}`);
  t.match(JSON.parse(good.stdout), { referenceClassification: '1', validity: '1' });
  const wrong = await onshi(['inquiry', '--card'], cardEnv, '9999\n');
  t.equal(wrong.code, 1, 'a wrong PIN exits 1');
  t.match(JSON.parse(wrong.stderr.trim().split('\n').pop()!), {
    error: { code: 'CARD_PIN_WRONG', details: { triesLeft: 2 } },
  });
  const cards = JSON.parse((await onshi(['sim', 'card', 'list'], cardEnv)).stdout) as {
    slot: number;
    authTriesLeft: number;
  }[];
  t.equal(cards.find((c) => c.slot === 0)?.authTriesLeft, 2, 'the wrong PIN used exactly one try');
  const pinArg = await onshi(['inquiry', '--card', '--pin', '1234'], cardEnv);
  t.equal(pinArg.code, 2, 'there is no way to pass a PIN as an argument');

  // An outage, as a new user would try it: cut the line, check by card and by numbers, restore
  // the line, watch the outbox drain and a changed result appear in the reconciliation list.
  t.ok(ready.line, 'READY names the line control');
  const lineEnv = { ...cardEnv, ONSHI_SIM_LINE: ready.line!, ONSHI_SIM_CONTROL: ready.control! };
  t.equal((await onshi(['sim', 'line', 'down'], lineEnv)).code, 0, 'sim line down');
  const p1 = rows.find((r) => r.id === 'P0000001')!;
  const numbersOut = await onshi(
    [
      'inquiry',
      '--numbers',
      [p1.insurerNumber, p1.symbol, p1.number, p1.branch].join(','),
      '--birthdate',
      p1.birthdate,
    ],
    lineEnv,
  );
  t.equal(numbersOut.code, 0, 'a check by numbers during the outage exits 0');
  t.match(
    JSON.parse(numbersOut.stdout),
    { source: 'cache', validity: p1.expectedValidity, recheck: { queued: true } },
    'answered from the cache and queued',
  );
  const cardOut = await onshi(['inquiry', '--card'], lineEnv, '1234\n');
  t.equal(cardOut.code, 0, `a card check during the outage exits 0 ${cardOut.stderr}`);
  t.match(
    JSON.parse(cardOut.stdout),
    { referenceClassification: '1', source: 'cache', recheck: { queued: true } },
    'the PIN proved locally, the answer from the cache',
  );
  t.equal(
    (await onshi(['sim', 'people', 'disqualify', 'P0000001'], lineEnv)).code,
    0,
    'meanwhile P0000001 leaves the insurer at central',
  );
  t.equal((await onshi(['sim', 'line', 'up'], lineEnv)).code, 0, 'sim line up');
  let listed: { changedFields: string[]; after: { name?: string } }[] = [];
  for (let i = 0; i < 100 && listed.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const out = await onshi(['reconciliation', 'list', '--json'], lineEnv);
    if (out.code === 0) listed = JSON.parse(out.stdout) as typeof listed;
  }
  t.equal(listed.length, 1, 'one changed result in the reconciliation list');
  t.same(listed[0]?.changedFields, ['validity']);
  const text = await onshi(['reconciliation', 'list'], lineEnv);
  t.match(text.stdout, /#1 .* → now: /, 'readable for staff');
});
