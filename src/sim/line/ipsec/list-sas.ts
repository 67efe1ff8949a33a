/**
 * `swanctl --list-sas` as the lab reads it (for its status and its tests; the gateway itself reads
 * SAs over VICI, in src/sync/line/). Pure.
 */

export interface LabChildSa {
  /** e.g. INSTALLED, REKEYED, DELETED */
  state: string;
  spiIn: string;
  spiOut: string;
  bytesIn: number;
  packetsIn: number;
  bytesOut: number;
  packetsOut: number;
}

export interface LabIkeSa {
  name: string;
  /** e.g. ESTABLISHED, CONNECTING, DELETING */
  state: string;
  localAddr: string;
  remoteAddr: string;
  children: LabChildSa[];
}

const IKE_LINE = /^(\S+): #\d+, (\w+), IKEv\d/;
const CHILD_LINE = /^\s+(\S+): #\d+, reqid \d+, (\w+),/;
const HOST_LINE = /^\s+(local|remote)\s+'[^']*' @ ([^[\s]+)\[/;
const TRAFFIC_LINE = /^\s+(in|out)\s+([0-9a-f]+)(?:_i|_o)?,\s+(\d+) bytes,\s+(\d+) packets/;

export function parseListSas(text: string): LabIkeSa[] {
  const sas: LabIkeSa[] = [];
  let ike: LabIkeSa | undefined;
  let child: LabChildSa | undefined;
  for (const line of text.split('\n')) {
    let m = IKE_LINE.exec(line);
    if (m) {
      ike = { name: m[1]!, state: m[2]!, localAddr: '', remoteAddr: '', children: [] };
      child = undefined;
      sas.push(ike);
      continue;
    }
    if (!ike) continue;
    m = CHILD_LINE.exec(line);
    if (m) {
      child = { state: m[2]!, spiIn: '', spiOut: '', bytesIn: 0, packetsIn: 0, bytesOut: 0, packetsOut: 0 };
      ike.children.push(child);
      continue;
    }
    m = HOST_LINE.exec(line);
    if (m && !child) {
      if (m[1] === 'local') ike.localAddr = m[2]!;
      else ike.remoteAddr = m[2]!;
      continue;
    }
    m = TRAFFIC_LINE.exec(line);
    if (m && child) {
      const [, dir, spi, bytes, packets] = m as unknown as [string, 'in' | 'out', string, string, string];
      if (dir === 'in') Object.assign(child, { spiIn: spi, bytesIn: Number(bytes), packetsIn: Number(packets) });
      else Object.assign(child, { spiOut: spi, bytesOut: Number(bytes), packetsOut: Number(packets) });
    }
  }
  return sas;
}

/** The connection's IKE_SA and its installed CHILD_SA, if any. */
export function installedChild(sas: LabIkeSa[], name: string): { ike: LabIkeSa; child: LabChildSa } | undefined {
  for (const ike of sas) {
    if (ike.name !== name || ike.state !== 'ESTABLISHED') continue;
    const child = ike.children.find((c) => c.state === 'INSTALLED');
    if (child) return { ike, child };
  }
  return undefined;
}
