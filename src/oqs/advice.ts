import iconv from 'iconv-lite';
import { codeLabel } from './codes.js';
import { OqsError, invalidMessage } from './errors.js';
import type { QualificationResult, ResponseBody } from './types.js';

/**
 * What the gateway adds to a raw answer (ARCHITECTURE.md, "What the gateway adds"): checks that
 * come from problems clinics reported. Pure functions over decoded answers; none of them changes
 * the answer itself.
 */

// ---------------------------------------------------------------------------------------------
// (a) 負担割合 vs 限度額適用区分

/** OQSCD012 適用区分 for 70 and over, grouped the way the ratio rule needs them. */
const GENEKI_NAMI = new Set(['B01', 'B02', 'B03']); // 現役並みⅢ/Ⅱ/Ⅰ: 3割
const IPPAN_OR_LOW = new Set(['B04', 'B09', 'B10', 'B05', 'B06', 'B07', 'B08']); // 一般, 一般Ⅱ/Ⅰ, 低所得…: 1–2割

export interface RatioAdvice {
  code: 'RATIO_LIMIT_INCONSISTENT';
  /** 負担割合 in 割 */
  ratio: number;
  /** where the ratio came from: 高齢受給者証 or, for 後期高齢者 without one, 一部負担金割合 */
  ratioSource: 'elderly' | 'partial';
  /** 適用区分 (OQSCD012) and its label */
  classificationFlag: string;
  classificationLabel: string;
  message: string;
}

/** "020", "20" (percent, as on the wire) → 2; anything else → undefined (nothing to compare). */
function wari(percent: string | undefined): number | undefined {
  if (percent === undefined || !/^\d{1,3}$/.test(percent)) return undefined;
  const n = Number(percent);
  return n > 0 && n % 10 === 0 ? n / 10 : undefined;
}

/**
 * 1割/2割 with 現役並み, or 3割 with 一般/低所得: one of the two certificates is out of date or
 * wrongly registered, and the amount to charge is uncertain — ask the insurer. The 高齢受給者証
 * ratio is used; a 後期高齢者 result has no such certificate and its 一部負担金割合 is used instead.
 * Nothing to say (undefined) when either side is missing (e.g. no 限度額 consent).
 */
export function checkRatioConsistency(result: QualificationResult): RatioAdvice | undefined {
  const flag = result.limitInfo?.classificationFlag;
  if (flag === undefined) return undefined;
  const fromElderly = wari(result.elderly?.contributionRatio);
  const ratio = fromElderly ?? wari(result.partialContributionRatio);
  if (ratio === undefined) return undefined;
  const inconsistent =
    ((ratio === 1 || ratio === 2) && GENEKI_NAMI.has(flag)) || (ratio === 3 && IPPAN_OR_LOW.has(flag));
  if (!inconsistent) return undefined;
  const label = codeLabel('012', flag) ?? flag;
  return {
    code: 'RATIO_LIMIT_INCONSISTENT',
    ratio,
    ratioSource: fromElderly !== undefined ? 'elderly' : 'partial',
    classificationFlag: flag,
    classificationLabel: label,
    message: `負担割合 ${ratio}割 と限度額適用区分「${label}」が一致しません。保険者に負担額を確認してください。(confirm the amount with the insurer)`,
  };
}

// ---------------------------------------------------------------------------------------------
// (b) Names for receipt computers limited to Shift_JIS

/**
 * `shift_jis`: JIS X 0208 plus JIS X 0201 (ASCII, half-width katakana) — what a receipt computer
 * limited to "Shift_JIS" can store. `cp932`: Windows-31J, which adds NEC row 13 and the IBM
 * extensions (髙 and 﨑 are representable there).
 */
export type NameTarget = 'shift_jis' | 'cp932';

export type SubstitutionReason =
  | 'variation-selector' // a variation selector (U+FE00–FE0F, U+E0100–E01EF) was dropped
  | 'normalized' // the Unicode canonical form (NFC) differs, e.g. a CJK compatibility ideograph
  | 'itaiji' // a well-known variant (異体字) replaced by its common form
  | 'private-use' // an insurer's own 外字: no standard character exists
  | 'not-in-target'; // no representation in the target set

