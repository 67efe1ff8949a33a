/**
 * The HTTPS plumbing the admin page and the kiosk page share: a server with the gateway's own
 * certificate, its open sockets tracked so close() ends them at once (a browser's keep-alive would
 * hold it for minutes), the certificate swapped in place after a renewal, and no log line for a
 * browser that refuses our self-signed certificate.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface ServerTls {
  keyPem: string;
  certPem: string;
}

export interface HttpsServerOptions {
  tls: ServerTls;
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * node's headersTimeout / requestTimeout: a LAN client that opens a connection and trickles its
   * request is cut off (default 20 s for the headers, 120 s for the whole request, uploads included)
   */
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
}

export class HttpsServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(o: HttpsServerOptions) {
    this.server = createServer({ key: o.tls.keyPem, cert: o.tls.certPem, minVersion: 'TLSv1.2' }, o.handler);
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('tlsClientError', () => {
      /* browsers probing a self-signed certificate: not worth a log line */
    });
    this.server.headersTimeout = o.headersTimeoutMs ?? 20_000;
    this.server.requestTimeout = o.requestTimeoutMs ?? 120_000;
  }

  listen(port: number, host: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** After a certificate renewal: new connections get the new certificate, open ones keep theirs. */
  updateTls(tls: ServerTls): void {
    this.server.setSecureContext({ key: tls.keyPem, cert: tls.certPem, minVersion: 'TLSv1.2' });
  }

  /** Stops listening and ends the open connections. */
  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }
}
