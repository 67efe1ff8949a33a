/**
 * What the counter needs beyond the raw answer (issue #5): the advice of src/oqs/advice.ts turned
 * into typed fields of the result a receipt computer can act on — warnings, the name fallback,
 * the misregistration flag, the 複数該当 list and the consent echo. Applied to every answer the
 * counter sees (live or from the cache), never stored with the cached answer: the advice depends
 * on what this request knew. Pure.
 */
import {
  checkKnownFacts,
  checkRatioConsistency,
  multipleMatches,
  nameFallback,
  type FactCheck,
  type FactField,
  type KnownPatientFacts,
  type NameFallback,
  type NameTarget,
} from '../oqs/advice.js';
import type { QualificationResult, Validity } from '../oqs/types.js';

export type ResultWarningCode =
  | 'RATIO_LIMIT_INCONSISTENT'
  | 'POSSIBLE_MISREGISTRATION'
  | 'MULTIPLE_MATCHES'
  | 'NAME_FALLBACK_LOSSY'
  | 'CARD_CERT_EXPIRED_GRACE'
  | 'CARD_CERT_EXPIRES_SOON';

/** Something staff must look at before relying on the answer; the answer itself still stands. */
export interface ResultWarning {
  code: ResultWarningCode | (string & {});
  message: string;
  /** the result (index in `results`) it is about, when it is about one */
  resultIndex?: number;
  details?: Record<string, unknown>;
}

/** The consent flags a receipt computer passes (API names) and the OQS consent blocks they map to. */
export const CONSENT_BLOCKS = {
  medication: 'PharmacistsInfo', // 薬剤情報
  healthCheck: 'SpecificHealthCheckupsInfo', // 特定健診情報
  treatment: 'DiagnosisInfo', // 診療情報
  surgery: 'OperationInfo', // 手術情報
} as const;
export type ConsentName = keyof typeof CONSENT_BLOCKS | 'limit';
export type ConsentFlags = Partial<Record<ConsentName, boolean>>;
export const CONSENT_NAMES = [
  'medication',
  'healthCheck',
  'treatment',
  'surgery',
  'limit',
] as const satisfies readonly ConsentName[];

/** The consent flags of one check: what the client asked, what went to central, what central answered. */
export interface ConsentEcho {
  requested: Record<ConsentName, boolean>;
  /** the flags that were carried to central (a check by numbers carries 限度額 only: 照会区分 2 has no other field) */
  sentToCentral: ConsentName[];
  /** central's flag per consent for the first result (OQSCD016, OQSCD001 for limit), when it sent one */
  answered: Partial<Record<ConsentName, string>>;
  /**
   * Consents the gateway does not pass on (their blocks are removed from `results`), so that no
   * 薬剤・健診・診療・手術 information is requested for a patient who may be the wrong person.
   */
  withheld?: { names: ConsentName[]; reason: 'POSSIBLE_MISREGISTRATION' };
}

export interface ResultNames {
  resultIndex: number;
  name: NameFallback;
  nameKana?: NameFallback;
  insuredName?: NameFallback;
  nameOfOther?: NameFallback;
}

export interface Candidate {
  index: number;
  name: string;
  nameKana?: string;
  sex1: string;
  birthdate: string;
  insurerNumber?: string;
  symbol?: string;
  number?: string;
  branch?: string;
  insurerName: string;
  /** the known facts compared with this candidate, when the client sent some */
  knownFacts?: FactCheck;
}

export interface CounterAdvice {
  warnings: ResultWarning[];
  /** one per result, in order: each name exactly as sent plus its fallback for `nameTarget` */
  nameFallback: ResultNames[];
  nameTarget: NameTarget;
  /** the comparison with what the receipt computer knew (absent when it sent nothing) */
  knownFacts?: FactCheck;
  /** true: the answer disagrees with what the receipt computer knows — a possible registration error */
  possibleMisregistration: boolean;
  /** 複数該当: every candidate for staff to choose from; the gateway picks none */
  multipleMatches?: { candidates: Candidate[]; differingFields: string[] };
  consent: ConsentEcho;
}

/** Result fields that depend on the request, not on central's answer: never cached with the answer. */
export const ADVICE_FIELDS = [
  'warnings',
  'nameFallback',
  'nameTarget',
  'knownFacts',
  'possibleMisregistration',
  'multipleMatches',
  'consent',
  'timeLagRecheck',
] as const;

export interface AdviceInput {
  validity?: Validity;
  results: QualificationResult[];
  knownFacts?: KnownPatientFacts;
  consent: ConsentFlags;
  sentToCentral: ConsentName[];
  nameTarget?: NameTarget;
}

const FACT_LABEL: Record<FactField, string> = { birthdate: '生年月日', nameKana: 'カナ氏名', sex: '性別' };

const hasFacts = (k: KnownPatientFacts | undefined): k is KnownPatientFacts =>
  k !== undefined && Object.values(k).some((v) => v !== undefined && v !== '');

function names(r: QualificationResult, index: number, target: NameTarget): ResultNames {
  const out: ResultNames = { resultIndex: index, name: nameFallback(r.name, { target }) };
  if (r.nameKana !== undefined) out.nameKana = nameFallback(r.nameKana, { target });
  if (r.insuredName !== undefined) out.insuredName = nameFallback(r.insuredName, { target });
  if (r.nameOfOther !== undefined) out.nameOfOther = nameFallback(r.nameOfOther, { target });
  return out;
}

