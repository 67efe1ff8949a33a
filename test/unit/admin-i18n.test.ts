import t from 'tap';
import { configLeaves, validateConfig } from '../../src/core/config.js';
import { isOnshiError } from '../../src/core/errors.js';
import { auditActionText, auditTargetText, configProblemJa, errorText } from '../../src/admin/messages-ja.js';
import { SETTING_GROUPS_JA, SETTING_LABELS_JA, settingText } from '../../src/admin/settings-labels.js';
import { fmtSkew } from '../../src/admin/views.js';

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
