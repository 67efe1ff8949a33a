/**
 * The kiosks on the admin page: pair a tablet (a one-time code to type on the kiosk), the paired
 * kiosks, the faces waiting for a staff confirmation (資格確認限定型), and the last kiosk checks —
 * patient, validity, warnings, the consents central received. The kiosk itself never sees these.
 * The daemon passes its kiosk desk (src/kiosk/desk.ts) in; this module only knows its shape.
 */
import type { Req } from './http/request.js';
import { redirect, send } from './http/request.js';
import { csrfField, html, layout, type PageContext } from './views.js';

export interface KioskDeskView {
  pairing: { issue(reader: string, name: string): { code: string; expiresAt: string } };
  kiosks(): { id: string; name: string; reader: string; createdAt: string }[];
  facesWaiting(): { kioskId: string; kiosk: string; reader: string; since: string }[];
  confirmFace(kioskId: string): void;
  recent(): {
    at: string;
    kiosk: string;
    mode: string;
    outcome: string;
    patient?: string;
    patientKana?: string;
    birthdate?: string;
    validity?: string;
    warnings: string[];
    consentsSent: string[];
    code?: string;
  }[];
}

const L = (ctx: PageContext, ja: string, en: string): string => (ctx.lang === 'ja' ? ja : en);

function page(ctx: PageContext, desk: KioskDeskView, code?: { code: string; expiresAt: string }): string {
  const faces = desk.facesWaiting();
  const rows = desk.recent();
  return layout(
    ctx,
    L(ctx, 'キオスク', 'Kiosks'),
    html`${code ? html`<p>${L(ctx, 'キオスクのペアリング画面でこのコードを入力してください（1回限り、期限', 'Type this code on the kiosk pairing screen (once, until')} ${code.expiresAt}）:</p><p id="pairing-code" class="big">${code.code}</p>` : ''}
<form method="post" action="/kiosks/pair">${csrfField(ctx)}
<label>${L(ctx, 'キオスク名', 'Kiosk name')} <input name="name" required maxlength="64" value="kiosk"></label>
<label>${L(ctx, 'カードリーダー', 'Card reader')} <input name="reader" required maxlength="128"></label>
<button type="submit" id="pair">${L(ctx, 'ペアリングコードを発行', 'Issue a pairing code')}</button></form>
<h3>${L(ctx, '顔確認待ち', 'Faces to confirm')}</h3>
${faces.length === 0 ? html`<p>${L(ctx, 'なし', 'none')}</p>` : faces.map((f) => html`<form method="post" action="/kiosks/face">${csrfField(ctx)}<input type="hidden" name="kiosk" value="${f.kioskId}"><span>${f.kiosk} (${f.reader}) ${f.since}</span> <button type="submit" class="confirm-face">${L(ctx, '顔写真と本人を確認した', 'Face checked against the card')}</button></form>`)}
<h3>${L(ctx, '最近のキオスク確認', 'Last kiosk checks')}</h3>
<table id="kiosk-checks"><thead><tr><th>${L(ctx, '日時', 'At')}</th><th>${L(ctx, 'キオスク', 'Kiosk')}</th><th>${L(ctx, '患者', 'Patient')}</th><th>${L(ctx, '資格', 'Validity')}</th><th>${L(ctx, '同意（送信）', 'Consents sent')}</th><th>${L(ctx, '注意', 'Warnings')}</th></tr></thead><tbody>
${rows.map((r) => html`<tr><td>${r.at}</td><td>${r.kiosk} (${r.mode})</td><td>${r.patient ?? ''} ${r.patientKana ?? ''} ${r.birthdate ?? ''}</td><td>${r.outcome === 'answered' ? (r.validity ?? '') : `${r.outcome} ${r.code ?? ''}`}</td><td>${r.consentsSent.join(', ')}</td><td>${r.warnings.join(' / ')}</td></tr>`)}
</tbody></table>
<h3>${L(ctx, 'ペアリング済みのキオスク', 'Paired kiosks')}</h3>
<ul>${desk.kiosks().map((k) => html`<li>${k.name} — ${k.reader} (${k.id}, ${k.createdAt})</li>`)}</ul>
<p>${L(ctx, 'キオスクの解除は「クライアント」でトークンを失効させます。', 'Unpair a kiosk by revoking its token under Clients.')}</p>`,
  );
}

/** GET /kiosks and the POSTs under it (the admin routes have checked the session and the CSRF token). */
export function kioskRoute(req: Req, ctx: PageContext, desk: KioskDeskView | undefined, form?: URLSearchParams): void {
  if (!desk) return send(req, 404, layout(ctx, 'Kiosks', html`<p>kiosk.enabled is false</p>`));
  if (!form) return send(req, 200, page(ctx, desk));
  if (req.path === '/kiosks/pair') {
    const reader = (form.get('reader') ?? '').trim().slice(0, 128);
    const name = (form.get('name') ?? '').trim() || 'kiosk';
    if (!reader) return send(req, 400, page(ctx, desk));
    return send(req, 200, page(ctx, desk, desk.pairing.issue(reader, name)));
  }
  if (req.path === '/kiosks/face') {
    try {
      desk.confirmFace(form.get('kiosk') ?? '');
    } catch {
      /* it stopped waiting (card lifted, idle): the page shows what is left */
    }
  }
  return redirect(req, '/kiosks');
}
