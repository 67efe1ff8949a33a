/**
 * The central OQS simulator: an HTTPS server that demands a client certificate from the gateway,
 * with endpoints modelled on the OQS Web API (auth → idToken, then search), the card flow
 * (challenge → signed search), idempotency keys, and a loopback control API for tests.
 */
import { createHash, randomBytes, verify as verifySignature, X509Certificate } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { decodeRequestJson, encodeResponseJson } from '../../oqs/index.js';
import type { QualificationResponse, Validity } from '../../oqs/types.js';
import { WEB_API_PATHS } from '../../oqs/web-api.js';
import type { SandboxPki } from '../pki.js';
import { HttpError, objectBody, readBody, readJson, sendError, sendJson, sendJsonText } from '../http.js';
import {
  addDays,
  eligibilityByNumbers,
  eligibilityByPerson,
  type Eligibility,
  peopleRows,
  seedPopulation,
  type SimPerson,
  type SimQualification,
  toResult,
} from './population.js';
import { certificateGraceEnd, timestampJst, todayJst } from '../../oqs/dates.js';
import { SimBatches } from './batch.js';

export interface CentralSettings {
  latencyMs: number;
  jitterMs: number;
  /** fraction 0..1 of searches answered with errorStatus */
  errorRate: number;
  errorStatus: number;
  /** seconds, sent as Retry-After with 503/429 */
  retryAfterSec: number;
  /** the simulated processing day YYYYMMDD; null = today in Japan */
  today: string | null;
}

/** A one-shot answer for the next search, for hostile-input tests. */
export interface CannedResponse {
  status: number;
  contentType: string;
  body: string;
  encoding?: 'utf8' | 'base64';
}

export interface CentralStats {
  auths: number;
  searches: number;
  cardSearches: number;
  replays: number;
  conflicts: number;
  keyMismatches: number;
  injectedErrors: number;
  /** searches actually executed per idempotency key: >1 would be a duplicate effect */
  effectsByKey: Record<string, number>;
}

interface StoredAnswer {
  hash: string;
  state: 'inflight' | 'done';
  status: number;
  body: unknown;
}

const TOKEN_TTL_MS = 60 * 60_000;
const CHALLENGE_TTL_MS = 5 * 60_000;
/** how long after a local PIN check the offline proof is still accepted */
const OFFLINE_PROOF_MAX_AGE_MS = 30 * 24 * 3600_000;

export interface CentralSimOptions {
  pki: SandboxPki;
  host?: string;
  port?: number;
  controlPort?: number;
  /** where the control API listens (default 127.0.0.1; the IPsec sandbox's management link) */
  controlHost?: string;
  people?: SimPerson[];
  userId?: string;
  /** serial numbers (hex) of revoked card certificates */
  revokedSerials?: string[];
}

export class CentralSim {
  readonly people: SimPerson[];
  /** the simulator's day 1 (YYYYMMDD, JST): `onshi sim day N` sets the processing day to day1 + N − 1 */
  readonly day1: string;
  /** 一括照会 (src/sim/central/batch.ts) */
  readonly batches: SimBatches;
  readonly settings: CentralSettings = {
    latencyMs: 0,
    jitterMs: 0,
    errorRate: 0,
    errorStatus: 503,
    retryAfterSec: 1,
    today: null,
  };
  stats: CentralStats = CentralSim.emptyStats();
  /** the consent blocks of each card search, as received (tests check what reached central) */
  readonly cardConsentsSeen: Record<string, unknown>[] = [];
  private readonly tokens = new Map<string, number>();
  private readonly answers = new Map<string, StoredAnswer>();
  private readonly challenges = new Map<string, number>();
  private readonly canned: CannedResponse[] = [];
  private readonly jpkiCa: X509Certificate;
  private readonly revoked: Set<string>;