export interface NameSubstitution {
  /** UTF-16 offset and length of `original` in the exact name */
  index: number;
  length: number;
  /** UTF-16 offset of `replacement` in the fallback */
  fallbackIndex: number;
  original: string;
  /** what the fallback holds instead ('' when only a selector was dropped, the placeholder when unrepresentable) */
  replacement: string;
  /** the original's code points, e.g. ["U+845B", "U+E0100"]: a private-use character cannot be shown */
  codePoints: string[];
  /** 'unrepresentable' = the fallback holds the placeholder, not a real character */
  kind: 'substituted' | 'unrepresentable';
  reasons: SubstitutionReason[];
}

export interface NameFallback {
  /** the name exactly as central sent it */
  exact: string;
  /** every character representable in the target */
  fallback: string;
  /** true when fallback === exact */
  lossless: boolean;
  /** every place where fallback differs from exact, in order */
  substitutions: NameSubstitution[];
}

/**
 * Well-known 異体字 outside JIS X 0208 and the common form a counter would write. Kept small and
 * explicit: a wrong substitution in a name is worse than a listed placeholder. CJK compatibility
 * ideographs (U+F900…) are handled by NFC before this table is consulted.
 */
export const ITAIJI: Readonly<Record<string, string>> = Object.freeze({
  '\u9AD9': '\u9AD8', // 髙 → 高
  '\uFA11': '\u5D0E', // 﨑 → 崎
  '\u{20BB7}': '\u5409', // 𠮷 → 吉
  '\u{2123D}': '\u571F', // 𡈽 → 土
  '\u5FB7': '\u5FB3', // 德 → 徳
  '\u6FF5': '\u6D5C', // 濵 → 浜
  '\u7028': '\u702C', // 瀨 → 瀬
  '\u6801': '\u67F3', // 栁 → 柳
  '\u663B': '\u6602', // 昻 → 昂
  '\u51DE': '\u7199', // 凞 → 熙
  '\u69D7': '\u6A4B', // 槗 → 橋
  '\u9DD7': '\u9D0E', // 鷗 → 鴎
  '\u66FB': '\u6607', // 曻 → 昇
  '\u9751': '\u9752', // 靑 → 青
  '\u969D': '\u5CF6', // 隝 → 島
  '\u6852': '\u6851', // 桒 → 桑
  '\u589E': '\u5897', // 增 → 増
  '\u9ED1': '\u9ED2', // 黑 → 黒
  '\u9115': '\u90F7', // 鄕 → 郷
  '\u6DF8': '\u6E05', // 淸 → 清
});

export const DEFAULT_PLACEHOLDER = '〓'; // 下駄記号: the customary JIS mark for a missing glyph

const VS_RE = /[\uFE00-\uFE0F\u{E0100}-\u{E01EF}]/gu;
const PRIVATE_USE_RE = /[\uE000-\uF8FF\u{F0000}-\u{FFFFD}\u{100000}-\u{10FFFD}]/u;
/** A base character and the combining marks (incl. variation selectors) that belong to it. */
const GROUP_RE = /\P{M}\p{M}*|\p{M}+/gsu;

const memo: Record<NameTarget, Map<string, boolean>> = { shift_jis: new Map(), cp932: new Map() };

/** One code point: does it survive a round trip through the target (and, for shift_jis, sit in JIS X 0201/0208)? */
function charFits(ch: string, target: NameTarget): boolean {
  const cache = memo[target];
  const hit = cache.get(ch);
  if (hit !== undefined) return hit;
  const bytes = iconv.encode(ch, 'cp932');
  let ok = iconv.decode(bytes, 'cp932') === ch; // iconv-lite writes '?' for what it cannot map
  const b0 = bytes[0] ?? 0;
  if (ok && bytes.length === 1) ok = (b0 >= 0x20 && b0 < 0x7f) || (b0 >= 0xa1 && b0 <= 0xdf);
  else if (ok && target === 'shift_jis') {
    // JIS X 0208 rows 1–8 and 16–84; 0x85–0x87 (NEC row 13) and 0xEB… (NEC/IBM extensions, user area) are cp932 only.
    ok = (b0 >= 0x81 && b0 <= 0x84) || (b0 >= 0x88 && b0 <= 0x9f) || (b0 >= 0xe0 && b0 <= 0xea);
  }
  cache.set(ch, ok);
  return ok;
}

