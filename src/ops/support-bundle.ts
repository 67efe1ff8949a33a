/**
 * The support bundle: what a vendor needs to diagnose a gateway, with nothing a clinic may not send
 * out — the config without secrets, the status snapshot, versions, and recent logs passed through
 * the logger's redaction plus a second, pattern-based scrub (tokens, long digit runs, Japanese text,
 * which in our logs can only be a name or an address). A .tar.gz any OS can open.
 */
import { readFileSync } from 'node:fs';
import { arch, hostname, release } from 'node:os';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import type { GatewayConfig } from '../core/config.js';
import { redact } from '../core/logger.js';
import type { GatewayStatus } from './status.js';

const REDACTED = '[redacted]';

/** The config as a vendor may see it: paths and numbers stay, identities and secrets go. */
export function redactConfig(config: GatewayConfig): Record<string, unknown> {
  const copy = structuredClone(config) as unknown as Record<string, Record<string, unknown>>;
  if (copy.central) copy.central.userId = REDACTED;
  return copy;
}

const TOKEN_RE = /onshi_[a-f0-9]{8}_[A-Za-z0-9_-]{43}/g;
const BEARER_RE = /(bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi;
const DIGITS_RE = /(?<![\d.:-])\d{6,}(?![\d.:])/g;
const JAPANESE_RE = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]+/g;

/** One log line, scrubbed: JSON lines through the logger's key-based redaction, then patterns. */
export function redactLogLine(line: string): string {
  let out = line;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed && typeof parsed === 'object') out = JSON.stringify(redact(parsed));
  } catch {
    /* not JSON: patterns only */
  }
  return out
    .replace(TOKEN_RE, 'onshi_[token]')
    .replace(BEARER_RE, `$1${REDACTED}`)
    .replace(DIGITS_RE, '[digits]')
    .replace(JAPANESE_RE, '[ja]');
}

export function redactLogText(text: string): string {
  return text.split('\n').map(redactLogLine).join('\n');
}

/**
 * A bounded in-memory copy of the daemon's recent log lines, for the bundle when the journal is
 * out of reach (the service user may not read it). Add it to the logger as a winston Stream
 * transport: `new winston.transports.Stream({ stream: ring })`.
 */
export class LogRing extends Writable {
  // A fixed ring: every daemon log line passes here, so no per-line array shifting or copying.
  private readonly lines: (string | undefined)[];
  private next = 0;
  private count = 0;
  constructor(private readonly max = 2000) {
    super({ decodeStrings: false });
    this.lines = new Array<string | undefined>(max);
  }
  override _write(chunk: unknown, _enc: BufferEncoding, cb: () => void): void {
    const text = String(chunk);
    // winston writes one line and its newline per call: split only when there is more than one
    const nl = text.indexOf('\n');
    if (nl === -1 || nl === text.length - 1) this.push1(nl === -1 ? text : text.slice(0, nl));
    else for (const l of text.split('\n')) this.push1(l);
    cb();
  }
  private push1(line: string): void {
    if (!line) return;
    this.lines[this.next] = line;
    this.next = (this.next + 1) % this.max;
    if (this.count < this.max) this.count++;
  }
  text(): string {
    const out: string[] = [];
    const first = (this.next - this.count + this.max) % this.max;
    for (let i = 0; i < this.count; i++) out.push(this.lines[(first + i) % this.max]!);
    return out.join('\n') + (out.length ? '\n' : '');
  }
}

export function versions(extra: Record<string, string> = {}): Record<string, string> {
  let pkg = 'unknown';
  try {
    pkg = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
      .version;
  } catch {
    /* not in a checkout */
  }
  let os = 'unknown';
  try {
    os = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    /* not Linux */
  }
  return {
    'onshi-gateway': pkg,
    node: process.versions.node,
    openssl: process.versions.openssl,
    os,
    kernel: release(),
    arch: arch(),
    ...extra,
  };
}

export interface SupportBundleInput {
  config: GatewayConfig;
  status?: GatewayStatus;
  /** raw log text (journal or LogRing); redacted here */
  logs?: string;
  /** e.g. doctor output; redacted like logs */
  extra?: Record<string, string>;
  versions?: Record<string, string>;
  now?: Date;
}

export function buildSupportBundle(input: SupportBundleInput): { filename: string; data: Buffer } {
  const now = input.now ?? new Date();
  const stamp = now.toISOString().replace(/[-:]/g, '').slice(0, 15);
  const dir = `onshi-support-${stamp}`;
  const files: [string, string][] = [
    [
      'README.txt',
      'onshi-gateway support bundle. Secrets and personal data were removed before it was written:\n' +
        'the config without identities, logs redacted by key and by pattern ([redacted], [digits], [ja]).\n',
    ],
    ['versions.json', JSON.stringify(input.versions ?? versions(), null, 2) + '\n'],
    ['config.json', JSON.stringify(redactConfig(input.config), null, 2) + '\n'],
  ];
  // The status snapshot holds no personal data by contract (see status.ts), so it goes as is.
  if (input.status) files.push(['status.json', JSON.stringify(input.status, null, 2) + '\n']);
  if (input.logs !== undefined) files.push(['logs.txt', redactLogText(input.logs)]);
  for (const [name, text] of Object.entries(input.extra ?? {})) files.push([name, redactLogText(text)]);
  const tar = Buffer.concat([
    ...files.flatMap(([name, text]) => tarEntry(`${dir}/${name}`, Buffer.from(text, 'utf8'), now)),
    Buffer.alloc(1024),
  ]);
  return { filename: `${dir}-${hostname()}.tar.gz`, data: gzipSync(tar) };
}

/** One ustar entry (header + data padded to 512). Names here are short and ASCII. */
function tarEntry(name: string, data: Buffer, mtime: Date): Buffer[] {
  const h = Buffer.alloc(512);
  const put = (off: number, len: number, s: string): void => {
    h.write(s, off, len, 'ascii');
  };
  const oct = (off: number, len: number, n: number): void => put(off, len, n.toString(8).padStart(len - 1, '0') + '\0');
  put(0, 100, name);
  oct(100, 8, 0o600);
  oct(108, 8, 0);
  oct(116, 8, 0);
  oct(124, 12, data.length);
  oct(136, 12, Math.floor(mtime.getTime() / 1000));
  put(148, 8, '        ');
  put(156, 1, '0');
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  const pad = (512 - (data.length % 512)) % 512;
  return [h, data, Buffer.alloc(pad)];
}
