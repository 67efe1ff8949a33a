/**
 * Japanese for the texts other parts of the gateway give in English: config validation problems,
 * backup and client errors by code, audit actions and outcomes, recheck and batch states, status
 * check names. The page translates at the edge; the codes and the English stay as they are for the
 * logs, the CLI and the docs.
 */
import { SETTING_LABELS_JA } from './settings-labels.js';

const settingName = (path: string): string => {
  const ja = SETTING_LABELS_JA[path];
  return ja ? `「${ja[0]}」` : `「${path}」`;
};

/** One config problem as validateConfig words it ("api.port must be <= 65535") in Japanese. */
export function configProblemJa(problem: string): string {
  const m = /^(\S+) (.*?)(?: \(from (.*)\))?$/.exec(problem);
  if (!m) return `設定の値が正しくありません（${problem}）`;
  const [, path, why, origin] = m as unknown as [string, string, string, string | undefined];
  const who = settingName(path);
  const from = origin ? `（${origin.replace(/^environment /, '環境変数 ')}で指定）` : '';
  const rules: [RegExp, (...g: string[]) => string][] = [
    [/^must be <= (\S+)$/, (n) => `${n}以下にしてください`],
    [/^must be >= (\S+)$/, (n) => `${n}以上にしてください`],
    [/^must be < (\S+)$/, (n) => `${n}未満にしてください`],
    [/^must be > (\S+)$/, (n) => `${n}より大きくしてください`],
    [/^must be integer$/, () => '整数にしてください'],
    [/^must be number$/, () => '数値にしてください'],
    [/^must be boolean$/, () => 'はい・いいえで指定してください'],
    [/^must be string$/, () => '文字列にしてください'],
    [/^must be array$/, () => 'カンマ区切りの一覧にしてください'],
    [/^must match pattern/, () => '形式が正しくありません'],
    [/^must NOT have fewer than (\d+) characters$/, (n) => `${n}文字以上にしてください`],
    [/^must NOT have more than (\d+) characters$/, (n) => `${n}文字以内にしてください`],
    [/^must NOT have more than (\d+) items$/, (n) => `${n}個以内にしてください`],
    [/^must NOT have duplicate items/, () => '同じ値が重複しています'],
    [/^must be one of (.*)$/, (v) => `次のいずれかにしてください: ${v}`],
    [/^is not a known setting$/, () => 'という設定はありません'],
  ];
  for (const [re, say] of rules) {
    const g = re.exec(why);
    if (g) return `${who}${why === 'is not a known setting' ? '' : 'は'}${say(...g.slice(1))}${from}`;
  }
  return `${who}の値が正しくありません${from}`;
}

/** Errors the page passes on by code: what staff should know and do, in Japanese. */
export const ERROR_JA: Record<string, string> = {
  BACKUP_PASSPHRASE_WEAK: 'パスフレーズは8文字以上にしてください。',
  BACKUP_PASSPHRASE_WRONG: 'パスフレーズが違うか、バックアップが改変されています。',
  BACKUP_PASSPHRASE_REQUIRED: 'このバックアップは暗号化されています。パスフレーズを入力してください。',
  BACKUP_CORRUPT: 'このゲートウェイのバックアップファイルではないか、壊れています。',
  BACKUP_NO_FILE: 'バックアップファイルを選んでください。',
  CLIENT_NAME_INVALID: '名前は1〜64文字の文字、数字、空白、「.」「-」「_」で付けてください（空白だけは不可）。',
  CLIENT_NAME_TAKEN: 'この名前の接続はすでにあります。別の名前にしてください。',
  CLIENT_SCOPE_INVALID: '権限を一覧から1つ以上選んでください。',
  CLIENT_NOT_FOUND: 'この接続は見つかりません。',
  ADMIN_SETTINGS_READONLY: '設定ファイルに書き込めません。root で編集し、ゲートウェイを再起動してください。',
};

/** The message a page in `lang` shows for an error: the Japanese for its code, else its own text. */
export function errorText(lang: 'ja' | 'en', e: { code?: string; message: string }): string {
  return (lang === 'ja' && e.code && ERROR_JA[e.code]) || e.message;
}