const fits = (s: string, target: NameTarget): boolean => [...s].every((ch) => charFits(ch, target));
const codePointsOf = (s: string): string[] =>
  [...s].map((c) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`);

/**
 * The name exactly as sent, plus a fallback for a receipt computer limited to Shift_JIS (or
 * cp932) in which every change is listed with its position: selectors dropped, NFC, the
 * 異体字 table, else the placeholder (〓 by default) — never a silent ● or ?.
 */
export function nameFallback(name: string, opts: { target?: NameTarget; placeholder?: string } = {}): NameFallback {
  const target = opts.target ?? 'shift_jis';
  const placeholder = opts.placeholder ?? DEFAULT_PLACEHOLDER;
  if ([...placeholder].length !== 1 || !fits(placeholder, target)) {
    throw new OqsError('OQS_ENCODING_UNREPRESENTABLE', `the placeholder must be one character of ${target}`, {
      details: { path: 'placeholder' },
    });
  }
  // The usual name fits as it is: a group fits exactly when each of its code points does, so one
  // pass over the code points settles it without splitting the name into groups.
  let allFit = true;
  for (const ch of name)
    if (!charFits(ch, target)) {
      allFit = false;
      break;
    }
  if (allFit) return { exact: name, fallback: name, lossless: true, substitutions: [] };
  let fallback = '';
  const substitutions: NameSubstitution[] = [];
  for (const m of name.matchAll(GROUP_RE)) {
    const original = m[0];
    const index = m.index;
    if (fits(original, target)) {
      fallback += original;
      continue;
    }
    const reasons: SubstitutionReason[] = [];
    let s = original.replace(VS_RE, '');
    if (s !== original) reasons.push('variation-selector');
    const nfc = s.normalize('NFC');
    if (nfc !== s) {
      reasons.push('normalized');
      s = nfc;
    }
    if (!fits(s, target) && Object.hasOwn(ITAIJI, s) && fits(ITAIJI[s] as string, target)) {
      reasons.push('itaiji');
      s = ITAIJI[s] as string;
    }
    let kind: NameSubstitution['kind'] = 'substituted';
    if (!fits(s, target)) {
      kind = 'unrepresentable';
      reasons.push(PRIVATE_USE_RE.test(s) ? 'private-use' : 'not-in-target');
      s = placeholder;
    }
    substitutions.push({
      index,
      length: original.length,
      fallbackIndex: fallback.length,
      original,
      replacement: s,
      codePoints: codePointsOf(original),
      kind,
      reasons,
    });
    fallback += s;
  }
  return { exact: name, fallback, lossless: substitutions.length === 0, substitutions };
}

// ---------------------------------------------------------------------------------------------
// (c) Misregistration guard

/** What the receipt computer already knows about the patient. */
export interface KnownPatientFacts {
  /** YYYYMMDD (YYYY-MM-DD and YYYY/MM/DD accepted) */
  birthdate?: string;
  /** カナ氏名, any width, hiragana or katakana, with or without spaces */
  nameKana?: string;
  /** OQSCD007: 1 男, 2 女; 3 未設定 is not compared */
  sex?: string;
}

export type FactField = 'birthdate' | 'nameKana' | 'sex';

export interface FactCheck {
  /** the fields both sides had, so that "no disagreement" can be told from "nothing compared" */
  compared: FactField[];
  /** the fields that disagree; non-empty = a possible registration error */
  mismatched: FactField[];
}

const SMALL_KANA: Readonly<Record<string, string>> = {
  ァ: 'ア',
  ィ: 'イ',
  ゥ: 'ウ',
  ェ: 'エ',
  ォ: 'オ',
  ッ: 'ツ',
  ャ: 'ヤ',
  ュ: 'ユ',
  ョ: 'ヨ',
  ヮ: 'ワ',
  ヵ: 'カ',
  ヶ: 'ケ',
};

/**
 * A kana name reduced to what identifies it: NFKC (half-width → full-width, ﾞ/ﾟ composed),
 * hiragana → katakana, small kana → large (older systems register シユウ for シュウ), spaces and
 * 中黒 removed, Latin letters upper-cased.
 */
export function normalizeKanaName(s: string): string {
  return s
    .normalize('NFKC')
    .replace(/[\u3041-\u3096]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0x60))
    .replace(/[ァィゥェォッャュョヮヵヶ]/g, (c) => SMALL_KANA[c] ?? c)
    .replace(/[\s\u3000・]/g, '')
    .toUpperCase();
}

function normalizeBirthdate(v: string): string {
  const d = v.replace(/[-/]/g, '');
  if (!/^\d{8}$/.test(d)) throw invalidMessage('known.birthdate', 'date-format', 'known.birthdate: expected YYYYMMDD');
  return d;
}

/**
 * Compares what the receipt computer knows with one result. A disagreement suggests the card or
 * the numbers were registered to someone else: flag it and do not request 薬剤・健診・診療 information.
 */
export function checkKnownFacts(known: KnownPatientFacts, result: QualificationResult): FactCheck {
  const out: FactCheck = { compared: [], mismatched: [] };
  const compare = (field: FactField, equal: boolean): void => {
    out.compared.push(field);
    if (!equal) out.mismatched.push(field);
  };
  if (known.birthdate !== undefined && known.birthdate !== '') {
    compare('birthdate', normalizeBirthdate(known.birthdate) === result.birthdate);
  }
  if (known.nameKana !== undefined && normalizeKanaName(known.nameKana) !== '' && result.nameKana !== undefined) {
    const k = normalizeKanaName(known.nameKana);
    // NameOfOtherKana (通称 etc.) identifies the same person as well.
    const names = [result.nameKana, result.nameOfOtherKana]
      .filter((n): n is string => n !== undefined)
      .map(normalizeKanaName);
    compare('nameKana', names.includes(k));
  }
  if ((known.sex === '1' || known.sex === '2') && (result.sex1 === '1' || result.sex1 === '2')) {
    // Sex2 is the notation printed on the card when it differs; either identifies the patient.
    compare('sex', known.sex === result.sex1 || known.sex === result.sex2);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// (d) 複数該当

/** Fields shown to staff to tell candidates apart. */
const CANDIDATE_FIELDS = [
  'name',
  'nameKana',
  'sex1',
  'birthdate',
  'insurerNumber',
  'symbol',
  'number',
  'branch',
  'personalFamily',
  'insurerName',
  'address',
] as const satisfies ReadonlyArray<keyof QualificationResult>;

export interface MultipleMatches {
  /** every candidate, in the order central sent them; staff choose, the gateway never does */
  candidates: Array<{ index: number; result: QualificationResult }>;
  /** of the fields staff compare, those that differ between candidates */
  differingFields: Array<(typeof CANDIDATE_FIELDS)[number]>;
}

/**
 * 複数該当: 資格有効性 5 (spec §4, OQSCD006), or more than one ResultOfQualificationConfirmation
 * (spec §2.3: n>1 when 複数該当) whatever the validity says. undefined when there is one match or none.
 */
export function multipleMatches(body: Pick<ResponseBody, 'validity' | 'results'>): MultipleMatches | undefined {
  if (body.validity !== '5' && body.results.length <= 1) return undefined;
  const candidates = body.results.map((result, index) => ({ index, result }));
  const differingFields = CANDIDATE_FIELDS.filter((f) => new Set(body.results.map((r) => r[f] ?? '')).size > 1);
  return { candidates, differingFields };
}
