/**
 * Time-lag rechecks (issue #5, item 2). After a change of insurer the new insurer has up to 10
 * days to register the patient, so 無効, 無効（新しい資格あり） or 該当資格なし may only mean "not yet".
 * Such an answer — for a patient the receipt computer flagged `changedInsurer`, or for any patient
 * when `rechecks.all` is on — is asked again once a day (the jobs service runs `run()` on
 * `rechecks.schedule`, Asia/Tokyo) for `windowDays`.
 * When the new eligibility appears, `recheck.found` goes to the `rechecks` topic and the item
 * stays in `rechecks.list`, so the clinic can settle the difference it charged; at the end of
 * the window, `recheck.expired`.
 *
 * Every recheck is a check by numbers with the original 資格確認日: the question is whether the
 * patient was insured on the day of the visit. A card check is rechecked with the numbers of the
 * qualification central answered with (the card cannot be read again without the patient).
 */
import { randomUUID } from 'node:crypto';
import { isOnshiError } from '../core/errors.js';
import type { GatewayStore, RecheckEntry } from '../cache/index.js';
import { validateNumbersQuery, VALIDITY_LABEL } from '../oqs/index.js';
import type { NumbersQuery, QualificationRequest, Validity } from '../oqs/types.js';
import type { CentralClient } from '../sync/central-client.js';
import type { EventHub } from '../protocol/events.js';
import {
  numbersLookup,
  type RecheckOutcome,
  toInquiryResult,
  type InquiryResult,
  type RecheckScheduler,
} from './result.js';

export type { RecheckOutcome };
import type { Logger } from '../core/logger.js';
import { summarize, type OutcomeSummary } from './outcome.js';

/** The answers that may be a registration lag: 無効, 無効（新しい資格あり）, 該当資格なし. */
export const LAG_VALIDITIES: ReadonlySet<string> = new Set(['2', '3', '4']);

export interface RecheckConfig {
  enabled: boolean;
  /** recheck every lag answer, not only those flagged changedInsurer */
  all: boolean;
  windowDays: number;
  schedule: string;
}

export interface RecheckJobOptions extends RecheckConfig {
  store: GatewayStore;
  central: CentralClient;
  events: EventHub;
  logger: Logger;
  institutionCode: string;
  timeoutMs: number;
  now?: () => Date;
}

/** Sealed with the recheck: what to ask again and how the client knows the patient. */
interface RecheckPersonal {
  request: QualificationRequest;
  inquiryId: string;
  /** the receipt computer's own reference (the query's arbitraryId), if it sent one */
  patientRef?: string;
  /** 照会区分 of the check that started it */
  from: '1' | '2';
  found?: OutcomeSummary;
  /** who, as the first answer named them: staff find the patient by it (sealed like the rest) */
  name?: string;
  nameKana?: string;
}

export interface RunSummary {
  checked: number;
  found: number;
  expired: number;
  failed: number;
  stillWaiting: number;
}

/** A recheck as the admin page lists it. */
export interface RecheckItem {
  id: string;
  firstCheckedAt: string;
  nextAt?: string;
  until: string;
  attempts: number;
  state: 'scheduled' | 'found' | 'expired';
  lastResult?: string;
  client: string;
  patientRef?: string;
  /** the admin page's: the name from the first answer (rechecks scheduled since it is kept), the numbers asked with */
  patient?: RecheckPatient;
}

export interface RecheckPatient {
  name?: string;
  nameKana?: string;
  birthdate?: string;
  insurerNumber?: string;
  symbolNumber?: string;
}

/** The wire view of a recheck (rechecks.list, the CLI): the admin page's RecheckItem plus the codes. */
export interface RecheckView extends RecheckItem {
  inquiryId: string;
  from: 'card' | 'numbers';
  firstValidity: string;
  lastValidity?: string;
  lastError?: string;
  settledAt?: string;
  /** the answer in which the new eligibility appeared (state found) */
  found?: OutcomeSummary;
}

const DAY_MS = 24 * 3600_000;
const label = (v: string | undefined): string | undefined =>
  v === undefined ? undefined : (VALIDITY_LABEL[v as Validity] ?? v);

/** The new eligibility has appeared: 有効, or 無効（新しい資格あり） where there was none before. */
export function isFound(firstValidity: string, validity: string | undefined): boolean {
  return validity === '1' || (validity === '3' && firstValidity !== '3');
}