const ACTION_JA: Record<string, string> = {
  login: 'ログイン',
  logout: 'ログアウト',
  'password.change': 'パスワード変更',
  'reconciliation.handled': '差異を対応済みに',
  'client.add': 'レセコン接続の追加',
  'client.revoke': 'レセコン接続の無効化',
  'settings.save': '設定の保存',
  'backup.create': 'バックアップ作成',
  'backup.restore': 'バックアップから復元',
  'support.bundle': 'サポート情報のダウンロード',
  'gateway.restart': 'ゲートウェイの再起動',
  'gateway.start': 'ゲートウェイ起動',
  'gateway.stop': 'ゲートウェイ停止',
  'store.alert': 'データベースの警告',
  'cert.warning': '証明書の期限が近い',
  'line.state.up': '回線: 接続',
  'line.state.degraded': '回線: 不安定',
  'line.state.down': '回線: 切断',
  'line.tunnel.up': 'トンネル確立',
  'line.tunnel.down': 'トンネル切断',
  'inquiry.numbers': '資格確認（番号）',
  'inquiry.card': '資格確認（カード）',
  'inquiry.batch': '一括照会',
  'token.add': 'レセコン接続の追加',
  'token.revoke': 'レセコン接続の無効化',
};

/** Details the store keeps beside an action (mode, source, outcome codes). */
const DETAIL_JA: Record<string, string> = {
  numbers: '番号',
  card: 'カード',
  'card-visual': 'カード（目視確認）',
  pin: '暗証番号',
  visual: '目視',
  central: '中央',
  cache: 'キャッシュ',
  none: '回答なし',
  csrf: '不正なフォーム',
  'rate-limited': '試行回数の制限',
  encrypted: '暗号化あり',
  plain: '暗号化なし',
  'validity:1': '有効',
  'validity:2': '無効',
  'validity:3': '無効（新しい資格あり）',
  'validity:4': '該当資格なし',
  up: '接続',
  degraded: '不安定',
  down: '切断',
};

/** The actions whose Japanese words hold `text` (staff search 「ログイン」, the chain keeps `login`). */
export function auditActionsMatching(lang: 'ja' | 'en', text: string): string[] {
  if (lang !== 'ja' || !text) return [];
  return Object.entries(ACTION_JA)
    .filter(([, words]) => words.includes(text))
    .map(([code]) => code);
}

export function auditActionText(lang: 'ja' | 'en', action: string): string {
  if (lang !== 'ja') return action;
  if (ACTION_JA[action]) return ACTION_JA[action];
  if (action.startsWith('POST ')) return `送信 ${action.slice(5)}`;
  return action;
}

export function auditDetailText(lang: 'ja' | 'en', detail: string): string {
  if (lang !== 'ja') return detail;
  if (DETAIL_JA[detail]) return DETAIL_JA[detail];
  if (detail.startsWith('password.')) return PASSWORD_REASON_JA[detail] ?? detail;
  if (/^status:/.test(detail)) return `状態 ${detail.slice(7)}`;
  return `エラー ${detail}`;
}

/** An audit row's target: known reasons in Japanese, names and ids as they are. */
export function auditTargetText(lang: 'ja' | 'en', target: string): string {
  if (lang !== 'ja') return target;
  if (DETAIL_JA[target]) return DETAIL_JA[target];
  if (PASSWORD_REASON_JA[target]) return PASSWORD_REASON_JA[target];
  const files = /^(\d+) files$/.exec(target);
  if (files) return `${files[1]}個のファイル`;
  return ERROR_JA[target] ? ERROR_JA[target].replace(/。$/, '') : target;
}

const PASSWORD_REASON_JA: Record<string, string> = {
  'password.mismatch': '確認用と不一致',
  'password.wrong': '現在のパスワード違い',
  'password.too_short': '短すぎる',
  'password.too_long': '長すぎる',
  'password.too_simple': '単純すぎる',
  'password.too_common': 'よく使われるパスワード',
  'password.same_as_initial': '初期パスワードと同じ',
};

