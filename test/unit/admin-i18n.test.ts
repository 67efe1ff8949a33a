import t from 'tap';
import { configLeaves, validateConfig } from '../../src/core/config.js';
import { isOnshiError } from '../../src/core/errors.js';
import { auditActionText, auditTargetText, configProblemJa, errorText } from '../../src/admin/messages-ja.js';
import { SETTING_GROUPS_JA, SETTING_LABELS_JA, settingText } from '../../src/admin/settings-labels.js';
import { fmtSkew } from '../../src/admin/views.js';
import { reconciliationItem } from '../../src/admin/store-views.js';
import { attentionItems } from '../../src/admin/attention.js';

t.test('every setting has a Japanese label and explanation, and every section a heading', async (t) => {
  const paths = configLeaves().map((l) => l.path.join('.'));
  t.same(
    paths.filter((p) => !SETTING_LABELS_JA[p]?.[0] || !SETTING_LABELS_JA[p]?.[1]),
    [],
    'settings without Japanese',
  );
  t.same(
    Object.keys(SETTING_LABELS_JA).filter((p) => !paths.includes(p)),
    [],
    'no label for a setting that does not exist',
  );
  const sections = new Set(configLeaves().map((l) => (l.path.length > 1 ? l.path[0]! : '')));
  t.same(
    [...sections].filter((s) => !SETTING_GROUPS_JA[s]),
    [],
  );
  t.same(settingText('en', 'api.port', 'WebSocket API port'), { label: 'api.port', help: 'WebSocket API port' });
});

t.test('config problems in Japanese name the setting by its label', async (t) => {
  const problems = (input: unknown): string[] => {
    try {
      validateConfig(input);
      return [];
    } catch (e) {
      if (!isOnshiError(e, 'CONFIG_INVALID')) throw e;
      return e.details.problems as string[];
    }
  };
  t.same(problems({ api: { port: 99999 } }).map(configProblemJa), ['「ポート番号」は65535以下にしてください']);
  t.same(problems({ api: { port: 'x' } }).map(configProblemJa), ['「ポート番号」は整数にしてください']);
  t.same(problems({ api: { colour: 1 } }).map(configProblemJa), ['「api.colour」という設定はありません']);
  t.match(
    problems({ log: { level: 'loud' } }).map(configProblemJa)[0],
    /^「ログの詳しさ」は次のいずれかにしてください/,
  );
  t.match(problems({ institutionCode: '12' }).map(configProblemJa)[0], /形式が正しくありません/);
  t.equal(configProblemJa('something odd'), '「something」の値が正しくありません');
});

t.test('errors, audit actions and reasons by code', async (t) => {
  t.equal(
    errorText('ja', { code: 'BACKUP_PASSPHRASE_WRONG', message: 'wrong passphrase' }),
    'パスフレーズが違うか、バックアップが改変されています。',
  );
  t.equal(errorText('en', { code: 'BACKUP_PASSPHRASE_WRONG', message: 'wrong passphrase' }), 'wrong passphrase');
  t.equal(errorText('ja', { code: 'SOMETHING_NEW', message: 'new' }), 'new', 'an unknown code keeps its text');
  t.equal(auditActionText('ja', 'inquiry.numbers'), '資格確認（番号）');
  t.equal(auditActionText('en', 'inquiry.numbers'), 'inquiry.numbers');
  t.equal(auditTargetText('ja', 'password.too_simple'), '単純すぎる');
  t.equal(auditTargetText('ja', '受付1 (b67fc45a)'), '受付1 (b67fc45a)', 'names stay');
});

t.test('the clock skew is shown sensibly', async (t) => {
  t.equal(fmtSkew(-0.4, 'ja'), '±0秒');
  t.equal(fmtSkew(300, 'ja'), '+0.3秒');
  t.equal(fmtSkew(-2500, 'en'), '-2.5 s');
  t.equal(fmtSkew(-600_000, 'ja'), '-10分');
});

t.test('reconciliation items name the patient from the answers; alerts say what to do', async (t) => {
  const item = reconciliationItem({
    id: 3,
    outboxId: 9,
    createdAt: new Date('2026-12-01T10:00:00Z'),
    changedFields: ['validity'],
    before: {
      kind: 'numbers',
      clientId: 'b67fc45a',
      checkedAt: '2026-12-01T09:00:00.000Z',
      told: { source: 'cache', validityLabel: '有効', name: '山田 花子', insurances: [] },
    },
    after: {
      source: 'central',
      validityLabel: '無効',
      name: '山田 花子',
      birthdate: '1980-04-01',
      insurances: [{ insurerNumber: '06130011', symbol: '12', number: '345' }],
    },
  } as unknown as Parameters<typeof reconciliationItem>[0]);
  t.same(item.patient, {
    name: '山田 花子',
    birthdate: '1980-04-01',
    insurerNumber: '06130011',
    symbolNumber: '12・345',
  });
  t.equal(item.client, 'b67fc45a');
  t.equal(`${item.before} → ${item.after}`, '有効 → 無効');

  const now = new Date('2026-12-01T00:00:00Z');
  const items = attentionItems(
    {
      now: now.toISOString(),
      certificates: [{ name: 'central-client', notAfter: new Date(now.getTime() + 10 * 86_400_000).toISOString() }],
      alerts: [
        { code: 'STORE_KEY_CREATED', message: 'a new cache key' },
        { code: 'SOMETHING_NEW', message: 'new thing' },
      ],
      reconciliation: { open: 2 },
    } as unknown as Parameters<typeof attentionItems>[0],
    'ja',
  );
  t.same(
    items.map((a) => [a.tone, a.text]),
    [
      ['warn', '再照会で結果が変わった確認が2件あります。'],
      ['warn', 'キャッシュの暗号鍵を新しく作りました。'],
      ['warn', 'new thing'],
      ['bad', '中央向けクライアント証明書の有効期限まであと10日です。'],
    ],
  );
  t.ok(
    items.every((a) => a.todo.length > 0),
    'each says what to do',
  );
});
