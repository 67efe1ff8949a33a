/**
 * The client for the central OQS Web API over the closed line: mutual TLS with the central CA
 * pinned (no system roots), the hostname checked, keep-alive, one deadline per request, and every
 * failure mapped to a typed error that says whether trying again could help.
 */
import { Agent, request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { OnshiError } from '../core/errors.js';
import {
  decodeBatchReceiptJson,
  decodeBatchReceiptXml,
  decodeBatchResultJson,
  decodeBatchResultXml,
  decodeResponseJson,
  decodeResponseXml,
  encodeBatchFetchJson,
  encodeBatchSubmitJson,
  encodeRequestJson,
  type BatchReceipt,
  type BatchResult,
  type BatchSubmitRequest,
} from '../oqs/index.js';
import type { QualificationRequest, QualificationResponse } from '../oqs/types.js';
import { WEB_API_PATHS } from '../oqs/web-api.js';

export type CentralErrorCode =
  | 'CENTRAL_UNREACHABLE' // no connection (refused, reset before an answer, DNS, route)
  | 'CENTRAL_TIMEOUT' // the deadline passed: the outcome at central is unknown
  | 'CENTRAL_TLS_FAILED' // the peer failed our pinned CA / hostname check, or refused our certificate
  | 'CENTRAL_AUTH_FAILED'
  | 'CENTRAL_UNAVAILABLE' // 5xx / 429: try later (details.retryAfterMs when central said so)
  | 'CENTRAL_IN_FLIGHT' // 409: the same idempotency key is still being processed
  | 'CENTRAL_REFUSED' // any other 4xx: trying the same request again will not help
  | 'CENTRAL_MALFORMED'; // the answer could not be decoded

export class CentralError extends OnshiError<CentralErrorCode> {}

export interface CentralClientOptions {
  url: string;
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
  servername?: string;
  userId: string;
  password?: string;
  /** the longest any single request may take, whatever deadline the caller gives */
  timeoutMs: number;
  maxResponseBytes?: number;
}

export interface CallOptions {
  /** absolute time (ms since epoch) by which the answer must be in */
  deadline: number;
  idempotencyKey?: string;
}

export interface CardSearchInput {
  certificate: Buffer;
  /** the challenge central issued and the card's signature over it (mode pin) */
  challenge?: string;
  signature?: Buffer;
  /** 資格確認限定型: no PIN, staff confirmed the face photo; certificate only */
  visual?: boolean;
  /**
   * A re-verification of a check made while the line was down: the card signed the gateway's own
   * nonce after a local PIN check (signedAt = when). Central checks the signature with the certificate.
   */
  offlineProof?: { nonce: Buffer; signature: Buffer; signedAt: string };
  confirmationDate: string;
  institutionCode: string;
  limitConsent: '0' | '1';
  /** the patient's other consents, by OQS block name (e.g. PharmacistsInfo) → OQSCD016 flag */
  consents?: Record<string, string>;
}

interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const TLS_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|alert|ssl|handshake/i;

export class CentralClient {
  private readonly agent: Agent;
  private readonly base: URL;
  private token: Promise<string> | undefined;
  private readonly maxBytes: number;

  constructor(private readonly opts: CentralClientOptions) {
    this.base = new URL(opts.url);
    this.maxBytes = opts.maxResponseBytes ?? 4 * 1024 * 1024;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 16,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      minVersion: 'TLSv1.2',
      ...(opts.servername ? { servername: opts.servername } : {}),
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private skew: { skewMs: number; checkedAt: Date } | undefined;

  /** Our clock minus central's, from the Date header of central's last answer (1 s resolution). */
  clock(): { skewMs?: number; checkedAt?: Date } {
    return this.skew ? { ...this.skew } : {};
  }

  private noteDate(date: string | undefined): void {
    const t = date ? Date.parse(date) : NaN;
    // The header is truncated to the second: credit central half a second on average.
    if (!Number.isNaN(t)) this.skew = { skewMs: Date.now() - (t + 500), checkedAt: new Date() };
  }

  async searchByNumbers(req: QualificationRequest, call: CallOptions): Promise<QualificationResponse> {
    const answer = await this.authorized(
      WEB_API_PATHS.search,
      Buffer.from(JSON.stringify(encodeRequestJson(req))),
      call,
    );
    return decodeAnswer(answer);
  }

  async cardChallenge(call: CallOptions): Promise<string> {
    const answer = await this.authorized(WEB_API_PATHS.cardChallenge, Buffer.from('{}'), call);
    const json = parseJson(answer.body) as { challenge?: unknown };
    if (typeof json.challenge !== 'string')
      throw new CentralError('CENTRAL_MALFORMED', 'the challenge answer has no challenge');
    return json.challenge;
  }

  async searchByCard(input: CardSearchInput, call: CallOptions): Promise<QualificationResponse> {
    const body = {
      certificate: input.certificate.toString('base64'),
      ...(input.challenge !== undefined ? { challenge: input.challenge } : {}),
      ...(input.signature !== undefined ? { signature: input.signature.toString('base64') } : {}),
      ...(input.visual ? { visual: true } : {}),
      ...(input.offlineProof
        ? {
            offlineProof: {
              nonce: input.offlineProof.nonce.toString('base64'),
              signature: input.offlineProof.signature.toString('base64'),
              signedAt: input.offlineProof.signedAt,
            },
          }
        : {}),
      confirmationDate: input.confirmationDate,
      institutionCode: input.institutionCode,
      limitConsent: input.limitConsent,
      ...(input.consents ? { consents: input.consents } : {}),
    };
    return decodeAnswer(await this.authorized(WEB_API_PATHS.cardSearch, Buffer.from(JSON.stringify(body)), call));
  }

  /** The JPKI certificate revocation list as central serves it (DER); the caller verifies its signature. */
  async cardCrl(call: CallOptions): Promise<Buffer> {
    return (await this.authorized(WEB_API_PATHS.cardCrl, Buffer.from('{}'), call)).body;
  }

  /**
   * 一括照会, step 1 (spec §5): the entries, each with its own arbitraryId → the receipt holding the
   * reception number (SegmentOfResult 9 = refused, see errorCode). Give an idempotency key and keep
   * it until the receipt is stored: a resend under it replays the same receipt, never a second batch.
   */
  async submitBatch(req: BatchSubmitRequest, call: CallOptions): Promise<BatchReceipt> {
    const answer = await this.authorized(
      WEB_API_PATHS.batchSubmit,
      Buffer.from(JSON.stringify(encodeBatchSubmitJson(req))),
      call,
    );
    return decodeWith(answer, decodeBatchReceiptXml, decodeBatchReceiptJson);
  }

  /**
   * 一括照会, step 2: the results by reception number (batchOutcome tells 処理中 / failed / done).
   * A read, sent without an idempotency key so that a later fetch never replays an earlier 処理中.
   */
  async fetchBatch(
    receptionNumber: string,
    institutionCode: string,
    call: Pick<CallOptions, 'deadline'>,
  ): Promise<BatchResult> {
    const body = Buffer.from(JSON.stringify(encodeBatchFetchJson({ institutionCode, receptionNumber })));
    return decodeWith(
      await this.authorized(WEB_API_PATHS.batchFetch, body, { deadline: call.deadline }),
      decodeBatchResultXml,
      decodeBatchResultJson,
    );
  }

  /**
   * The link probe: one real round trip through mutual TLS to central's login (the cached idToken
   * would answer without touching the line). The new token is not kept; the current one stays.
   */
  async probe(call: CallOptions): Promise<void> {
    const a = await this.post(WEB_API_PATHS.auth, this.loginBody(), {}, call.deadline);
    if (a.status === 401 || a.status === 403)
      throw new CentralError('CENTRAL_AUTH_FAILED', `central refused the login (${a.status})`, {
        details: { status: a.status },
      });
    checkStatus(a);
  }

  private loginBody(): Buffer {
    return Buffer.from(
      JSON.stringify({ userId: this.opts.userId, ...(this.opts.password ? { password: this.opts.password } : {}) }),
    );
  }

  private async authorized(path: string, body: Buffer, call: CallOptions): Promise<RawAnswer> {
    const send = async (): Promise<RawAnswer> =>
      this.post(
        path,
        body,
        {
          authorization: await this.idToken(call),
          ...(call.idempotencyKey ? { 'idempotency-key': call.idempotencyKey } : {}),
        },
        call.deadline,
      );
    let answer = await send();
    if (answer.status === 401) {
      // The token expired: 401 means nothing was processed, so one new login and one resend are safe.
      this.token = undefined;
      answer = await send();
    }
    checkStatus(answer);
    return answer;
  }

  /**
   * The login every request shares runs on central's own timeout, not on the deadline of the
   * request that happened to start it: a caller in a hurry must not fail the others' login. Each
   * caller waits for it only until its own deadline.
   */
  private idToken(call: CallOptions): Promise<string> {
    if (!this.token) {
      const p = this.post(WEB_API_PATHS.auth, this.loginBody(), {}, Date.now() + this.opts.timeoutMs).then((a) => {
        if (a.status === 401 || a.status === 403)
          throw new CentralError('CENTRAL_AUTH_FAILED', `central refused the login (${a.status})`, {
            details: { status: a.status },
          });
        checkStatus(a);
        const token = (parseJson(a.body) as { result?: { idToken?: unknown } }).result?.idToken;
        if (typeof token !== 'string') throw new CentralError('CENTRAL_MALFORMED', 'the login answer has no idToken');
        return token;
      });
      this.token = p;
      p.catch(() => {
        if (this.token === p) this.token = undefined;
      });
    }
    return this.untilDeadline(this.token, call.deadline);
  }

  private untilDeadline<T>(p: Promise<T>, deadline: number): Promise<T> {
    const budget = deadline - Date.now();
    const late = (): CentralError =>
      new CentralError('CENTRAL_TIMEOUT', `no login within the ${Math.max(0, budget)} ms left`, {
        retryable: true,
        details: { budgetMs: Math.max(0, budget), timeoutMs: this.opts.timeoutMs },
      });
    if (budget <= 0) return Promise.reject(late());
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(late()), budget);
      p.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }

  private async post(
    path: string,
    body: Buffer,
    headers: Record<string, string>,
    deadline: number,
  ): Promise<RawAnswer> {
    try {
      return await this.postOnce(path, body, headers, deadline);
    } catch (e) {
      // A kept-alive socket the server had already closed: nothing reached central, resend once.
      if ((e as { reusedSocket?: boolean }).reusedSocket && (e as CentralError).code === 'CENTRAL_UNREACHABLE') {
        return this.postOnce(path, body, headers, deadline);
      }
      throw e;
    }
  }

  private postOnce(path: string, body: Buffer, headers: Record<string, string>, deadline: number): Promise<RawAnswer> {
    const budget = Math.min(deadline - Date.now(), this.opts.timeoutMs);
    if (budget <= 0)
      return Promise.reject(
        new CentralError('CENTRAL_TIMEOUT', 'no time left before the deadline', {
          retryable: true,
          details: { budgetMs: 0, timeoutMs: this.opts.timeoutMs },
        }),
      );
    return new Promise<RawAnswer>((resolve, reject) => {
      let settled = false;
      let gotResponse = false;
      const finish = (err: CentralError | undefined, value?: RawAnswer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          (err as { reusedSocket?: boolean }).reusedSocket = req.reusedSocket && !gotResponse;
          reject(err);
        } else resolve(value!);
      };
      const req = httpsRequest({
        protocol: 'https:',
        hostname: this.base.hostname.replace(/^\[|\]$/g, ''),
        port: this.base.port || 443,
        path: this.base.pathname.replace(/\/$/, '') + path,
        method: 'POST',
        agent: this.agent,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'content-length': body.length,
          accept: 'application/json, application/xml',
          ...headers,
        },
      });
      const timer = setTimeout(() => {
        finish(
          new CentralError('CENTRAL_TIMEOUT', `central did not answer within ${budget} ms`, {
            retryable: true,
            // The link tells a caller's own short budget from central's silence by these (link.ts).
            details: { budgetMs: budget, timeoutMs: this.opts.timeoutMs },
          }),
        );
        req.destroy();
      }, budget);
      req.on('response', (res) => {
        gotResponse = true;
        this.noteDate(res.headers.date);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > this.maxBytes) {
            finish(new CentralError('CENTRAL_MALFORMED', `the answer is larger than ${this.maxBytes} bytes`));
            req.destroy();
          } else chunks.push(c);
        });
        res.on('end', () =>
          finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('aborted', () =>
          finish(new CentralError('CENTRAL_MALFORMED', 'the answer was cut off', { retryable: true })),
        );
        res.on('error', (e) =>
          finish(
            new CentralError('CENTRAL_MALFORMED', `the answer was cut off: ${e.message}`, {
              retryable: true,
              cause: e,
            }),
          ),
        );
      });
      req.on('error', (e: NodeJS.ErrnoException) => finish(mapSocketError(e, gotResponse)));
      req.end(body);
    });
  }
}

