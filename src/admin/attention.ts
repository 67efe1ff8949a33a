/**
 * What needs staff's attention, with what to do: the store's alerts (a new cache key to back up…),
 * certificates close to expiry, re-verifications refused by central, open reconciliation items.
 * Shown at the top of the dashboard; the words are here, the facts come from the status.
 */
import type { DaemonStatus, GatewayStatus } from '../ops/status.js';
import type { Lang } from './i18n.js';
import { CHECK_NAME_JA, jaOr } from './messages-ja.js';

export interface Attention {
  tone: 'warn' | 'bad';
  text: string;
  /** what to do about it */
  todo: string;
  href?: string;
}

const ALERTS: Record<string, { tone: Attention['tone']; ja: [string, string]; en: [string, string] }> = {
  STORE_KEY_CREATED: {
    tone: 'warn',
    ja: ['キャッシュの暗号鍵を新しく作りました。', '「バックアップ」からバックアップを作り、院外に保管してください。'],
    en: ['A new cache key was created.', 'Make a backup (Backup page) and keep it off the box.'],
  },
  STORE_KEY_MODE: {
    tone: 'warn',
    ja: [
      'キャッシュの暗号鍵のファイル権限が広すぎます。',
      'root で「sudo onshi doctor」を実行し、指示に従ってください。',
    ],
    en: ["The cache key file's permissions are too open.", 'Run `sudo onshi doctor` as root and follow it.'],
  },
  STORE_CORRUPT: {
    tone: 'bad',
    ja: [
      'データベースが壊れていたため退避し、新しく作りました。',
      'キャッシュは空から再構築されます。サポート情報をダウンロードし、保守業者に連絡してください。',
    ],
    en: [
      'The database was damaged: it was moved aside and a new one made.',
      'The cache refills by itself. Download the support information and tell your vendor.',
    ],
  },
  OUTBOX_INFLIGHT_RESET: {
    tone: 'warn',
    ja: ['前回の停止時に送信中だった再照会を、もう一度送ります。', '対応は不要です。結果は「再照会の差異」に出ます。'],
    en: [
      'Re-verifications in flight at the last stop are sent again.',
      'Nothing to do; results appear under Reconciliation.',
    ],
  },
};

/** A store alert's words (the event log names past ones by their code); undefined when unknown. */
export const storeAlertText = (code: string, lang: Lang): string | undefined => ALERTS[code]?.[lang][0];

const DAY = 86_400_000;

export function attentionItems(s: GatewayStatus, lang: Lang): Attention[] {
  const ja = lang === 'ja';
  const out: Attention[] = [];
  const open = (s as Partial<DaemonStatus>).reconciliation?.open ?? 0;
  if (open > 0)
    out.push({
      tone: 'warn',
      text: ja ? `再照会で結果が変わった確認が${open}件あります。` : `${open} re-verified checks changed their answer.`,
      todo: ja ? 'レセコンで患者を確認し、「対応済み」にしてください。' : 'Check the patients, then mark them handled.',
      href: '/reconciliation',
    });
  for (const a of s.alerts ?? []) {
    const known = ALERTS[a.code];
    const [text, todo] = known ? known[lang] : [a.message, ja ? '保守業者に連絡してください。' : 'Tell your vendor.'];
    out.push({
      tone: known?.tone ?? 'warn',
      text,
      todo,
      ...(a.code === 'STORE_KEY_CREATED' ? { href: '/backup' } : {}),
    });
  }
  const now = Date.parse(s.now);
  const certs = [...s.certificates, ...(s.tls ? [{ name: 'gateway-tls', notAfter: s.tls.notAfter }] : [])];
  for (const c of certs) {
    const days = Math.floor((Date.parse(c.notAfter) - now) / DAY);
    if (days >= 30) continue;
    const name = jaOr(lang, CHECK_NAME_JA, c.name);
    out.push({
      tone: days < 14 ? 'bad' : 'warn',
      text: ja
        ? days < 0
          ? `${name}の有効期限が切れています。`
          : `${name}の有効期限まであと${days}日です。`
        : days < 0
          ? `${name} has expired.`
          : `${name} expires in ${days} days.`,
      todo:
        c.name === 'gateway-tls'
          ? ja
            ? 'ゲートウェイを再起動すると更新されます。'
            : 'Restart the gateway to renew it.'
          : ja
            ? '証明書を更新し、root で設置し直してください。'
            : 'Renew the certificate and install it as root.',
    });
  }
  const ob = (s as Partial<DaemonStatus>).outbox;
  if (ob?.dead)
    out.push({
      tone: 'bad',
      text: ja
        ? `中央が再照会を拒否した確認が${ob.dead}件あります。`
        : `${ob.dead} re-verifications were refused by central.`,
      todo: ja
        ? 'レセコンで該当の患者を確認し、サポート情報をダウンロードして保守業者に連絡してください。'
        : 'Check the patients in the receipt computer and send the support information to your vendor.',
    });
  return out;
}
