/**
 * マイナ保険証 use: one successful check counted on its JST day; the day's distinct patients kept
 * as counters beside it, so they outlive the patient hashes. Before hashes are pruned, their
 * month's distinct counts go to usage_months (once: a month is closed by then).
 */
import type Database from 'better-sqlite3';
import { OnshiError } from '../../core/errors.js';
import type { StoreErrorCode } from '../types.js';
import type { Op } from './op.js';

const invalid = (message: string): OnshiError<StoreErrorCode> =>
  new OnshiError<StoreErrorCode>('STORE_INPUT_INVALID', message);

const METHOD_COLUMN = { card_pin: 'card_pin', card_visual: 'card_visual', numbers: 'numbers' } as const;

export function createUsageOps(db: Database.Database) {
  const s = {
    day: db.prepare('INSERT INTO usage_days (day) VALUES (?) ON CONFLICT (day) DO NOTHING'),
    count: Object.fromEntries(
      Object.entries(METHOD_COLUMN).map(([m, col]) => [
        m,
        db.prepare(`UPDATE usage_days SET ${col} = ${col} + 1 WHERE day = ?`),
      ]),
    ) as Record<keyof typeof METHOD_COLUMN, Database.Statement>,
    seen: db.prepare('SELECT card FROM usage_patients WHERE day = ? AND patient = ?').pluck(),
    addPatient: db.prepare('INSERT INTO usage_patients (day, patient, card) VALUES (?, ?, ?)'),
    cardPatient: db.prepare('UPDATE usage_patients SET card = 1 WHERE day = ? AND patient = ?'),
    dayPatients: db.prepare(
      'UPDATE usage_days SET patients = patients + ?, card_patients = card_patients + ? WHERE day = ?',
    ),
    closeMonths: db.prepare(
      `INSERT OR IGNORE INTO usage_months (month, patients, card_patients)
       SELECT substr(day, 1, 7), COUNT(DISTINCT patient), COUNT(DISTINCT CASE WHEN card = 1 THEN patient END)
       FROM usage_patients WHERE day < ? GROUP BY 1`,
    ),
    prune: db.prepare('DELETE FROM usage_patients WHERE day < ?'),
  };
  const usageRecord: Op<'usageRecord'> = ({ day, method, patientHex, pruneBeforeDay }) => {
    if (
      !/^\d{4}-\d{2}-\d{2}$/.test(day) ||
      (pruneBeforeDay !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(pruneBeforeDay))
    )
      throw invalid('usage days are YYYY-MM-DD');
    if (!(method in METHOD_COLUMN)) throw invalid('usage method must be card_pin, card_visual or numbers');
    if (pruneBeforeDay !== undefined) {
      s.closeMonths.run(pruneBeforeDay);
      s.prune.run(pruneBeforeDay);
    }
    s.day.run(day);
    s.count[method].run(day);
    if (patientHex === undefined) return { newPatient: false };
    if (!/^[0-9a-f]{64}$/.test(patientHex)) throw invalid('usage patient must be a 32-byte hash');
    const patient = Buffer.from(patientHex, 'hex');
    const card = method === 'numbers' ? 0 : 1;
    const seen = s.seen.get(day, patient) as number | undefined;
    if (seen === undefined) {
      s.addPatient.run(day, patient, card);
      s.dayPatients.run(1, card, day);
      return { newPatient: true };
    }
    if (card === 1 && seen === 0) {
      s.cardPatient.run(day, patient);
      s.dayPatients.run(0, 1, day);
    }
    return { newPatient: false };
  };
  return { usageRecord };
}