/**
 * The advice for one answer. Returns the results to deliver too: unchanged, except that with a
 * possible misregistration the 薬剤・健診・診療・手術 consent blocks are removed.
 */
export function adviseAnswer(input: AdviceInput): { advice: CounterAdvice; results: QualificationResult[] } {
  const target = input.nameTarget ?? 'shift_jis';
  const warnings: ResultWarning[] = [];
  let results = input.results;

  input.results.forEach((r, i) => {
    const ratio = checkRatioConsistency(r);
    if (ratio) {
      const { code, message, ...details } = ratio;
      warnings.push({ code, message, resultIndex: i, details });
    }
  });

  const nameList = input.results.map((r, i) => names(r, i, target));
  for (const n of nameList) {
    const lossy = [n.name, n.nameKana, n.insuredName, n.nameOfOther].filter(
      (f): f is NameFallback => f !== undefined && !f.lossless,
    );
    if (lossy.length === 0) continue;
    const chars = lossy.flatMap((f) =>
      f.substitutions.map(
        (s) =>
          `${s.original}→${s.kind === 'unrepresentable' ? `${s.replacement} (${s.codePoints.join(' ')})` : s.replacement || '∅'}`,
      ),
    );
    warnings.push({
      code: 'NAME_FALLBACK_LOSSY',
      resultIndex: n.resultIndex,
      message: `氏名に ${target} で表せない文字があります: ${chars.join(', ')}。レセコンには nameFallback の一覧どおりに登録してください。 (the name has characters outside ${target}; see nameFallback)`,
      details: { unrepresentable: lossy.some((f) => f.substitutions.some((s) => s.kind === 'unrepresentable')) },
    });
  }

  const multi = multipleMatches({
    ...(input.validity !== undefined ? { validity: input.validity } : {}),
    results: input.results,
  });
  let knownFacts: FactCheck | undefined;
  let possibleMisregistration = false;
  let multipleOut: CounterAdvice['multipleMatches'];
  if (multi) {
    multipleOut = {
      differingFields: [...multi.differingFields],
      candidates: multi.candidates.map(({ index, result: r }) => {
        const c: Candidate = { index, name: r.name, sex1: r.sex1, birthdate: r.birthdate, insurerName: r.insurerName };
        for (const k of ['nameKana', 'insurerNumber', 'symbol', 'number', 'branch'] as const)
          if (r[k] !== undefined) c[k] = r[k];
        if (hasFacts(input.knownFacts)) c.knownFacts = checkKnownFacts(input.knownFacts, r);
        return c;
      }),
    };
    warnings.push({
      code: 'MULTIPLE_MATCHES',
      message: `複数の資格が該当しました（${multi.candidates.length} 件）。本人に確認して選んでください（自動では選びません）。 Several people match: staff must choose; none was picked.`,
      details: { count: multi.candidates.length, differingFields: multi.differingFields },
    });
  } else if (hasFacts(input.knownFacts) && input.results[0]) {
    knownFacts = checkKnownFacts(input.knownFacts, input.results[0]);
    if (knownFacts.mismatched.length > 0) {
      possibleMisregistration = true;
      warnings.push({
        code: 'POSSIBLE_MISREGISTRATION',
        resultIndex: 0,
        message: `レセコンの患者情報と資格情報の ${knownFacts.mismatched.map((f) => FACT_LABEL[f]).join('・')} が一致しません。紐付け誤りの可能性があります。薬剤・健診・診療情報は取得しません。 The answer disagrees with what the receipt computer knows (${knownFacts.mismatched.join(', ')}): possibly registered to someone else; no medication, health-check or treatment information is requested.`,
        details: { mismatched: knownFacts.mismatched, compared: knownFacts.compared },
      });
    }
  }

  const requested = Object.fromEntries(CONSENT_NAMES.map((n) => [n, input.consent[n] === true])) as Record<
    ConsentName,
    boolean
  >;
  const consent: ConsentEcho = { requested, sentToCentral: [...input.sentToCentral], answered: {} };
  const first = input.results[0];
  if (first) {
    for (const [name, block] of Object.entries(CONSENT_BLOCKS) as [keyof typeof CONSENT_BLOCKS, string][]) {
      const flag = first.consents?.[block]?.flag;
      if (flag !== undefined) consent.answered[name] = flag;
    }
    if (first.limitConsent?.flag !== undefined) consent.answered.limit = first.limitConsent.flag;
  }
  if (possibleMisregistration) {
    consent.withheld = { names: Object.keys(CONSENT_BLOCKS) as ConsentName[], reason: 'POSSIBLE_MISREGISTRATION' };
    const blocks = new Set<string>(Object.values(CONSENT_BLOCKS));
    results = input.results.map((r) => ({
      ...r,
      consents: Object.fromEntries(Object.entries(r.consents ?? {}).filter(([k]) => !blocks.has(k))),
    }));
  }

  const advice: CounterAdvice = {
    warnings,
    nameFallback: nameList,
    nameTarget: target,
    possibleMisregistration,
    consent,
  };
  if (knownFacts) advice.knownFacts = knownFacts;
  if (multipleOut) advice.multipleMatches = multipleOut;
  return { advice, results };
}
