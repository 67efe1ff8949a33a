/**
 * The IPsec lab: two network namespaces, clinic and central, joined by a veth pair (the "internet"
 * between them, 198.18.N.0/30), one charon in each with its own strongswan.conf and VICI socket,
 * IKEv2 with certificates from a lab CA. Central's services live on an inner address (198.19.N.1)
 * reachable only through the tunnel, whose clinic end is 198.19.N.2. Two more veth pairs join the
 * host: the clinic's LAN (198.18.N.8/30, where receipt computers and the CLI reach the gateway) and
 * a management link to central (198.18.N.4/30, for the simulator's control port only).
 *
 * Each lab has a unique id (creator pid + random tag) in its namespace and interface names, and a
 * block N not in use on the host, so two labs run side by side. close() removes everything even
 * after a failed start; sweepStaleLabs() removes what a killed creator left behind.
 */
import { type ChildProcess, execFile, spawn, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueCertificate, type PemPair } from '../../pki.js';
import { type LabConn, strongswanConf, swanctlConf } from './conf.js';
import { installedChild, type LabChildSa, type LabIkeSa, parseListSas } from './list-sas.js';

export type LabSide = 'clinic' | 'central';

export interface LabSideInfo {
  ns: string;
  /** address on the veth between the two namespaces (IKE and ESP run here) */
  outer: string;
  /** address inside the tunnel's traffic selector */
  inner: string;
  /** IKE identity (a DNS name in the certificate's SAN) */
  id: string;
  viciSocket: string;
  viciUri: string;
  certFile: string;
  keyFile: string;
  logFile: string;
  dir: string;
}

export interface IpsecLabOptions {
  /** parent folder for the lab's files (default: the OS temp dir) */
  baseDir?: string;
  /** CHILD_SA rekey time of the central side's config, seconds (default 3600) */
  childRekeySeconds?: number;
  dpdDelaySeconds?: number;
  log?: (line: string) => void;
}

const NS_PREFIX = 'oipsec-';
const NS_PATTERN = /^oipsec-(\d+)-[0-9a-f]+-(clinic|central)$/;
const DAY = 86_400_000;

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

