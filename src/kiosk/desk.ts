/**
 * The staff's side of the kiosks (the admin page reads it): pairing codes, the paired kiosks, the
 * faces waiting for a staff confirmation (資格確認限定型), and the last kiosk checks with patient,
 * validity and warnings. Those rows are kept in memory only, the last few, and never go to a kiosk.
 */
import type { ConsentName } from '../checks/counter-advice.js';
import type { CardResult } from '../checks/card.js';
import { OnshiError } from '../core/errors.js';
import type { ClientStore } from '../api/tokens.js';
import { KioskPairing } from './pairing.js';

/** One kiosk check as staff see it. */
export interface KioskCheckRow {
  at: string;
  kiosk: string;
  reader: string;
  mode: 'pin' | 'visual';
  outcome: 'answered' | 'failed' | 'cancelled';
  patient?: string;
  patientKana?: string;
  birthdate?: string;
  validity?: string;
  warnings: string[];
  /** the consents the check carried to central */
  consentsSent: ConsentName[];
  /** a failed or cancelled check: its code */
  code?: string;
}

export interface FaceWait {
  kioskId: string;
  kiosk: string;
  reader: string;
  since: string;
}

/** How many kiosk checks the staff view keeps (memory only). */
export const KIOSK_ROWS_KEPT = 20;

export class KioskDesk {
  readonly pairing: KioskPairing;
  private readonly rows: KioskCheckRow[] = [];
  private readonly faces = new Map<string, FaceWait & { confirm(): void }>();

  constructor(
    private readonly clients: ClientStore,
    private readonly now: () => number = Date.now,
  ) {
    this.pairing = new KioskPairing(clients, now);
  }

  /** The paired kiosks that are not revoked. */
  kiosks(): { id: string; name: string; reader: string; createdAt: string }[] {
    return this.clients
      .list()
      .filter((c) => !c.revokedAt && c.reader !== undefined)
      .map((c) => ({ id: c.id, name: c.name, reader: c.reader!, createdAt: c.createdAt }));
  }

  recent(): KioskCheckRow[] {
    return this.rows.map((r) => ({ ...r, warnings: [...r.warnings], consentsSent: [...r.consentsSent] }));
  }

  record(row: Omit<KioskCheckRow, 'at'>): void {
    this.rows.unshift({ at: new Date(this.now()).toISOString(), ...row });
    this.rows.length = Math.min(this.rows.length, KIOSK_ROWS_KEPT);
  }

  /** A row from a card check's answer: the first result's person, the validity, every warning. */
  recordResult(k: { kiosk: string; reader: string; mode: 'pin' | 'visual' }, r: CardResult): void {
    const first = r.results[0];
    this.record({
      ...k,
      outcome: 'answered',
      ...(first ? { patient: first.name, birthdate: first.birthdate } : {}),
      ...(first?.nameKana ? { patientKana: first.nameKana } : {}),
      validity: r.validityLabel ?? r.validity ?? r.unavailable?.message ?? r.resultMessage ?? '',
      warnings: [...r.warnings.map((w) => w.message), ...r.notices],
      // sentToCentral names every field carried (a "0" too): staff want the ones the patient gave.
      consentsSent: (r.consent?.sentToCentral ?? []).filter((n) => r.consent?.requested[n] === true),
    });
  }

  /** Waits until staff confirm the patient's face against the card (mode visual). */
  awaitFace(w: Omit<FaceWait, 'since'>, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const done = (): void => {
        this.faces.delete(w.kioskId);
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        done();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.faces.set(w.kioskId, {
        ...w,
        since: new Date(this.now()).toISOString(),
        confirm: () => {
          done();
          resolve();
        },
      });
    });
  }

  facesWaiting(): FaceWait[] {
    return [...this.faces.values()].map(({ kioskId, kiosk, reader, since }) => ({ kioskId, kiosk, reader, since }));
  }

  /** Staff have compared the face with the card's photo. */
  confirmFace(kioskId: string): void {
    const f = this.faces.get(kioskId);
    if (!f) throw new OnshiError('KIOSK_NOT_WAITING', 'that kiosk is not waiting for a face confirmation');
    f.confirm();
  }
}
