/**
 * The official file exchange (spec §3, §7): a receipt computer that today drops request files into
 * the 資格確認端末's `req` folder and reads answers from `res` works with the gateway unchanged.
 *
 * - `req` is watched with fs.watch and scanned every `pollMs` (events are unreliable on network and
 *   some other file systems). A file is read only when its size and time have stayed the same for
 *   `settleMs`; names that do not match `OQS…req_*.xml` (temp names) are never touched
 *   (folder-watcher.ts).
 * - `OQSsiquc01req` goes through the same inquiry flow as the WebSocket API (outage answers
 *   included), `OQSmuquc01req` is submitted to central and answered with the receipt,
 *   `OQSmuquc02req` fetches the batch (waiting up to `batchWaitMs`) and is answered with the result
 *   or 処理中. Anything that cannot be processed gets an error answer (SegmentOfResult 9), never
 *   silence and never a crash (answers.ts).
 * - Exactly once, across crashes: before central is asked, a journal record (state dir, no personal
 *   data) keeps the idempotency key; the answer is written and fsynced under a hidden temp name in
 *   `res`, the record then says "answered" and names that temp file, and only then is the temp file
 *   renamed into place and the request deleted. After a restart a request whose record says
 *   "answered" only finishes that rename (if it had not happened) and is deleted: it is never asked
 *   again and never answered twice. A request without such a record is answered (with the same
 *   idempotency key, so central does not act twice). (journal.ts, request-processor.ts)
 * - Face-reader style results: every card check made at the gateway is also written as
 *   `OQSsiquc01res_face_<institution…>_<time>.xml` (the daemon calls writeFaceResult; face-results.ts).
 */
import { statSync } from 'node:fs';
import { OnshiError } from '../core/errors.js';
import type { InquiryResult } from '../checks/result.js';
import { RequestAnswers } from './answers.js';
import { writeFaceResult } from './face-results.js';
import { RequestFolderWatcher } from './folder-watcher.js';
import { Journal } from './journal.js';
import { RequestProcessor } from './request-processor.js';
import { type FileExchangeDeps, type FileExchangeErrorCode, warnOnce } from './types.js';

export { CACHE_NOTICE_CODE, responseOf } from './response-file.js';
export type { FileExchangeDeps, FileExchangeErrorCode } from './types.js';

/** Throws FX_FOLDER_MISSING for a configured folder that is not there: the gateway never creates them (spec §7). */
function checkFolders(o: FileExchangeDeps['options']): void {
  const folders: Array<[string, string]> = [
    ['reqDir', o.reqDir],
    ['resDir', o.resDir],
  ];
  if (o.faceDir) folders.push(['faceDir', o.faceDir]);
  if (o.doneDir) folders.push(['doneDir', o.doneDir]);
  for (const [key, dir] of folders) {
    let ok = false;
    try {
      ok = dir !== '' && statSync(dir).isDirectory();
    } catch {
      /* missing */
    }
    if (!ok) {
      throw new OnshiError<FileExchangeErrorCode>(
        'FX_FOLDER_MISSING',
        `fileExchange.${key} ${dir ? `(${dir}) does not exist or is not a folder` : 'is not set'}; the gateway never creates the exchange folders`,
        { details: { setting: `fileExchange.${key}` } },
      );
    }
  }
}

export class FileExchange {
  private readonly abort = new AbortController();
  private readonly processor: RequestProcessor;
  private readonly folder: RequestFolderWatcher;
  private readonly mode: number;
  private readonly faceDir: string;
  private pruneTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly d: FileExchangeDeps) {
    const o = d.options;
    this.mode = parseInt(o.fileMode, 8);
    this.faceDir = o.faceDir || o.resDir;
    const warn = warnOnce(d.logger);
    const answers = new RequestAnswers(d, this.abort.signal);
    this.processor = new RequestProcessor(d, new Journal(d.stateDir), answers, {
      mode: this.mode,
      faceDir: this.faceDir,
      warn,
    });
    this.folder = new RequestFolderWatcher(d, (name, size, mtimeMs) => this.processor.process(name, size, mtimeMs), {
      signal: this.abort.signal,
      warn,
    });
  }

  /** Checks the folders, tidies what a crash left, answers what waits in req, then watches it. */
  static async start(d: FileExchangeDeps): Promise<FileExchange> {
    checkFolders(d.options);
    const fx = new FileExchange(d);
    await fx.processor.recover();
    fx.folder.start();
    fx.pruneTimer = setInterval(
      () =>
        void fx.processor
          .prune((name) => fx.folder.isActive(name))
          .catch(() => {
            /* next hour */
          }),
      3600_000,
    );
    fx.pruneTimer.unref();
    await fx.folder.scan();
    d.logger.info('file exchange started', { event: 'fx_started', reqDir: d.options.reqDir, resDir: d.options.resDir });
    return fx;
  }

  /** Stops watching; single checks in flight finish, batch waits are abandoned (answered after the restart). */
  async close(): Promise<void> {
    clearInterval(this.pruneTimer);
    this.abort.abort();
    await this.folder.stop();
  }

  /** A scan now, then until every request it found is answered (tests, and the CLI's one-shot use). */
  async scanNow(): Promise<void> {
    await this.folder.scan();
    await this.folder.drain();
  }

  /**
   * The face-reader style result of a card check made at the gateway (spec §3). Central's and
   * cached answers are written (a cached one with a notice saying so); an "unavailable" answer is
   * not (the terminal writes no file for a check that gave no eligibility). Returns the file name.
   */
  writeFaceResult(result: InquiryResult): Promise<string | undefined> {
    return writeFaceResult(this.d, this.faceDir, this.mode, result);
  }
}
