/** The HTTP status a WebSocket upgrade with this bearer token is answered with (101 when the socket opens). */
import { WebSocket } from 'ws';

export function upgradeStatus(url: string, token: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_q, res) => {
      resolve(res.statusCode!);
      ws.terminate();
    });
    ws.once('error', () => {});
  });
}
