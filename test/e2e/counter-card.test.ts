/**
 * End to end for the card side of issue #5, as a new user would run it: the sandbox (real gateway
 * daemon process, real pcscd + the virtual card, central simulator over mutual TLS) and the real
 * `onshi` CLI — consent flags carried to central and echoed, certificates 1 and 4 months past
 * expiry, and a card linked at central to another person's record. Uses pcscd: run under
 * `flock /tmp/onshi-card.lock`.
 */
import t from 'tap';
import type { InquiryResult } from '../../src/checks/result.js';
import { ensurePcscd } from '../helpers/pcscd.js';
import { startSandboxCli, type SandboxCli } from '../helpers/sandbox-cli.js';

t.setTimeout(300_000);

let s: SandboxCli | undefined;
t.before(async () => {
  if (!(await ensurePcscd(t))) return;
  s = await startSandboxCli({ card: true });
});
t.teardown(() => s?.close());

/** Puts the profile's card in the sandbox's reader (fresh counters), then checks it with PIN 1234. */
async function cardCheck(
  profile: string,
  args: string[] = [],
): Promise<{
  code: number;
  result?: InquiryResult;
  error?: { code: string; message: string; details?: Record<string, unknown> };
}> {
  const inserted = await s!.onshi(['sim', 'card', 'insert', '--profile', profile, '--reset']);
  if (inserted.code !== 0) throw new Error(`card insert failed: ${inserted.stderr}`);
  await new Promise((r) => setTimeout(r, 1500)); // pcscd polls the virtual reader
  const out = await s!.onshi(['inquiry', '--card', ...args], '1234\n');
  if (out.code === 0) return { code: 0, result: JSON.parse(out.stdout) as InquiryResult };
  // stderr holds the progress lines first ("onshi: waiting for card"), then the typed error as JSON.
  const json =
    out.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop() ?? '{}';
  return { code: out.code, error: (JSON.parse(json) as { error: { code: string; message: string } }).error };
}

t.test('consent flags are carried to central with the card and echoed', async (t) => {
  if (!s) return;
  const { code, result } = await cardCheck('normal', ['--consent', 'medication,treatment', '--limit-consent']);
  t.equal(code, 0);
  t.match(result, { referenceClassification: '1', validity: '1' });
  t.same(result!.consent!.requested, {
    medication: true,
    healthCheck: false,
    treatment: true,
    surgery: false,
    limit: true,
  });
  t.same([...result!.consent!.sentToCentral].sort(), ['healthCheck', 'limit', 'medication', 'surgery', 'treatment']);
  t.same(
    result!.consent!.answered,
    { medication: '1', healthCheck: '0', treatment: '1', surgery: '0', limit: '1' },
    'central answered each flag as sent',
  );
  t.match(result!.results[0]!.consents, {
    PharmacistsInfo: { flag: '1', time: /^\d{14}$/ },
    DiagnosisInfo: { flag: '1' },
    SpecificHealthCheckupsInfo: { flag: '0' },
  });
});

t.test(
  "certificate 1 month past expiry: works, with a warning to renew and central's notice as a notice",
  async (t) => {
    if (!s) return;
    const { code, result } = await cardCheck('expired-recent');
    t.equal(code, 0, 'answered');
    t.equal(result!.validity, '1');
    t.match(result!.warnings, [
      { code: 'CARD_CERT_EXPIRED_GRACE', message: /renew/, details: { validTo: String, graceEnd: String } },
    ]);
    t.match(result!.notices, [/SIM-W-CERT-EXPIRED/], 'the ProcessingResultCode on success is a notice, not an error');
    t.equal(result!.status, '1');
  },
);

t.test('certificate 4 months past expiry: refused, with the alternatives', async (t) => {
  if (!s) return;
  const { code, error } = await cardCheck('expired-old');
  t.equal(code, 1);
  t.equal(error!.code, 'CARD_CERT_EXPIRED');
  t.match(error!.message, /資格確認書/);
  t.match(error!.message, /マイナポータル/);
  t.match(
    error!.details,
    { alternatives: ['資格確認書', /マイナポータル/] },
    'the alternatives as data, for the receipt computer to show',
  );
});

t.test("a misregistered card: central's record disagrees with the holder the receipt computer knows", async (t) => {
  if (!s) return;
  const known = ['--known-birthdate', '19700106', '--known-kana', 'カード ロクロウ', '--known-sex', '1'];
  const { code, result } = await cardCheck('misregistered', [
    ...known,
    '--consent',
    'medication,healthCheck,treatment',
  ]);
  t.equal(code, 0, 'central answered');
  t.equal(result!.possibleMisregistration, true, 'flagged as a possible registration error');
  t.match(result!.knownFacts, {
    compared: ['birthdate', 'nameKana', 'sex'],
    mismatched: ['birthdate', 'nameKana', 'sex'],
  });
  t.match(result!.warnings, [{ code: 'POSSIBLE_MISREGISTRATION', message: /紐付け誤り/ }]);
  t.match(result!.consent, { withheld: { reason: 'POSSIBLE_MISREGISTRATION' } });
  const consents = result!.results[0]!.consents;
  for (const block of ['PharmacistsInfo', 'SpecificHealthCheckupsInfo', 'DiagnosisInfo', 'OperationInfo'])
    t.notOk(block in consents, `${block} is not passed on`);

  const holder = await cardCheck('normal', [
    '--known-birthdate',
    '19700101',
    '--known-kana',
    'ｶｰﾄﾞ ｲﾁﾛｳ',
    '--known-sex',
    '1',
    '--consent',
    'medication',
  ]);
  t.equal(holder.result!.possibleMisregistration, false, 'the right card for the right patient is not flagged');
  t.match(holder.result!.results[0]!.consents, { PharmacistsInfo: { flag: '1' } });
});