async function listNamespaces(): Promise<string[]> {
  const out = await run('ip', ['netns', 'list']).catch(() => '');
  return out
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

/** Ends what runs in a namespace this lab made, then deletes it (its veth ends go with it). */
async function removeNamespace(ns: string): Promise<void> {
  const pids = (await run('ip', ['netns', 'pids', ns]).catch(() => ''))
    .split('\n')
    .map(Number)
    .filter((p) => Number.isInteger(p) && p > 0);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
  await run('ip', ['netns', 'del', ns]).catch(() => undefined);
}

/** Namespaces of labs whose creating process is gone (a crashed test, a killed sandbox). */
export async function sweepStaleLabs(): Promise<string[]> {
  const stale = (await listNamespaces()).filter((ns) => {
    const m = NS_PATTERN.exec(ns);
    return m !== null && !alive(Number(m[1]));
  });
  for (const ns of stale) await removeNamespace(ns);
  return stale;
}

/** A /24 block N whose 198.18.N.x and 198.19.N.x the host does not use (the lab's LAN and mgmt links are on the host). */
async function freeBlock(): Promise<number> {
  const used = await run('ip', ['-o', 'addr', 'show']).catch(() => '');
  for (let tries = 0; tries < 50; tries++) {
    const n = 1 + Math.floor(Math.random() * 250);
    if (!used.includes(`198.18.${n}.`) && !used.includes(`198.19.${n}.`)) return n;
  }
  throw new Error('no free 198.18.N.0/24 block for the IPsec lab');
}

export class IpsecLab {
  readonly id: string;
  readonly dir: string;
  readonly clinic: LabSideInfo;
  readonly central: LabSideInfo;
  /** the host's end of the clinic LAN and the gateway's address on it */
  readonly lan: { host: string; clinic: string };
  /** the host's end of the management link to central, and central's address on it */
  readonly mgmt: { host: string; central: string };
  readonly caFile: string;
  readonly childRekeySeconds: number;
  readonly dpdDelaySeconds: number;
  private readonly log: (line: string) => void;
  private readonly charons = new Map<LabSide, ChildProcess>();
  private readonly children = new Set<ChildProcess>();
  private readonly hostLinks: string[];
  private closed: Promise<void> | undefined;
  private clinicBySwanctl = false;
  private readonly loops = new Map<'rekey' | 'flap', { stop(): Promise<void> }>();
  private readonly outerAddrs: [string, string];

  private constructor(block: number, opts: IpsecLabOptions) {
    const tag = randomBytes(3).toString('hex');
    this.id = `${process.pid}-${tag}`;
    this.dir = join(opts.baseDir ?? tmpdir(), `onshi-ipsec-lab-${this.id}`);
    this.log = opts.log ?? (() => undefined);
    this.childRekeySeconds = opts.childRekeySeconds ?? 3600;
    this.dpdDelaySeconds = opts.dpdDelaySeconds ?? 2;
    this.caFile = join(this.dir, 'ca.pem');
    const side = (name: LabSide, outer: string, inner: string): LabSideInfo => {
      const dir = join(this.dir, name);
      const viciSocket = join(dir, 'charon.vici');
      return {
        ns: `${NS_PREFIX}${this.id}-${name}`,
        outer,
        inner,
        id: `${name}.ipsec-lab.invalid`,
        viciSocket,
        viciUri: `unix://${viciSocket}`,
        certFile: join(dir, 'swanctl', 'x509', `${name}.pem`),
        keyFile: join(dir, 'swanctl', 'private', `${name}.key`),
        logFile: join(dir, 'charon.log'),
        dir,
      };
    };
    this.clinic = side('clinic', `198.18.${block}.1`, `198.19.${block}.2`);
    this.central = side('central', `198.18.${block}.2`, `198.19.${block}.1`);
    this.mgmt = { host: `198.18.${block}.5`, central: `198.18.${block}.6` };
    this.lan = { host: `198.18.${block}.9`, clinic: `198.18.${block}.10` };
    this.hostLinks = [`olan-${tag}`, `omgt-${tag}`];
    // The clinic's second outer address (readdressClinic), in its own /30 next to the three links.
    this.outerAddrs = [this.clinic.outer, `198.18.${block}.13`];
  }

  /** Builds the namespaces, links, certificates and both charons; the central side's connection is loaded. */
  static async create(opts: IpsecLabOptions = {}): Promise<IpsecLab> {
    await sweepStaleLabs();
    const lab = new IpsecLab(await freeBlock(), opts);
    try {
      await lab.build();
      return lab;
    } catch (e) {
      await lab.close();
      throw e;
    }
  }

  private async build(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const { clinic, central, lan, mgmt } = this;
    for (const s of [clinic, central]) await run('ip', ['netns', 'add', s.ns]);
    const block = clinic.outer.split('.')[2];
    // The line between the two sites.
    await run('ip', [
      'link',
      'add',
      'wan0',
      'netns',
      clinic.ns,
      'type',
      'veth',
      'peer',
      'name',
      'wan0',
      'netns',
      central.ns,
    ]);
    const [lanLink, mgmtLink] = this.hostLinks as [string, string];
    await run('ip', ['link', 'add', lanLink, 'type', 'veth', 'peer', 'name', 'lan0', 'netns', clinic.ns]);
    await run('ip', ['link', 'add', mgmtLink, 'type', 'veth', 'peer', 'name', 'mgmt0', 'netns', central.ns]);
    const nsip = (ns: string, ...args: string[]): Promise<string> => run('ip', ['-n', ns, ...args]);
    await nsip(clinic.ns, 'addr', 'add', `${clinic.outer}/30`, 'dev', 'wan0');
    await nsip(central.ns, 'addr', 'add', `${central.outer}/30`, 'dev', 'wan0');
    await nsip(clinic.ns, 'addr', 'add', `${lan.clinic}/30`, 'dev', 'lan0');
    await nsip(central.ns, 'addr', 'add', `${mgmt.central}/30`, 'dev', 'mgmt0');
    await run('ip', ['addr', 'add', `${lan.host}/30`, 'dev', lanLink]);
    await run('ip', ['addr', 'add', `${mgmt.host}/30`, 'dev', mgmtLink]);
    for (const s of [clinic, central]) {
      await nsip(s.ns, 'addr', 'add', `${s.inner}/32`, 'dev', 'lo');
      for (const dev of ['lo', 'wan0', s === clinic ? 'lan0' : 'mgmt0']) await nsip(s.ns, 'link', 'set', dev, 'up');
    }
    for (const l of this.hostLinks) await run('ip', ['link', 'set', l, 'up']);
    // Central reaches the clinic's second outer address (readdressClinic) over the same wire.
    await nsip(central.ns, 'route', 'add', `${this.outerAddrs[1]}/32`, 'dev', 'wan0');
    this.log(`ipsec lab ${this.id}: namespaces ${clinic.ns}, ${central.ns}; block 198.18.${block}.0/24`);

    await this.writeCredentials();
    for (const side of ['clinic', 'central'] as const) {
      writeFileSync(
        join(this[side].dir, 'strongswan.conf'),
        // The clinic's charon as the installer configures it (with the route clamp); central's bare.
        strongswanConf({
          viciSocket: this[side].viciSocket,
          logFile: this[side].logFile,
          clamp: side === 'clinic',
        }),
      );
      await this.startCharon(side);
    }
    await this.loadConn('central');
  }

  private async writeCredentials(): Promise<void> {
    const ca = await createCa({ subject: `C=JP, O=ONSHI-SIM, CN=ONSHI-SIM IPsec lab CA ${this.id}` });
    writeFileSync(this.caFile, ca.certPem);
    const now = Date.now();
    for (const side of ['clinic', 'central'] as const) {
      const s = this[side];
      for (const d of ['x509', 'x509ca', 'private'])
        mkdirSync(join(s.dir, 'swanctl', d), { recursive: true, mode: 0o700 });
      const pair: PemPair = await issueCertificate({
        ca,
        subject: `C=JP, O=ONSHI-SIM, CN=${s.id}`,
        notBefore: new Date(now - DAY),
        notAfter: new Date(now + 365 * DAY),
        usage: side === 'central' ? 'server' : 'client',
        dnsNames: [s.id],
      });
      writeFileSync(s.certFile, pair.certPem);
      writeFileSync(s.keyFile, pair.keyPem, { mode: 0o600 });
      writeFileSync(join(s.dir, 'swanctl', 'x509ca', 'ca.pem'), ca.certPem);
    }
  }

  /**
   * The connection of one side, as the swanctl.conf renderer takes it. The clinic binds no local
   * address and central accepts it from any address, as for a clinic on a dynamic internet line
   * (see readdressClinic).
   */
  connOf(side: LabSide): LabConn {
    const me = this[side];
    const peer = side === 'clinic' ? this.central : this.clinic;
    return {
      name: 'oqs',
      ...(side === 'central' ? { localAddr: me.outer } : {}),
      remoteAddr: side === 'central' ? '%any' : peer.outer,
      localId: me.id,
      remoteId: peer.id,
      certFile: `${side}.pem`,
      localTs: `${me.inner}/32`,
      remoteTs: `${peer.inner}/32`,
      dpdDelay: this.dpdDelaySeconds,
      childRekey: this.childRekeySeconds,
    };
  }

  /** The clinic side through swanctl, for when the gateway does not drive the line itself yet. */
  async loadClinicWithSwanctl(initiate = true): Promise<void> {
    this.clinicBySwanctl = true;
    await this.loadConn('clinic');
    if (initiate) await this.swanctl('clinic', ['--initiate', '--child', 'oqs', '--timeout', '20']);
  }

  private async loadConn(side: LabSide): Promise<void> {
    const file = join(this[side].dir, 'swanctl', 'swanctl.conf');
    writeFileSync(file, swanctlConf(this.connOf(side)));
    await this.swanctl(side, ['--load-all', '--file', file]);
  }

  /** swanctl against one side's charon (the VICI socket is a file, so no namespace is needed). */
  swanctl(side: LabSide, args: string[]): Promise<string> {
    return run('swanctl', [...args, '--uri', this[side].viciUri]);
  }

  async startCharon(side: LabSide): Promise<void> {
    const s = this[side];
    rmSync(s.viciSocket, { force: true });
    const out = openSync(join(s.dir, 'charon.out'), 'a');
    const charon = spawn('ip', ['netns', 'exec', s.ns, 'charon-systemd'], {
      env: { ...process.env, STRONGSWAN_CONF: join(s.dir, 'strongswan.conf') },
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    this.charons.set(side, charon);
    writeFileSync(join(s.dir, 'charon.pid'), `${charon.pid}\n`);
    const exited = new Promise<never>((_, reject) =>
      charon.once('exit', (code, signal) =>
        reject(new Error(`charon (${side}) exited with ${code ?? signal}; see ${join(s.dir, 'charon.out')}`)),
      ),
    );
    exited.catch(() => undefined);
    await Promise.race([waitForSocket(s.viciSocket, 15_000), exited]);
  }

  /** Stops one side's charon (SIGKILL: a crash, no IKE delete sent; SIGTERM: an orderly stop). */
  async stopCharon(side: LabSide, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const c = this.charons.get(side);
    this.charons.delete(side);
    if (c) await stopProcess(c, signal);
  }

  /** A process in one side's namespace (a server on central's inner address, the gateway, curl…). */
  spawnIn(side: LabSide, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this[side].ns, cmd, ...args], opts);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** A command in one side's namespace, to its end; its standard output. */
  exec(side: LabSide, cmd: string, args: string[]): Promise<string> {
    return run('ip', ['netns', 'exec', this[side].ns, cmd, ...args]);
  }

  /** One side's SAs as `swanctl --list-sas` shows them. */
  async sas(side: LabSide): Promise<LabIkeSa[]> {
    return parseListSas(await this.swanctl(side, ['--list-sas']));
  }

  /** The installed CHILD_SA of the lab's connection on one side (undefined: the tunnel is down there). */
  async installed(side: LabSide): Promise<{ ike: LabIkeSa; child: LabChildSa } | undefined> {
    return installedChild(await this.sas(side), 'oqs');
  }

  /**
   * Everything back to normal: central's charon running, the link up and steady, no black hole, no
   * rekey loop; the clinic initiates again when the lab (not the gateway) drives it.
   */
  async restore(): Promise<void> {
    await this.stopRekeying();
    await this.stopFlapping();
    await this.setOuterLink(true);
    await this.setMtuBlackhole(undefined);
    await this.restartCharon('central');
    if (!this.clinicBySwanctl || (await this.installed('central'))) return;
    // Central has no SA (it was killed, or deleted it): a clinic SA still there is stale (DPD has
    // not noticed yet), so it goes before the clinic initiates again.
    if (await this.installed('clinic'))
      await this.swanctl('clinic', ['--terminate', '--ike', 'oqs', '--force']).catch(() => undefined);
    await this.swanctl('clinic', ['--initiate', '--child', 'oqs', '--timeout', '20']);
  }

  // --- faults ------------------------------------------------------------------------------------

  /** A side's charon crashes (SIGKILL): no IKE delete goes out, so the other side learns only by DPD. */
  killCharon(side: LabSide = 'central'): Promise<void> {
    return this.stopCharon(side, 'SIGKILL');
  }

  /** A stopped charon starts again with its connection (the clinic's only when the lab loaded it). */
  async restartCharon(side: LabSide = 'central'): Promise<void> {
    if (this.charonRunning(side)) return;
    await this.startCharon(side);
    if (side === 'central' || this.clinicBySwanctl) await this.loadConn(side);
    if (side === 'clinic' && this.clinicBySwanctl)
      await this.swanctl('clinic', ['--initiate', '--child', 'oqs', '--timeout', '20']);
  }

  charonRunning(side: LabSide): boolean {
    const c = this.charons.get(side);
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** The peer deletes the IKE_SA and its CHILD_SA (an orderly INFORMATIONAL delete). */
  async terminate(side: LabSide = 'central'): Promise<void> {
    await this.swanctl(side, ['--terminate', '--ike', 'oqs', '--timeout', '5']);
  }

  /** Rekeys the CHILD_SA every `everyMs`, from alternating sides (every third time the IKE_SA); counts what it did. */
  startRekeying(everyMs = 3000): { rekeys: number; failures: number } {
    const counts = { rekeys: 0, failures: 0 };
    let n = 0;
    this.startLoop('rekey', async () => {
      const side: LabSide = n % 2 === 0 ? 'clinic' : 'central';
      const what = n % 3 === 2 ? '--ike' : '--child';
      n++;
      try {
        await this.swanctl(side, ['--rekey', what, 'oqs']);
        counts.rekeys++;
      } catch (e) {
        counts.failures++;
        this.log(`ipsec lab ${this.id}: rekey from ${side} failed: ${(e as Error).message}`);
      }
      return everyMs;
    });
    return counts;
  }

  stopRekeying(): Promise<void> {
    return this.stopLoop('rekey');
  }

  /** The line between the sites down or up: the clinic's end of the outer veth (the other end loses carrier). */
  async setOuterLink(up: boolean): Promise<void> {
    await this.exec('clinic', 'ip', ['link', 'set', 'wan0', up ? 'up' : 'down']);
  }

  async outerLinkUp(): Promise<boolean> {
    const out = await this.exec('clinic', 'ip', ['-j', 'link', 'show', 'wan0']);
    const [link] = JSON.parse(out) as { flags: string[] }[];
    return link?.flags.includes('UP') ?? false;
  }

  /** The outer link flaps: up for upMs, down for downMs, until stopFlapping (which leaves it up). */
  startFlapping(upMs: number, downMs: number): void {
    let up = true;
    this.startLoop(
      'flap',
      async () => {
        up = !up;
        await this.setOuterLink(up);
        return up ? upMs : downMs;
      },
      async () => this.setOuterLink(true),
    );
  }

  stopFlapping(): Promise<void> {
    return this.stopLoop('flap');
  }

  /**
   * The clinic's internet address changes (a new DHCP lease, a new PPPoE session): the clinic end
   * of the outer veth moves between 198.18.N.1 and 198.18.N.13. IKEv2's MOBIKE (or a new IKE_SA)
   * must bring the tunnel back. Returns the new address.
   */
  async readdressClinic(): Promise<string> {
    const from = this.clinic.outer;
    const to = from === this.outerAddrs[0] ? this.outerAddrs[1] : this.outerAddrs[0];
    const ipc = (...args: string[]): Promise<string> => this.exec('clinic', 'ip', args);
    const prefix = to === this.outerAddrs[0] ? 30 : 32;
    await ipc('addr', 'add', `${to}/${prefix}`, 'dev', 'wan0');
    if (to === this.outerAddrs[1]) await ipc('route', 'replace', `${this.central.outer}/32`, 'dev', 'wan0', 'src', to);
    await ipc('addr', 'del', `${from}/${prefix === 30 ? 32 : 30}`, 'dev', 'wan0');
    if (to === this.outerAddrs[0]) await ipc('route', 'del', `${this.central.outer}/32`).catch(() => undefined);
    this.clinic.outer = to;
    this.log(`ipsec lab ${this.id}: the clinic's outer address ${from} → ${to}`);
    return to;
  }

  /**
   * An MTU black hole on the outer link: packets longer than `bytes` are dropped silently in both
   * directions (nftables on each namespace's ingress of wan0: no ICMP "fragmentation needed"
   * comes back). undefined clears it.
   */
  async setMtuBlackhole(bytes: number | undefined): Promise<void> {
    for (const side of ['clinic', 'central'] as const) {
      await this.exec(side, 'nft', ['delete', 'table', 'netdev', 'onshi_lab']).catch(() => undefined);
      if (bytes === undefined) continue;
      await this.exec(side, 'nft', [
        `add table netdev onshi_lab; add chain netdev onshi_lab wan { type filter hook ingress device wan0 priority 0; }; add rule netdev onshi_lab wan meta length > ${bytes} counter drop`,
      ]);
    }
    this.mtuBlackhole = bytes;
  }

  /** The black hole's limit now, if any. */
  mtuBlackhole: number | undefined;

  /** What the lab's faults are doing now. */
  async faultState(): Promise<{
    central: 'running' | 'stopped';
    outerLink: 'up' | 'down';
    clinicOuter: string;
    rekeying: boolean;
    flapping: boolean;
    mtuBlackhole: number | null;
  }> {
    return {
      central: this.charonRunning('central') ? 'running' : 'stopped',
      outerLink: (await this.outerLinkUp()) ? 'up' : 'down',
      clinicOuter: this.clinic.outer,
      rekeying: this.loops.has('rekey'),
      flapping: this.loops.has('flap'),
      mtuBlackhole: this.mtuBlackhole ?? null,
    };
  }

  /** A loop of `step`s (each returns the pause before the next) until stopLoop; `last` runs when it stops. */
  private startLoop(name: 'rekey' | 'flap', step: () => Promise<number>, last?: () => Promise<void>): void {
    void this.loops.get(name)?.stop();
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> = Promise.resolve();
    const tick = (): void => {
      running = step()
        .catch(() => 1000)
        .then((ms) => {
          if (!stopped) timer = setTimeout(tick, ms);
        });
    };
    timer = setTimeout(tick, 0);
    this.loops.set(name, {
      stop: async () => {
        stopped = true;
        clearTimeout(timer);
        await running;
        await last?.();
      },
    });
  }

  private async stopLoop(name: 'rekey' | 'flap'): Promise<void> {
    const loop = this.loops.get(name);
    this.loops.delete(name);
    await loop?.stop();
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      await Promise.all([...this.loops.keys()].map((k) => this.stopLoop(k).catch(() => undefined)));
      await Promise.all([...this.children].map((c) => stopProcess(c, 'SIGTERM')));
      await Promise.all([...this.charons.values()].map((c) => stopProcess(c, 'SIGTERM')));
      this.charons.clear();
      for (const s of [this.clinic, this.central])
        if ((await listNamespaces()).includes(s.ns)) await removeNamespace(s.ns);
      for (const l of this.hostLinks) await run('ip', ['link', 'del', l]).catch(() => undefined);
      if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
      this.log(`ipsec lab ${this.id}: removed`);
    })();
    return this.closed;
  }
}

async function stopProcess(c: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill(signal);
  const timer = setTimeout(() => c.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function waitForSocket(path: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      if (!existsSync(path)) return resolve(false);
      const s = connect(path);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`no VICI socket at ${path} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The lab's namespaces that exist now (for tests that check teardown). */
export async function labNamespaces(): Promise<string[]> {
  return (await listNamespaces()).filter((n) => n.startsWith(NS_PREFIX));
}

/** Whether this machine can run the lab, and if not, why. */
export async function ipsecLabPrerequisites(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'the IPsec lab needs root (network namespaces)';
  for (const bin of ['/usr/sbin/charon-systemd', '/usr/sbin/swanctl'])
    if (!existsSync(bin)) return `${bin} is missing (apt-get install charon-systemd strongswan-swanctl)`;
  const plugins = existsSync('/usr/lib/ipsec/plugins') ? readdirSync('/usr/lib/ipsec/plugins') : [];
  for (const p of ['kernel-libipsec', 'kdf', 'vici'])
    if (!plugins.includes(`libstrongswan-${p}.so`))
      return `strongSwan's ${p} plugin is missing (apt-get install libcharon-extra-plugins libstrongswan-extra-plugins)`;
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing (kernel-libipsec needs it)';
  try {
    await run('ip', ['netns', 'list']);
  } catch (e) {
    return `ip netns does not work here: ${(e as Error).message}`;
  }
  return undefined;
}