  private constructor(
    private readonly server: HttpsServer,
    private readonly control: HttpServer,
    private readonly opts: CentralSimOptions,
  ) {
    this.day1 = todayJst();
    this.people = opts.people ?? seedPopulation(this.day1);
    this.batches = new SimBatches({ people: this.people, today: () => this.today() });
    this.jpkiCa = new X509Certificate(opts.pki.jpkiCa.certPem);
    this.revoked = new Set((opts.revokedSerials ?? []).map((s) => s.toLowerCase().replace(/^0+/, '')));
  }

  static async start(opts: CentralSimOptions): Promise<CentralSim> {
    const host = opts.host ?? '127.0.0.1';
    const server = createHttpsServer({
      key: opts.pki.centralServer.keyPem,
      cert: opts.pki.centralServer.certPem,
      ca: opts.pki.centralCa.certPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      keepAliveTimeout: 30_000,
    });
    const control = createHttpServer();
    const sim = new CentralSim(server, control, opts);
    server.on('request', (req, res) => void sim.handleApi(req, res));
    control.on('request', (req, res) => void sim.handleControl(req, res));
    await listen(server, opts.port ?? 0, host);
    await listen(control, opts.controlPort ?? 0, opts.controlHost ?? '127.0.0.1');
    return sim;
  }

  static emptyStats(): CentralStats {
    return {
      auths: 0,
      searches: 0,
      cardSearches: 0,
      replays: 0,
      conflicts: 0,
      keyMismatches: 0,
      injectedErrors: 0,
      effectsByKey: {},
    };
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `https://${this.opts.host ?? '127.0.0.1'}:${a.port}`;
  }

  get controlUrl(): string {
    return `http://${this.opts.controlHost ?? '127.0.0.1'}:${(this.control.address() as AddressInfo).port}`;
  }

  today(): string {
    return this.settings.today ?? todayJst();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.control.closeAllConnections();
    await Promise.all([new Promise((r) => this.server.close(r)), new Promise((r) => this.control.close(r))]);
  }

  // ---------------------------------------------------------------- the API behind mutual TLS

