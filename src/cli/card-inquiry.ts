/** The card check from a terminal: the PIN read line by line from standard input, never from an argument. */
import { randomUUID } from 'node:crypto';
import { GatewayClient } from '../client/index.js';
import { OnshiError } from '../core/errors.js';
import { fail } from './context.js';

/**
 * The card check from a terminal. Each line of standard input is one PIN attempt: a wrong PIN is
 * reported with the tries left and the next line is used only if there is one — the CLI never
 * sends the same PIN twice by itself. With one try left it stops unless --confirm-last-try.
 */
export async function cardInquiry(
  url: string,
  token: string,
  msg: Record<string, unknown> & { type: string },
  confirmLastTry: boolean,
): Promise<number> {
  const client = await GatewayClient.connect(url, token);
  const pins = pinLines();
  const id = randomUUID();
  let stopWith: OnshiError | undefined;
  const stop = (e: OnshiError): void => {
    stopWith = e;
    void client.request({ type: 'inquiry.cancel', inquiryId: id }).catch(() => {});
  };
  let lastWrong: number | undefined;
  try {
    const answer = await client.request(
      { ...msg, id },
      {
        onProgress: (m) => {
          if (m.type === 'inquiry.progress') process.stderr.write(`onshi: ${String(m.stage).replace(/_/g, ' ')}\n`);
          else if (m.type === 'pin.wrong') {
            lastWrong = m.triesLeft as number;
            process.stderr.write(`onshi: wrong PIN, ${lastWrong} ${lastWrong === 1 ? 'try' : 'tries'} left\n`);
          } else if (m.type === 'pin.refused') process.stderr.write(`onshi: ${String(m.message)}\n`);
          else if (m.type === 'pin.required') {
            const triesLeft = m.triesLeft as number;
            if (m.confirmRequired && !confirmLastTry) {
              return stop(
                new OnshiError(
                  'CARD_PIN_CONFIRM_REQUIRED',
                  'Only one try is left: a wrong PIN blocks the card. Run again with --confirm-last-try to use it.',
                  { details: { triesLeft } },
                ),
              );
            }
            void pins.next(`PIN (${triesLeft} ${triesLeft === 1 ? 'try' : 'tries'} left): `).then((pin) => {
              if (pin === undefined) {
                return stop(
                  lastWrong !== undefined
                    ? new OnshiError(
                        'CARD_PIN_WRONG',
                        `wrong PIN; ${lastWrong} ${lastWrong === 1 ? 'try' : 'tries'} left`,
                        { details: { triesLeft: lastWrong } },
                      )
                    : new OnshiError('CARD_PIN_MISSING', 'no PIN on standard input', { details: { triesLeft } }),
                );
              }
              return client
                .request({ type: 'pin.submit', inquiryId: id, pin, confirmLastTry })
                .catch((e: unknown) => stop(e as OnshiError));
            });
          }
        },
      },
    );
    process.stdout.write(JSON.stringify(answer.result, null, 2) + '\n');
    return 0;
  } catch (e) {
    if (stopWith) return fail(stopWith);
    throw e;
  } finally {
    pins.close();
    await client.close();
  }
}

/** PIN lines from standard input; on a terminal, typed without echo. */
function pinLines(): { next(prompt: string): Promise<string | undefined>; close(): void } {
  const stdin = process.stdin;
  const queue: string[] = [];
  const waiters: ((v: string | undefined) => void)[] = [];
  let ended = false;
  let buf = '';
  const push = (line: string | undefined): void => {
    const w = waiters.shift();
    if (w) w(line);
    else if (line !== undefined) queue.push(line);
  };
  const onData = (chunk: Buffer): void => {
    for (const ch of chunk.toString('utf8')) {
      if (ch === '\u0003') {
        process.stderr.write('\n');
        process.exit(130);
      }
      if (ch === '\r' || ch === '\n') {
        if (stdin.isTTY) process.stderr.write('\n');
        push(buf.trim());
        buf = '';
      } else if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
      else buf += ch;
    }
  };
  const onEnd = (): void => {
    ended = true;
    if (buf.trim()) push(buf.trim());
    buf = '';
    while (waiters.length) waiters.shift()!(undefined);
  };
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.on('data', onData);
  stdin.on('end', onEnd);
  return {
    next(prompt) {
      if (queue.length) return Promise.resolve(queue.shift());
      if (ended) return Promise.resolve(undefined);
      if (stdin.isTTY) process.stderr.write(prompt);
      return new Promise((r) => waiters.push(r));
    },
    close() {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
    },
  };
}