function mapSocketError(e: NodeJS.ErrnoException, gotResponse: boolean): CentralError {
  const code = e.code ?? '';
  if (gotResponse)
    return new CentralError('CENTRAL_MALFORMED', `the answer was cut off (${code || e.message})`, {
      retryable: true,
      cause: e,
    });
  if (TLS_ERRORS.test(code) || TLS_ERRORS.test(e.message)) {
    return new CentralError('CENTRAL_TLS_FAILED', `TLS with central failed: ${code || e.message}`, {
      details: { reason: code || e.message },
      cause: e,
    });
  }
  return new CentralError('CENTRAL_UNREACHABLE', `central is unreachable (${code || e.message})`, {
    retryable: true,
    details: { reason: code },
    cause: e,
  });
}

function checkStatus(a: RawAnswer): void {
  if (a.status >= 200 && a.status < 300) return;
  const detail = errorOf(a.body);
  const details: Record<string, unknown> = { status: a.status, ...(detail.code ? { centralCode: detail.code } : {}) };
  if (a.status === 429 || a.status >= 500) {
    const retryAfterMs = parseRetryAfter(a.headers['retry-after']);
    if (retryAfterMs !== undefined) details.retryAfterMs = retryAfterMs;
    throw new CentralError('CENTRAL_UNAVAILABLE', `central is unavailable (${a.status})`, { retryable: true, details });
  }
  if (a.status === 409)
    throw new CentralError('CENTRAL_IN_FLIGHT', 'central is still processing the same request', {
      retryable: true,
      details,
    });
  if (a.status === 401) throw new CentralError('CENTRAL_AUTH_FAILED', 'central refused our login', { details });
  throw new CentralError(
    'CENTRAL_REFUSED',
    `central refused the request (${a.status}${detail.message ? `: ${detail.message}` : ''})`,
    { details },
  );
}