export const OUTCOME_JA: Record<string, string> = { ok: '成功', refused: '拒否', failed: '失敗' };
export const RECHECK_STATE_JA: Record<string, string> = {
  scheduled: '予定',
  found: '新しい資格を確認',
  expired: '期限切れ（見つからず）',
};
export const BATCH_STATE_JA: Record<string, string> = {
  queued: '待機中',
  running: '処理中',
  done: '完了',
  failed: '失敗',
};
/** Readiness checks (GatewayStatus.checks) and certificate names on the dashboard. */
export const CHECK_NAME_JA: Record<string, string> = {
  store: 'データベース',
  api: 'レセコン接続',
  reader: 'カードリーダー',
  central: '中央',
  config: '設定',
  'central-client': '中央向けクライアント証明書',
  'central-ca': '中央の CA 証明書',
  'gateway-tls': 'この装置の証明書',
};
export const CARD_STAGE_JA: Record<string, string> = {
  waiting_for_card: 'カード待ち',
  card_inserted: '読み取り中',
  certificate_read: '証明書を読み取り済み',
  checking: '中央に確認中',
  checking_offline: 'キャッシュで確認中',
};

/** Why central could not be reached, by the central client's codes. */
const CENTRAL_CODE_JA: Record<string, string> = {
  CENTRAL_UNREACHABLE: '接続できない',
  CENTRAL_TIMEOUT: '時間内に応答なし',
  CENTRAL_TLS_FAILED: 'TLS の確認に失敗',
  CENTRAL_AUTH_FAILED: '認証に失敗',
  CENTRAL_UNAVAILABLE: '中央が一時的に利用不可',
  CENTRAL_REFUSED: '中央が要求を拒否',
  CENTRAL_MALFORMED: '中央の応答を読めない',
  LINE_DOWN: '回線断',
  PROBE_FAILED: '確認に失敗',
};

/** A central or line error code in words on a Japanese page (undefined: no words for it). */
export const centralCodeText = (code: string): string | undefined => CENTRAL_CODE_JA[code] ?? ERROR_JA[code];

/** strongSwan's SA states (sync/line/sa-state.ts) in words. */
const SA_STATE_JA: Record<string, string> = {
  installed: '確立',
  established: '確立',
  INSTALLED: '確立',
  ESTABLISHED: '確立',
  INSTALLING: '確立中',
  CONNECTING: '接続中',
  CREATED: '作成済み',
  REKEYING: '鍵の更新中',
  REKEYED: '鍵を更新済み',
  DELETING: '削除中',
  DELETED: '削除済み',
  DESTROYING: '破棄中',
  DESTROYED: '破棄済み',
  PASSIVE: '待機',
  UNKNOWN: '不明',
};

const saJa = (text: string): string =>
  text.replace(/\b(CHILD_SA|IKE_SA) (\w+)/g, (_, sa: string, st: string) => `${sa} ${SA_STATE_JA[st] ?? st}`);

/**
 * Why the line changed state, as the link monitor (sync/link.ts) or strongSwan words it, in
 * Japanese; the English as it is on an English page.
 */
export function lineReasonText(lang: 'ja' | 'en', reason: string): string {
  if (lang !== 'ja') return reason;
  const code = (c: string): string => CENTRAL_CODE_JA[c] ?? `エラー ${c}`;
  const rules: [RegExp, (...g: string[]) => string][] = [
    [/^starting$/, () => 'ゲートウェイの起動'],
    [/^central answered$/, () => '中央が応答'],
    [
      /^central answered in (\d+) ms \(slow above (\d+) ms\)$/,
      (n, m) => `中央の応答に${n}ミリ秒（${m}ミリ秒を超えると遅延）`,
    ],
    [/^(\d+) failures in a row \(last: (\w+)\)$/, (n, c) => `${n}回続けて失敗（最後: ${code(c!)}）`],
    [/^(\d+) failure\(s\) \(last: (\w+)\)$/, (n, c) => `${n}回失敗（最後: ${code(c!)}）`],
    [/^central asked to wait (\d+) s \((\w+)\)$/, (n, c) => `中央から${n}秒待つよう指示（${code(c!)}）`],
    [/^line down: (.*)$/, (r) => `回線断: ${saJa(r!)}`],
    [/^line up \((.*)\): probing central$/, (r) => `回線復旧（${saJa(r!)}）、中央を確認中`],
    [/^the tunnel is not up yet$/, () => 'トンネルがまだ確立していない'],
    [/^([A-Z][A-Z_]+)$/, (c) => code(c!)],
  ];
  for (const [re, say] of rules) {
    const m = re.exec(reason);
    if (m) return say(...m.slice(1));
  }
  return saJa(reason);
}

/** Looks a code up in a Japanese table on a `ja` page; the code itself on an English one. */
export const jaOr = (lang: 'ja' | 'en', table: Record<string, string>, code: string): string =>
  (lang === 'ja' && table[code]) || code;