export function toRecheckView(e: RecheckEntry): RecheckView {
  const p = e.personal as RecheckPersonal;
  const v: RecheckView = {
    id: String(e.id),
    firstCheckedAt: e.createdAt.toISOString(),
    until: e.until.toISOString(),
    attempts: e.attempts,
    state: e.state,
    client: e.client,
    inquiryId: p.inquiryId,
    from: p.from === '1' ? 'card' : 'numbers',
    firstValidity: e.firstValidity,
  };
  if (e.state === 'scheduled' && e.nextAt) v.nextAt = e.nextAt.toISOString();
  const last = label(e.lastValidity);
  if (last !== undefined) v.lastResult = last;
  if (e.lastValidity !== undefined) v.lastValidity = e.lastValidity;
  if (e.lastError !== undefined) v.lastError = e.lastError;
  if (p.patientRef !== undefined) v.patientRef = p.patientRef;
  if (e.settledAt) v.settledAt = e.settledAt.toISOString();
  if (e.found !== undefined) v.found = e.found as OutcomeSummary;
  return v;
}

function recheckPatient(p: RecheckPersonal): RecheckPatient | undefined {
  const q = p.request?.query;
  const facts: RecheckPatient = {
    ...(p.name ? { name: p.name } : {}),
    ...(p.nameKana ? { nameKana: p.nameKana } : {}),
    ...(q?.birthdate ? { birthdate: q.birthdate } : {}),
    ...(q?.insurerNumber ? { insurerNumber: q.insurerNumber } : {}),
    ...(q?.symbol || q?.number ? { symbolNumber: [q.symbol, q.number].filter(Boolean).join('・') } : {}),
  };
  return Object.keys(facts).length ? facts : undefined;
}

/** What the admin page lists (src/admin/backend.ts: listRechecks). */
export function listRecheckItems(store: GatewayStore, o: { limit?: number } = {}): RecheckItem[] {
  // the patient for staff on the admin page only: the API's rechecks.list answers without it
  return store.rechecks.list(o).map((e) => {
    const patient = recheckPatient(e.personal as RecheckPersonal);
    return { ...toRecheckView(e), ...(patient ? { patient } : {}) };
  });
}

/** The numbers to ask again with, from a card answer's qualification. */
function numbersFromResult(result: InquiryResult): NumbersQuery | undefined {
  const r = result.results[0];
  if (!r?.insurerNumber || !r.number) return undefined;
  const q: NumbersQuery = {
    insurerNumber: r.insurerNumber.trim(),
    number: r.number,
    birthdate: r.birthdate,
    limitConsent: '0',
  };
  if (r.symbol) q.symbol = r.symbol;
  if (r.branch) q.branch = r.branch;
  try {
    return validateNumbersQuery(q);
  } catch {
    return undefined;
  }
}

export class RecheckJob implements RecheckScheduler {
  private running: Promise<RunSummary> | undefined;

  constructor(private readonly o: RecheckJobOptions) {}

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  /** Schedules a recheck for a lag answer (sets result.timeLagRecheck); anything else is left alone. */
  async consider(
    result: InquiryResult,
    check: {
      request?: QualificationRequest;
      clientId?: string | undefined;
      inquiryId: string;
      changedInsurer: boolean;
    },
  ): Promise<void> {
    const { o } = this;
    if (
      !o.enabled ||
      result.source !== 'central' ||
      result.status !== '1' ||
      result.validity === undefined ||
      !LAG_VALIDITIES.has(result.validity)
    )
      return;
    if (!check.changedInsurer && !o.all) return;
    let request = check.request;
    if (!request) {
      const query = numbersFromResult(result);
      if (!query) {
        result.timeLagRecheck = {
          scheduled: false,
          code: 'RECHECK_NO_NUMBERS',
          message:
            'Central answered with no insurance numbers, so the card check cannot be rechecked by numbers; check the new 資格確認書 when the patient brings it.',
        };
        return;
      }
      request = { confirmationDate: result.confirmationDate, institutionCode: o.institutionCode, query };
    }
    const now = this.now();
    const until = new Date(now.getTime() + o.windowDays * DAY_MS);
    const personal: RecheckPersonal = {
      request: { ...request, query: { ...request.query } },
      inquiryId: check.inquiryId,
      from: result.referenceClassification,
      ...(request.query.arbitraryId !== undefined ? { patientRef: request.query.arbitraryId } : {}),
      ...(result.results[0]?.name ? { name: result.results[0].name } : {}),
      ...(result.results[0]?.nameKana ? { nameKana: result.results[0].nameKana } : {}),
    };
    delete personal.request.fileId;
    try {
      const { id, duplicate } = await o.store.rechecks.add(
        {
          lookup: numbersLookup(request.query),
          client: check.clientId ?? 'unknown',
          validity: result.validity,
          until,
          nextAt: new Date(now.getTime() + DAY_MS),
          personal,
        },
        now,
      );
      result.timeLagRecheck = { scheduled: true, id, until: until.toISOString(), duplicate };
      if (!duplicate) {
        o.logger.info('time-lag recheck scheduled', {
          event: 'recheck_scheduled',
          recheckId: id,
          validity: result.validity,
          until: until.toISOString(),
        });
        o.events.publish('rechecks', 'recheck.scheduled', {
          recheckId: id,
          inquiryId: check.inquiryId,
          validity: result.validity,
          until: until.toISOString(),
          ...(check.clientId ? { clientId: check.clientId } : {}),
        });
      }
    } catch (e) {
      const code = isOnshiError(e) ? e.code : 'INTERNAL';
      o.logger.error('could not store a time-lag recheck', { event: 'recheck_store_failed', code });
      result.timeLagRecheck = {
        scheduled: false,
        code: 'RECHECK_NOT_STORED',
        message: `The daily recheck could not be stored (${code}): check this patient again in a few days.`,
      };
    }
  }

