/**
 * What a check told the counter, reduced to the facts a clinic bills on, and the comparison of two
 * of them: the re-verification of an outage check is compared with what the counter was told
 * during the outage, and a difference becomes a reconciliation item. Pure.
 */
import type { QualificationResult } from '../oqs/types.js';

/** One insurance the answer listed (the billing facts only). */
export interface InsuranceFacts {
  insurerNumber?: string;
  insurerName?: string;
  symbol?: string;
  number?: string;
  branch?: string;
  /** 一部負担金割合 */
  ratio?: string;
  /** 高齢受給者証 負担割合 */
  elderlyRatio?: string;
  /** 限度額適用区分 */
  limitClass?: string;
  disqualificationDate?: string;
}

export interface OutcomeSummary {
  /** 'none' = the counter was told nothing was known (unavailable) */
  source: 'central' | 'cache' | 'none';
  status?: '1' | '2';
  validity?: string;
  validityLabel?: string;
  resultCode?: string;
  /** central refused the card on re-verification (e.g. CERT_REVOKED): no eligibility facts */
  refusedCode?: string;
  /** who, so staff can find the patient: name and birth date from the answer */
  name?: string;
  /** カナ氏名: staff find patients by it at the reception */
  nameKana?: string;
  birthdate?: string;
  insurances: InsuranceFacts[];
}

/** The part of an inquiry result the summary reads. */
export interface SummarizableResult {
  source: 'central' | 'cache' | 'none';
  status?: '1' | '2';
  validity?: string;
  validityLabel?: string;
  resultCode?: string;
  results: QualificationResult[];
}

const put = <K extends keyof InsuranceFacts>(o: InsuranceFacts, k: K, v: InsuranceFacts[K] | undefined): void => {
  if (v !== undefined && v !== '') o[k] = v;
};

export function summarize(r: SummarizableResult): OutcomeSummary {
  const s: OutcomeSummary = { source: r.source, insurances: [] };
  if (r.status !== undefined) s.status = r.status;
  if (r.validity !== undefined) s.validity = r.validity;
  if (r.validityLabel !== undefined) s.validityLabel = r.validityLabel;
  if (r.resultCode !== undefined) s.resultCode = r.resultCode;
  const first = r.results[0];
  if (first) {
    s.name = first.name;
    if (first.nameKana) s.nameKana = first.nameKana;
    s.birthdate = first.birthdate;
  }
  for (const q of r.results) {
    const f: InsuranceFacts = {};
    put(f, 'insurerNumber', q.insurerNumber?.trim());
    put(f, 'insurerName', q.insurerName);
    put(f, 'symbol', q.symbol);
    put(f, 'number', q.number);
    put(f, 'branch', q.branch);
    put(f, 'ratio', q.partialContributionRatio);
    put(f, 'elderlyRatio', q.elderly?.contributionRatio);
    put(f, 'limitClass', q.limitInfo?.classificationFlag);
    put(f, 'disqualificationDate', q.disqualificationDate);
    s.insurances.push(f);
  }
  return s;
}

const ratioValue = (v: string | undefined): number | undefined =>
  v === undefined || v.trim() === '' ? undefined : Number(v.trim());

/**
 * Names of what changed between what the counter was told and what central says now: `available`
 * (the counter was told nothing), `card` (central now refuses the card), `validity`, `status`, `insurer`, `ratio`, `elderlyRatio`,
 * `limitClass`. Empty when the counter's answer still holds.
 */
export function compareOutcomes(told: OutcomeSummary, now: OutcomeSummary): string[] {
  if (now.refusedCode !== undefined) return ['card'];
  if (told.source === 'none') return now.source === 'none' ? [] : ['available'];
  const changed: string[] = [];
  if (told.status !== now.status) changed.push('status');
  if (told.validity !== now.validity) changed.push('validity');
  const insurers = (s: OutcomeSummary): string =>
    s.insurances
      .map((i) => i.insurerNumber ?? '')
      .sort()
      .join(',');
  if (insurers(told) !== insurers(now)) changed.push('insurer');
  // Compare each insurer's ratios with the same insurer's in the other answer.
  const byInsurer = new Map(now.insurances.map((i) => [i.insurerNumber ?? '', i]));
  const diff = (field: 'ratio' | 'elderlyRatio' | 'limitClass'): boolean =>
    told.insurances.some((t) => {
      const n = byInsurer.get(t.insurerNumber ?? '');
      if (!n) return false;
      return field === 'limitClass'
        ? (t.limitClass ?? '') !== (n.limitClass ?? '')
        : ratioValue(t[field]) !== ratioValue(n[field]);
    });
  if (diff('ratio')) changed.push('ratio');
  if (diff('elderlyRatio')) changed.push('elderlyRatio');
  if (diff('limitClass')) changed.push('limitClass');
  return changed;
}