export function parseRetryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined || s === '') return undefined;
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

function errorOf(body: Buffer): { code?: string; message?: string } {
  try {
    const e = (JSON.parse(body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } }).error;
    return {
      ...(typeof e?.code === 'string' ? { code: e.code } : {}),
      ...(typeof e?.message === 'string' ? { message: e.message } : {}),
    };
  } catch {
    return {};
  }
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new CentralError('CENTRAL_MALFORMED', 'the answer is not JSON');
  }
}

/** The Web API answers JSON; a terminal-style endpoint may answer XML. Both go through the strict codecs. */
function decodeAnswer(a: RawAnswer): QualificationResponse {
  return decodeWith(a, decodeResponseXml, decodeResponseJson);
}

function decodeWith<T>(a: RawAnswer, fromXml: (body: Buffer) => T, fromJson: (json: unknown) => T): T {
  const type = String(a.headers['content-type'] ?? '');
  try {
    return /xml/i.test(type) ? fromXml(a.body) : fromJson(parseJson(a.body));
  } catch (e) {
    if (e instanceof CentralError) throw e;
    const code = (e as { code?: string }).code;
    throw new CentralError('CENTRAL_MALFORMED', `central's answer was rejected: ${(e as Error).message}`, {
      details: { reason: code },
      cause: e,
    });
  }
}