  /** One pass over every scheduled recheck (the daily job, or `rechecks.run`). One run at a time. */
  run(): Promise<RunSummary> {
    this.running ??= this.runOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async runOnce(): Promise<RunSummary> {
    const { o } = this;
    const summary: RunSummary = { checked: 0, found: 0, expired: 0, failed: 0, stillWaiting: 0 };
    for (const entry of o.store.rechecks.list({ state: 'scheduled', limit: 10_000 })) {
      const now = this.now();
      const p = entry.personal as RecheckPersonal;
      const ids = {
        recheckId: entry.id,
        inquiryId: p.inquiryId,
        clientId: entry.client,
        ...(p.patientRef !== undefined ? { patientRef: p.patientRef } : {}),
      };
      if (now.getTime() >= entry.until.getTime()) {
        await o.store.rechecks.update(entry.id, { state: 'expired' }, now);
        summary.expired++;
        o.logger.info('time-lag recheck window ended', {
          event: 'recheck_expired',
          recheckId: entry.id,
          attempts: entry.attempts,
        });
        o.events.publish('rechecks', 'recheck.expired', {
          ...ids,
          firstValidity: entry.firstValidity,
          ...(entry.lastValidity ? { lastValidity: entry.lastValidity } : {}),
          attempts: entry.attempts,
          until: entry.until.toISOString(),
          message:
            'The new eligibility did not appear within the recheck window: ask the patient for the new 資格確認書 or contact the insurer.',
        });
        continue;
      }
      summary.checked++;
      const request: QualificationRequest = { ...p.request, fileId: `recheck-${entry.id}-${entry.attempts + 1}` };
      let result: InquiryResult;
      try {
        result = toInquiryResult(
          await o.central.searchByNumbers(request, {
            deadline: Date.now() + o.timeoutMs,
            idempotencyKey: randomUUID(),
          }),
        );
      } catch (e) {
        // The line or central failed: try again on the next run, inside the window.
        const code = isOnshiError(e) ? e.code : 'INTERNAL';
        summary.failed++;
        await o.store.rechecks.update(
          entry.id,
          { state: 'scheduled', error: code, nextAt: new Date(now.getTime() + DAY_MS) },
          now,
        );
        o.logger.warn('a time-lag recheck failed; tried again next time', {
          event: 'recheck_failed',
          recheckId: entry.id,
          code,
        });
        continue;
      }
      if (result.status === '1' && isFound(entry.firstValidity, result.validity)) {
        const found = summarize(result);
        await o.store.rechecks.update(entry.id, { state: 'found', validity: result.validity!, found }, now);
        summary.found++;
        o.logger.info('time-lag recheck: the new eligibility appeared', {
          event: 'recheck_found',
          recheckId: entry.id,
          validity: result.validity,
        });
        o.events.publish('rechecks', 'recheck.found', {
          ...ids,
          firstValidity: entry.firstValidity,
          firstValidityLabel: label(entry.firstValidity),
          validity: result.validity,
          validityLabel: result.validityLabel,
          confirmationDate: p.request.confirmationDate,
          found,
          message:
            '新しい資格が確認できました。差額の精算をご検討ください。 The new eligibility is now registered: the clinic can settle the difference it charged.',
        });
      } else {
        summary.stillWaiting++;
        await o.store.rechecks.update(
          entry.id,
          {
            state: 'scheduled',
            ...(result.validity ? { validity: result.validity } : {}),
            nextAt: new Date(now.getTime() + DAY_MS),
          },
          now,
        );
      }
    }
    o.logger.info('time-lag rechecks ran', { event: 'rechecks_ran', ...summary });
    return summary;
  }

  /** Waits for a run still going (the jobs service has stopped scheduling new ones). */
  async stop(): Promise<void> {
    await this.running?.catch(() => undefined);
  }
}
