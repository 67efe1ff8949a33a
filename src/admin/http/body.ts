/** Request bodies, read with a size limit (checked against Content-Length first, then as they arrive). */
import type { IncomingMessage } from 'node:http';
import { OnshiError } from '../../core/errors.js';

export type AdminServerErrorCode = 'ADMIN_BODY_TOO_LARGE' | 'ADMIN_BAD_REQUEST';

export const FORM_LIMIT = 64 * 1024;
export const UPLOAD_LIMIT = 16 * 1024 * 1024;

/** The whole body; ADMIN_BODY_TOO_LARGE past `limit` bytes. */
export function readBody(raw: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(raw.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(new OnshiError<AdminServerErrorCode>('ADMIN_BODY_TOO_LARGE', 'request body too large'));
      raw.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    raw.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new OnshiError<AdminServerErrorCode>('ADMIN_BODY_TOO_LARGE', 'request body too large'));
        raw.destroy();
        return;
      }
      chunks.push(c);
    });
    raw.on('end', () => resolve(Buffer.concat(chunks)));
    raw.on('error', reject);
  });
}

/** An application/x-www-form-urlencoded body (at most FORM_LIMIT bytes). */
export async function readForm(raw: IncomingMessage): Promise<URLSearchParams> {
  return new URLSearchParams((await readBody(raw, FORM_LIMIT)).toString('utf8'));
}
