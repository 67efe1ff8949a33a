/**
 * Token changes into the audit chain, whoever made them: the admin page, `onshi clients` as root
 * while the daemon runs, or while it was stopped. The daemon compares the clients file with the
 * last state it audited (kept in the store's meta table) at start and whenever the file changes,
 * so no token appears or disappears without an entry.
 */
import { unwatchFile, watchFile } from 'node:fs';
import type { AuditInput } from '../cache/index.js';
import type { ClientRecord, ClientStore } from './tokens.js';

/** id → revoked? — all the audit needs to know about a token (never its hash). */
export type TokenSnapshot = Record<string, { name: string; revoked: boolean }>;

export const TOKEN_SNAPSHOT_META = 'gateway.tokens_audited';

export function snapshotOf(clients: readonly ClientRecord[]): TokenSnapshot {
  return Object.fromEntries(clients.map((c) => [c.id, { name: c.name, revoked: c.revokedAt !== undefined }]));
}

/** The audit entries that take `before` to `after`, in a stable order. */
export function tokenChanges(before: TokenSnapshot, after: TokenSnapshot): AuditInput[] {
  const out: AuditInput[] = [];
  for (const [id, c] of Object.entries(after)) {
    const was = before[id];
    const target = `${c.name} (${id})`.slice(0, 128);
    if (!was) out.push({ kind: 'token', actor: 'system', action: 'token.add', target, outcome: 'ok' });
    if (c.revoked && !was?.revoked)
      out.push({ kind: 'token', actor: 'system', action: 'token.revoke', target, outcome: 'ok' });
  }
  for (const [id, c] of Object.entries(before)) {
    if (!(id in after))
      out.push({
        kind: 'token',
        actor: 'system',
        action: 'token.removed',
        target: `${c.name} (${id})`.slice(0, 128),
        outcome: 'ok',
      });
  }
  return out;
}

export interface TokenAuditDeps {
  clients: ClientStore;
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): Promise<void>;
  append(entry: AuditInput): Promise<unknown>;
  onError(e: unknown): void;
}

/** Audits what changed since the last run now, then on every change of the file. Returns stop(). */
export function watchTokenChanges(d: TokenAuditDeps, pollMs = 2000): () => void {
  let running: Promise<void> = Promise.resolve();
  const sync = (): void => {
    running = running
      .then(async () => {
        const raw = d.getMeta(TOKEN_SNAPSHOT_META);
        const before = raw ? (JSON.parse(raw) as TokenSnapshot) : {};
        const after = snapshotOf(d.clients.list());
        const changes = tokenChanges(before, after);
        if (changes.length === 0 && raw) return;
        for (const c of changes) await d.append(c);
        await d.setMeta(TOKEN_SNAPSHOT_META, JSON.stringify(after));
      })
      .catch(d.onError);
  };
  sync();
  const listener = (): void => sync();
  watchFile(d.clients.path, { interval: pollMs, persistent: false }, listener);
  return () => unwatchFile(d.clients.path, listener);
}
