import type { Validity } from './types.js';

/**
 * OQSCD code tables (spec §4): table number → code → Japanese label.
 * 001–013, 016, 017 are confirmed by several sources; 014–028 come from one table.
 */
const PRESENT = { '01': 'あり', '02': 'なし' } as const;
const MATCH = { '0': '一致', '1': '不一致' } as const;

export const OQSCD: Record<string, Record<string, string>> = {
  '001': { '0': '未同意', '1': '同意' },
  '002': { '1': 'マイナンバーカード', '2': '被保険者証情報' },
  '003': { '1': '正常終了', '2': '処理中', '9': '異常終了' },
  '004': { '1': '正常終了', '2': 'エラー' },
  '005': { '0': 'UTF-8', '1': 'Shift_JIS' },
  '006': {
    '1': '有効',
    '2': '無効',
    '3': '無効(新しい資格あり)',
    '4': '該当資格なし',
    '5': '複数該当',
    '6': '有効(未登録)',
  },
  '007': { '1': '男', '2': '女', '3': '未設定' },
  '008': { '01': '死亡', '02': '生活保護受給開始', '03': '医療保険等の資格取得', '99': 'その他' },
  '009': { '1': '本人', '2': '家族' },
  '010': {
    '01': '一般',
    '02': '退職',
    '03': '短期(一般)',
    '04': '短期(退職)',
    '05': '被保険者資格証明書',
    '06': '特例退職',
    '07': '自衛官診療証',
    A1: '医療扶助',
  },
  '011': {
    '01': '限度額適用認定証',
    '02': '限度額適用・標準負担額減額認定証',
    '03': '標準負担額減額認定証',
  },
  '012': {
    A01: 'ア',
    A02: 'イ',
    A03: 'ウ',
    A04: 'エ',
    A05: 'オ',
    A06: 'オ(境)',
    B01: '現役並みⅢ',
    B02: '現役並みⅡ',
    B03: '現役並みⅠ',
    B04: '一般',
    B05: '低所得Ⅱ',
    B06: '低所得Ⅰ',
    B07: '低所得Ⅰ(老福)',
    B08: '低所得Ⅰ(境)',
    B09: '一般Ⅱ',
    B10: '一般Ⅰ',
  },
  '013': {
    '1': '人工透析を要する慢性腎不全',
    '2': '先天性血液凝固因子障害(第VIII・IX因子)',
    '3': '血液凝固因子製剤起因のHIV',
  },
  '014': { '0': '変更なし', '1': '変更あり/判定不能' },
  '015': { '1': '未就学' },
  '016': { '0': 'なし', '1': 'あり', '2': '有効期限切れ', '3': '取得困難' },
  '017': { '1': '電子', '2': '紙' },
  '018': { '01': '医療券', '02': '調剤券' },
  '019': { '01': '入院', '02': '入院外', '03': '歯科', '04': '調剤', '05': '訪問看護' },
  '020': { '01': '単独', '02': '併用' },
  '021': { ...PRESENT },
  '022': { '1': '不整合あり' },
  '023': { ...PRESENT },
  '024': { ...PRESENT },
  '025': { ...PRESENT },
  '026': { ...MATCH },
  '027': { '1': 'あり' },
  '028': { '1': '外来', '2': '訪問診療等', '3': 'オンライン診療等', '4': '救急時' },
  // 032 shares 026's values (資格情報変更確認); listed because a result may carry it.
  '032': { ...MATCH },
};

/** The label of `code` in OQSCD `table` ("006", …), or undefined when either is unknown. */
export function codeLabel(table: string, code: string): string | undefined {
  const t = Object.hasOwn(OQSCD, table) ? OQSCD[table] : undefined;
  return t !== undefined && Object.hasOwn(t, code) ? t[code] : undefined;
}

/** True when `code` is a value of OQSCD `table`. */
export function isCode(table: string, code: string): boolean {
  return codeLabel(table, code) !== undefined;
}

/** 資格有効性 (OQSCD006) labels: table 006 itself, typed by Validity. */
export const VALIDITY_LABEL = OQSCD['006'] as Readonly<Record<Validity, string>>;