  private async handleApi(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.method !== 'POST') throw new HttpError(405, 'METHOD', 'POST only');
      switch (req.url) {
        case WEB_API_PATHS.auth:
          return this.auth(req, res);
        case WEB_API_PATHS.search:
          return await this.idempotent(req, res, (body) => this.search(body));
        case WEB_API_PATHS.cardChallenge:
          return await this.challenge(req, res);
        case WEB_API_PATHS.cardCrl:
          return await this.crl(req, res);
        case WEB_API_PATHS.cardSearch:
          return await this.idempotent(req, res, (body) => this.cardSearch(body));
        case WEB_API_PATHS.batchSubmit:
          return await this.idempotent(req, res, async (body) => this.batches.submit(body));
        case WEB_API_PATHS.batchFetch:
          return await this.idempotent(req, res, async (body) => this.batches.fetch(body));
        default:
          throw new HttpError(404, 'NOT_FOUND', `no endpoint ${req.url}`);
      }
    } catch (e) {
      if (e instanceof RetryAfterError) {
        return sendJson(
          res,
          e.status,
          { error: { code: e.code, message: e.message } },
          { 'retry-after': String(e.retryAfterSec) },
        );
      }
      sendError(res, e);
    }
  }

  private async auth(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await this.delay();
    const body = objectBody(await readJson(req));
    if (body.userId !== (this.opts.userId ?? 'sandbox')) throw new HttpError(401, 'AUTH_FAILED', 'unknown user');
    const idToken = randomBytes(24).toString('base64url');
    this.tokens.set(idToken, Date.now() + TOKEN_TTL_MS);
    this.stats.auths++;
    sendJson(res, 200, { result: { idToken, expiresIn: TOKEN_TTL_MS / 1000 } });
  }

  private requireToken(req: IncomingMessage): void {
    const token = req.headers.authorization ?? '';
    const exp = this.tokens.get(token);
    if (exp === undefined || exp < Date.now()) throw new HttpError(401, 'TOKEN_INVALID', 'missing or expired idToken');
  }

  /**
   * Idempotency-Key semantics: a repeated key with the same payload replays the stored answer; 409
   * while the first is still in flight; 422 when a key is reused with a different payload.
   */
  private async idempotent(
    req: IncomingMessage,
    res: ServerResponse,
    run: (body: unknown) => Promise<{ status: number; body: unknown }>,
  ): Promise<void> {
    this.requireToken(req);
    const raw = await readBody(req);
    // The latency runs from here: central's own work is part of it, not added on top (below).
    const arrived = performance.now();
    const canned = this.canned.shift();
    if (canned) {
      res.writeHead(canned.status, { 'content-type': canned.contentType });
      res.end(Buffer.from(canned.body, canned.encoding ?? 'utf8'));
      return;
    }
    if (this.settings.errorRate > 0 && Math.random() < this.settings.errorRate) {
      this.stats.injectedErrors++;
      throw new RetryAfterError(this.settings.errorStatus, this.settings.retryAfterSec);
    }
    const key = header(req, 'idempotency-key');
    const hash = createHash('sha256').update(raw).digest('hex');
    if (key) {
      const prior = this.answers.get(key);
      if (prior) {
        if (prior.hash !== hash) {
          this.stats.keyMismatches++;
          throw new HttpError(422, 'IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different payload');
        }
        if (prior.state === 'inflight') {
          this.stats.conflicts++;
          throw new HttpError(409, 'IDEMPOTENCY_IN_FLIGHT', 'the first request with this key is still being processed');
        }
        this.stats.replays++;
        return sendJson(res, prior.status, prior.body, { 'idempotent-replayed': 'true' });
      }
      this.answers.set(key, { hash, state: 'inflight', status: 0, body: undefined });
      this.stats.effectsByKey[key] = (this.stats.effectsByKey[key] ?? 0) + 1;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      if (key) this.answers.delete(key);
      throw new HttpError(400, 'BAD_JSON', 'request body is not JSON');
    }
    // Work first, then wait out the rest of the latency, then answer. Working after a timer of the
    // full latency added the simulator's own CPU time to every answer, and since timers in the same
    // millisecond fire together, the in-flight requests were then worked through one after the
    // other: the reference (N × latency / in flight) was missed by the simulator itself.
    let out: { status: number; body: unknown };
    try {
      out = await run(parsed);
    } catch (e) {
      // A refused request has no effect: the same key may be tried again (a refusal takes the latency too).
      await this.delay(arrived);
      if (key) this.answers.delete(key);
      throw e;
    }
    const text = JSON.stringify(out.body);
    // Processing time: the key is already registered, so a repeat now sees 409.
    await this.delay(arrived);
    if (key) this.answers.set(key, { hash, state: 'done', status: out.status, body: out.body });
    sendJsonText(res, out.status, text);
  }

  private async search(body: unknown): Promise<{ status: number; body: unknown }> {
    let request: ReturnType<typeof decodeRequestJson>;
    try {
      request = decodeRequestJson(body);
    } catch (e) {
      throw new HttpError(400, 'REQUEST_INVALID', (e as Error).message);
    }
    this.stats.searches++;
    const q = request.query;
    const eligibility = eligibilityByNumbers(this.people, q, request.confirmationDate, this.today());
    const response = this.respond(
      '2',
      request.confirmationDate,
      request.institutionCode,
      request.fileId,
      eligibility,
      q.limitConsent === '1',
    );
    response.body.query = { ...q };
    return { status: 200, body: encodeResponseJson(response) };
  }

  private async challenge(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await this.delay();
    this.requireToken(req);
    const challenge = randomBytes(32).toString('base64');
    this.challenges.set(challenge, Date.now() + CHALLENGE_TTL_MS);
    sendJson(res, 200, { challenge, expiresIn: CHALLENGE_TTL_MS / 1000 });
  }

  private async crl(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await this.delay();
    this.requireToken(req);
    const m = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/.exec(this.opts.pki.jpkiCrlPem);
    res.writeHead(200, { 'content-type': 'application/pkix-crl' });
    res.end(Buffer.from((m?.[1] ?? '').replace(/\s+/g, ''), 'base64'));
  }

  /**
   * 照会区分 1: the certificate + a signature over our challenge prove the card holder; in
   * 資格確認限定型 (`visual`) staff compared the face photo and only the certificate comes.
   * A certificate expired less than 3 months ago is accepted with a notice.
   */
  private async cardSearch(raw: unknown): Promise<{ status: number; body: unknown }> {
    const body = objectBody(raw);
    const str = (k: string): string => {
      const v = body[k];
      if (typeof v !== 'string' || v.length === 0) throw new HttpError(400, 'REQUEST_INVALID', `${k} is required`);
      return v;
    };
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(Buffer.from(str('certificate'), 'base64'));
    } catch {
      throw new HttpError(400, 'CERT_MALFORMED', 'the certificate does not parse');
    }
    if (!cert.verify(this.jpkiCa.publicKey))
      throw new HttpError(403, 'CERT_UNTRUSTED', 'the certificate was not issued by the JPKI CA');
    const now = Date.now();
    const validTo = new Date(cert.validTo);
    if (certificateGraceEnd(validTo).getTime() < now || new Date(cert.validFrom).getTime() > now)
      throw new HttpError(403, 'CERT_EXPIRED', 'the certificate is outside its validity period');
    if (this.revoked.has(cert.serialNumber.toLowerCase().replace(/^0+/, '')))
      throw new HttpError(403, 'CERT_REVOKED', 'the certificate is revoked');
    if (body.offlineProof !== undefined) {
      // Made-up like the rest of the card flow: a check made during an outage, re-verified later.
      const proof = objectBody(body.offlineProof);
      const signedAt = typeof proof.signedAt === 'string' ? Date.parse(proof.signedAt) : NaN;
      if (!(signedAt <= now && now - signedAt <= OFFLINE_PROOF_MAX_AGE_MS))
        throw new HttpError(403, 'OFFLINE_PROOF_STALE', 'the offline proof is missing its time or is too old');
      const nonce = typeof proof.nonce === 'string' ? Buffer.from(proof.nonce, 'base64') : Buffer.alloc(0);
      const sig = typeof proof.signature === 'string' ? Buffer.from(proof.signature, 'base64') : Buffer.alloc(0);
      if (nonce.length < 16 || !verifySignature('sha256', nonce, cert.publicKey, sig))
        throw new HttpError(403, 'SIGNATURE_INVALID', 'the offline proof does not verify against the certificate');
    } else if (body.visual !== true) {
      const challenge = str('challenge');
      const exp = this.challenges.get(challenge);
      if (exp === undefined || exp < now)
        throw new HttpError(403, 'CHALLENGE_UNKNOWN', 'the challenge is unknown, used or expired');
      this.challenges.delete(challenge);
      const ok = verifySignature(
        'sha256',
        Buffer.from(challenge, 'base64'),
        cert.publicKey,
        Buffer.from(str('signature'), 'base64'),
      );
      if (!ok) throw new HttpError(403, 'SIGNATURE_INVALID', 'the signature does not verify against the certificate');
    }
    this.stats.cardSearches++;
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1] ?? '';
    const confirmationDate = typeof body.confirmationDate === 'string' ? body.confirmationDate : this.today();
    const institutionCode = typeof body.institutionCode === 'string' ? body.institutionCode : '';
    const eligibility = eligibilityByPerson(
      this.people.find((p) => p.id === cn),
      confirmationDate,
      this.today(),
    );
    const response = this.respond(
      '1',
      confirmationDate,
      institutionCode,
      undefined,
      eligibility,
      body.limitConsent === '1',
    );
    // The patient's consents (given at the reader) come back with the result, each with its time.
    const consents = body.consents !== undefined ? objectBody(body.consents) : {};
    this.cardConsentsSeen.push({ ...consents, limitConsent: body.limitConsent });
    for (const r of response.body.results) {
      for (const [block, flag] of Object.entries(consents)) {
        if (!/^[A-Za-z]{1,60}$/.test(block) || (flag !== '0' && flag !== '1'))
          throw new HttpError(400, 'REQUEST_INVALID', `consents.${block.slice(0, 60)} must be "0" or "1"`);
        r.consents[block] = flag === '1' ? { flag, time: timestampJst() } : { flag };
      }
    }
    if (validTo.getTime() < now) {
      // The real code comes from 別紙6-1, which is not public: the simulator uses its own.
      response.body.resultCode = 'SIM-W-CERT-EXPIRED';
      response.body.resultMessage = '利用者証明用電子証明書の有効期限が切れています。市区町村窓口で更新してください。';
    }
    return { status: 200, body: encodeResponseJson(response) };
  }

  private respond(
    kind: '1' | '2',
    date: string,
    institutionCode: string,
    fileId: string | undefined,
    e: Eligibility,
    limitConsent: boolean,
  ): QualificationResponse {
    const response: QualificationResponse = {
      header: {
        processTime: this.today() + timestampJst().slice(8),
        confirmationDate: date,
        institutionCode,
        referenceClassification: kind,
        segmentOfResult: '1',
        characterCode: '0',
      },
      body: {
        status: '1',
        validity: e.validity as Validity,
        results: e.matches.map((m) => toResult(m.person, m.qualification, limitConsent)),
      },
    };
    if (fileId !== undefined) response.header.fileId = fileId;
    return response;
  }

  /** The simulated latency (plus jitter), counted from `since` (performance.now() at arrival). */
  private async delay(since = performance.now()): Promise<void> {
    const { latencyMs, jitterMs } = this.settings;
    const ms = latencyMs + (jitterMs > 0 ? Math.random() * jitterMs : 0) - (performance.now() - since);
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  }

  // ---------------------------------------------------------------- the loopback control API

  private async handleControl(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://control');
      const path = url.pathname;
      const m = /^\/control\/people\/([^/]+)\/qualifications(?:\/(\d+))?$/.exec(path);
      if (req.method === 'GET' && path === '/control/settings') return sendJson(res, 200, this.settings);
      if (req.method === 'PUT' && path === '/control/settings') {
        this.updateSettings(objectBody(await readJson(req)));
        return sendJson(res, 200, this.settings);
      }
      if (req.method === 'GET' && path === '/control/stats') return sendJson(res, 200, this.stats);
      if (req.method === 'GET' && path === '/control/clock') return sendJson(res, 200, this.clock());
      if (req.method === 'POST' && path === '/control/clock') {
        this.setClock(objectBody(await readJson(req)));
        return sendJson(res, 200, this.clock());
      }
      if (req.method === 'POST' && path === '/control/reset') {
        this.stats = CentralSim.emptyStats();
        this.answers.clear();
        this.canned.length = 0;
        this.batches.reset();
        return sendJson(res, 204);
      }
      if (req.method === 'POST' && path === '/control/responses') {
        this.canned.push(parseCanned(objectBody(await readJson(req))));
        return sendJson(res, 204);
      }
      if (path.startsWith('/control/batch/')) return await this.batches.control(req, res, path);
      if (req.method === 'GET' && path === '/control/people')
        return sendJson(res, 200, peopleRows(this.people, this.today()));
      if (req.method === 'POST' && path === '/control/people') {
        const person = objectBody(await readJson(req)) as unknown as SimPerson;
        if (typeof person.id !== 'string' || !Array.isArray(person.qualifications))
          throw new HttpError(400, 'BAD_REQUEST', 'a person needs id and qualifications');
        if (this.people.some((p) => p.id === person.id))
          throw new HttpError(409, 'EXISTS', `person ${person.id} exists`);
        this.people.push(person);
        return sendJson(res, 201, { id: person.id });
      }
      if (m) {
        const person = this.people.find((p) => p.id === decodeURIComponent(m[1]!));
        if (!person) throw new HttpError(404, 'NOT_FOUND', 'no such person');
        const patch = objectBody(await readJson(req)) as Partial<SimQualification>;
        if (req.method === 'POST' && m[2] === undefined) {
          person.qualifications.push(patch as SimQualification);
          return sendJson(res, 201, { index: person.qualifications.length - 1 });
        }
        const q = person.qualifications[Number(m[2])];
        if (req.method === 'PATCH' && q) {
          Object.assign(q, patch);
          return sendJson(res, 200, q);
        }
      }
      throw new HttpError(404, 'NOT_FOUND', `no control endpoint ${req.method} ${path}`);
    } catch (e) {
      sendError(res, e);
    }
  }

  updateSettings(patch: Record<string, unknown>): void {
    const num = (k: keyof CentralSettings, min: number, max: number): void => {
      if (patch[k] === undefined) return;
      const v = patch[k];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
        throw new HttpError(400, 'BAD_SETTING', `${k} must be a number in ${min}..${max}`);
      (this.settings as unknown as Record<string, unknown>)[k] = v;
    };
    num('latencyMs', 0, 600_000);
    num('jitterMs', 0, 600_000);
    num('errorRate', 0, 1);
    num('errorStatus', 400, 599);
    num('retryAfterSec', 0, 3600);
    if (patch.today !== undefined) {
      if (patch.today !== null && (typeof patch.today !== 'string' || !/^\d{8}$/.test(patch.today)))
        throw new HttpError(400, 'BAD_SETTING', 'today must be YYYYMMDD or null');
      this.settings.today = patch.today;
    }
  }

  /** The simulated processing day, as day N since day 1. */
  clock(): { day1: string; today: string; day: number } {
    const today = this.today();
    const ms = (d: string): number => Date.UTC(Number(d.slice(0, 4)), Number(d.slice(4, 6)) - 1, Number(d.slice(6, 8)));
    return { day1: this.day1, today, day: Math.round((ms(today) - ms(this.day1)) / 86_400_000) + 1 };
  }

  /** `{ day: N }` (day 1 = the first day), `{ advanceDays: N }`, or `{ day: null }` = back to the real today. */
  setClock(b: Record<string, unknown>): void {
    const int = (v: unknown, min: number): v is number =>
      typeof v === 'number' && Number.isInteger(v) && v >= min && v <= 3660;
    if (b.day === null) this.settings.today = null;
    else if (int(b.day, 1)) this.settings.today = addDays(this.day1, b.day - 1);
    else if (int(b.advanceDays, 0)) this.settings.today = addDays(this.today(), b.advanceDays);
    else throw new HttpError(400, 'BAD_CLOCK', 'give day (1…3660, or null for today) or advanceDays (0…3660)');
  }

  /** A fresh challenge for in-process tests. */
  issueChallenge(): string {
    const c = randomBytes(32).toString('base64');
    this.challenges.set(c, Date.now() + CHALLENGE_TTL_MS);
    return c;
  }
}

class RetryAfterError extends HttpError {
  constructor(
    status: number,
    readonly retryAfterSec: number,
  ) {
    super(status, 'INJECTED', `injected error ${status}`);
  }
}

function parseCanned(b: Record<string, unknown>): CannedResponse {
  if (typeof b.status !== 'number' || typeof b.body !== 'string')
    throw new HttpError(400, 'BAD_REQUEST', 'a canned response needs status and body');
  return {
    status: b.status,
    body: b.body,
    contentType: typeof b.contentType === 'string' ? b.contentType : 'application/json',
    encoding: b.encoding === 'base64' ? 'base64' : 'utf8',
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function listen(server: HttpServer | HttpsServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
